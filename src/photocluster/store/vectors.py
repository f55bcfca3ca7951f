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
import mmap
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

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
        """Hand the pages of records ``start`` to ``end`` back (the page cache keeps them)."""
        if self._map is None:
            return
        size = self.records.dtype.itemsize
        first = (HEADER_SIZE + start * size) // mmap.PAGESIZE * mmap.PAGESIZE
        self._map.madvise(mmap.MADV_DONTNEED, first, HEADER_SIZE + end * size - first)


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
