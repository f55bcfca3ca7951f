"""Reads of a user's vectors that never load the user: the store file mapped read-only.

A read route needs a few rows (the photos of the groups a page shows) or one pass over
every row (a photo's most similar others). Loading the whole file for that costs its
size in memory and a parse of every record (2 s and 1.3 GB at 100,000 photos of 1,379
dimensions). Mapped, a pass reads the file from the page cache block by block and hands
each block's pages back once it is done (``MADV_DONTNEED``): the process holds one block,
not the user.

No lock is needed: a record's vector never changes once written (an upsert appends, a
delete flips a state byte, a compaction writes a new file under a new inode), so rows named
by positions of one (inode, generation) stay what they were for as long as the file
descriptor is open. The caller checks that the mapped file is the one its positions are for.
"""

from __future__ import annotations

import contextlib
import hashlib
import mmap
import os
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

from photocluster.store.files import read_exact
from photocluster.store.format import HEADER_SIZE, FloatArray, Header, record_dtype

#: Records read per step of a pass (8,192 records of 1,379 float32 dimensions: 46 MB).
BLOCK_RECORDS = 8192

PositionArray = npt.NDArray[np.int64]


@dataclass
class MappedVectors:
    """One store file mapped read-only: its header, inode and committed records."""

    path: Path
    header: Header
    inode: int
    records: np.ndarray
    _map: mmap.mmap | None

    @property
    def n_records(self) -> int:
        return len(self.records)

    def rows(self, positions: PositionArray) -> FloatArray:
        """The vectors of the records at ``positions`` (float32, one row each)."""
        return np.asarray(self.records["vector"][positions], dtype=np.float32)

    def similarities(self, query: FloatArray, positions: PositionArray) -> FloatArray:
        """Each record's cosine with ``query`` (unit vectors, clipped to [0, 1]), for the
        records at ``positions``: one pass over the file, a block at a time."""
        found = np.empty(self.n_records, dtype=np.float32)
        vectors = self.records["vector"]
        query = np.asarray(query, dtype=vectors.dtype)
        for start in range(0, self.n_records, BLOCK_RECORDS):
            end = min(start + BLOCK_RECORDS, self.n_records)
            found[start:end] = vectors[start:end] @ query
            self._release(start, end)
        return np.asarray(np.clip(found[positions], 0.0, 1.0), dtype=np.float32)

    def _release(self, start: int, end: int) -> None:
        _release(self._map, self.records.dtype.itemsize, start, end)


@contextlib.contextmanager
def mapped(path: Path) -> Iterator[MappedVectors]:
    """``path`` mapped read-only for the duration (FileNotFoundError when it is absent)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        stat = os.fstat(fd)
        header = Header.decode(read_exact(fd, HEADER_SIZE, 0), path)
        rdtype = record_dtype(header.dim, header.dtype)
        complete = max(stat.st_size - HEADER_SIZE, 0) // rdtype.itemsize
        count = complete if header.committed is None else min(complete, header.committed)
        if count == 0:
            yield MappedVectors(path, header, stat.st_ino, np.zeros(0, rdtype), None)
            return
        with mmap.mmap(fd, HEADER_SIZE + count * rdtype.itemsize, prot=mmap.PROT_READ) as area:
            view = MappedVectors(
                path,
                header,
                stat.st_ino,
                np.frombuffer(area, dtype=rdtype, count=count, offset=HEADER_SIZE),
                area,
            )
            try:
                yield view
            finally:  # the map closes only once no array views it
                view.records, view._map = np.zeros(0, rdtype), None
    finally:
        os.close(fd)


IndexArray = npt.NDArray[np.integer]
#: Query numbers, row numbers and their products.
Pairs = tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], FloatArray]
#: Rows compared at once by :meth:`Rows.above` (with 512 queries: 16 MB of products).
ABOVE_BLOCK = 8192


class Rows(Protocol):
    """A user's live vectors in store order, wherever they are kept: every row at once
    never needs to be in memory (a writer's view of a 100,000-photo library)."""

    @property
    def shape(self) -> tuple[int, int]: ...

    def __len__(self) -> int: ...

    def take(self, rows: IndexArray) -> FloatArray:
        """The vectors of these rows (float32)."""
        ...

    def dot(self, queries: FloatArray, upto: int | None = None) -> FloatArray:
        """Each query's product with every row (the first ``upto``): (queries, rows)."""
        ...

    def above(self, queries: FloatArray, floor: float, upto: int) -> Pairs:
        """The (query, row, product) of the first ``upto`` rows whose product with a query
        is at least ``floor``: thresholded a block at a time, the full matrix never held."""
        ...


@dataclass(frozen=True)
class ArrayRows:
    """Rows held in memory (a loaded user, tests, the evaluation)."""

    array: FloatArray

    @property
    def shape(self) -> tuple[int, int]:
        return self.array.shape[0], self.array.shape[1]

    def __len__(self) -> int:
        return len(self.array)

    def take(self, rows: IndexArray) -> FloatArray:
        return self.array[rows]

    def dot(self, queries: FloatArray, upto: int | None = None) -> FloatArray:
        return np.asarray(queries @ self.array[:upto].T, dtype=np.float32)

    def above(self, queries: FloatArray, floor: float, upto: int) -> Pairs:
        found = []
        for start in range(0, upto, ABOVE_BLOCK):
            end = min(start + ABOVE_BLOCK, upto)
            found.append(_over(queries @ self.array[start:end].T, floor, start))
        return _joined(found)


class _Descriptor:
    """A copy of a file descriptor, closed once nothing holds it."""

    def __init__(self, fd: int) -> None:
        self.number = os.dup(fd)
        weakref.finalize(self, os.close, self.number)


#: Rows at most 1/_FEW_ROWS of the file's records are read one by one (pread), not mapped.
_FEW_ROWS = 8
#: Where a record's vector starts (after its state and id: the same for every dimension).
_VECTOR_OFFSET = int(record_dtype(1, "float32").fields["vector"][1])  # type: ignore[index]


@dataclass(frozen=True)
class MappedRows:
    """Rows read from the mapped store file when asked: ``positions`` are the live rows'
    record numbers. The map (a copy of the descriptor, mmap's own) lives as long as an
    array views it; a pass hands each block's pages back once it is done."""

    records: np.ndarray
    positions: PositionArray
    area: mmap.mmap | None
    #: a descriptor of the file of its own (shared by copies), to read a few rows unmapped
    fd: _Descriptor | None = field(default=None, compare=False, repr=False)
    #: the last full product (a write's graph update and copy check ask for the same one)
    _last: dict[bytes, FloatArray] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def of(cls, fd: int, header: Header, count: int, positions: PositionArray) -> MappedRows:
        """The ``positions`` of the first ``count`` records of the file behind ``fd``."""
        rdtype = record_dtype(header.dim, header.dtype)
        if count == 0:
            return cls(np.zeros(0, rdtype), positions, None)
        area = mmap.mmap(fd, HEADER_SIZE + count * rdtype.itemsize, prot=mmap.PROT_READ)
        records = np.frombuffer(area, dtype=rdtype, count=count, offset=HEADER_SIZE)
        return cls(records, positions, area, _Descriptor(fd))

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.positions), int(self.records.dtype["vector"].shape[0])

    def __len__(self) -> int:
        return len(self.positions)

    def take(self, rows: IndexArray) -> FloatArray:
        """These rows' vectors. A few (a write's linkage of one part) are read with pread:
        a fault in the map maps the pages around it too (the kernel's readahead and large
        folios: 1,096 rows spread over a 565 MB file mapped 447 MB into the RSS). Many are
        read through the map, whose pages are then handed back."""
        at = self.positions[rows]
        if self.fd is None or len(at) * _FEW_ROWS >= len(self.records):
            taken = np.asarray(self.records["vector"][at], dtype=np.float32)
            if len(at):
                self.release(int(at.min()), int(at.max()) + 1)
            return taken
        vector = self.records.dtype["vector"]
        start = HEADER_SIZE + _VECTOR_OFFSET
        size = self.records.dtype.itemsize
        out = np.empty((len(at), vector.shape[0]), dtype=np.float32)
        for row, position in enumerate(at.tolist()):
            data = read_exact(self.fd.number, vector.itemsize, start + position * size)
            out[row] = np.frombuffer(data, dtype=vector.base)
        return out

    def dot(self, queries: FloatArray, upto: int | None = None) -> FloatArray:
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if upto is not None and upto < len(self.positions):
            return self._pass(queries, upto)
        key = hashlib.blake2b(queries.tobytes(), digest_size=16).digest()
        if key not in self._last:
            self._last.clear()
            self._last[key] = self._pass(queries, None)
            self._last[key].flags.writeable = False  # shared by its callers
        return self._last[key]

    def above(self, queries: FloatArray, floor: float, upto: int) -> Pairs:
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        key = hashlib.blake2b(queries.tobytes(), digest_size=16).digest()
        if upto >= len(self.positions) and key in self._last:  # a write's product, again
            return _over(self._last[key], floor, 0)
        positions = self.positions[:upto]
        records = int(positions[-1]) + 1 if len(positions) else 0
        row_of = np.full(records, -1, dtype=np.int64)
        row_of[positions] = np.arange(len(positions))
        vectors, found = self.records["vector"], []
        for start in range(0, records, BLOCK_RECORDS):
            end = min(start + BLOCK_RECORDS, records)
            query, record, value = _over((vectors[start:end] @ queries.T).T, floor, start)
            live = row_of[record] >= 0  # dead records and records past ``upto`` drop out
            found.append((query[live], row_of[record[live]], value[live]))
            self.release(start, end)
        return _joined(found)

    def _pass(self, queries: FloatArray, upto: int | None) -> FloatArray:
        """One pass over the records up to the ``upto``-th row's, a block at a time."""
        positions = self.positions[:upto]
        records = int(positions[-1]) + 1 if len(positions) else 0
        queries = np.asarray(queries, dtype=np.float32)
        found = np.empty((len(queries), records), dtype=np.float32)
        vectors = self.records["vector"]
        for start in range(0, records, BLOCK_RECORDS):
            end = min(start + BLOCK_RECORDS, records)
            found[:, start:end] = (vectors[start:end] @ queries.T).T  # rows as BLAS's A
            self.release(start, end)
        return found[:, positions]

    def release(self, start: int, end: int) -> None:
        """Hand the pages of records ``start`` to ``end`` back (the page cache keeps them)."""
        _release(self.area, self.records.dtype.itemsize, start, end)


def _over(products: FloatArray, floor: float, first: int) -> Pairs:
    """The (query, column + ``first``, product) of ``products`` at least ``floor``."""
    query, column = np.nonzero(products >= floor)
    return query.astype(np.int64), column.astype(np.int64) + first, products[query, column]


def _joined(parts: list[Pairs]) -> Pairs:
    if not parts:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
    return (
        np.concatenate([p[0] for p in parts]),
        np.concatenate([p[1] for p in parts]),
        np.concatenate([p[2] for p in parts]).astype(np.float32),
    )


def as_rows(vectors: Rows | npt.ArrayLike) -> Rows:
    """``vectors`` as :class:`Rows` (an array is held as it is)."""
    if isinstance(vectors, ArrayRows | MappedRows):
        return vectors
    return ArrayRows(np.asarray(vectors, dtype=np.float32))


def _release(area: mmap.mmap | None, size: int, start: int, end: int) -> None:
    """Hand the pages of records ``start`` to ``end`` back (the page cache keeps them)."""
    if area is None:
        return
    first = (HEADER_SIZE + start * size) // mmap.PAGESIZE * mmap.PAGESIZE
    area.madvise(mmap.MADV_DONTNEED, first, HEADER_SIZE + end * size - first)
