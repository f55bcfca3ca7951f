"""What a read sees: the live rows of a user's file at one generation, loaded in one read.

A load reads the committed records into a numpy structured array, keeps the live ones
and resolves what a crash may have left: records past the committed count (a batch whose
writer died before committing it, or a record cut short) are ignored, and of two live
records of one id (a crash between "commit" and "mark the old one dead") the later wins.
Both are reported so the next writer repairs them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import numpy.typing as npt

from photocluster.ids import IdArray, decode_ids
from photocluster.store.files import read_exact
from photocluster.store.format import (
    HEADER_SIZE,
    STATE_DEAD,
    STATE_LIVE,
    FloatArray,
    Header,
    record_dtype,
)
from photocluster.store.memory import MemoryCache
from photocluster.store.vectors import BLOCK_RECORDS, ArrayRows, MappedRows, Rows

log = logging.getLogger(__name__)

PositionArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Snapshot:
    """The live content of a user's file at one generation.

    ``ids`` and ``rows`` (the vectors) are in file order (the order images were first
    stored in, kept across compactions); ``positions`` are their record numbers in the
    current file. A loaded snapshot holds its vectors in memory; a writer's holds the ids
    and reads vectors from the mapped file as it needs them (:func:`load_index`).
    """

    user_id: str
    header: Header
    ids: IdArray
    rows: Rows
    positions: PositionArray
    n_records: int
    file_size: int
    inode: int

    @property
    def vectors(self) -> FloatArray:
        """Every row's vector as one array (read from the file when it is mapped: for the
        paths that need them all, never a writer's)."""
        if isinstance(self.rows, ArrayRows):
            return self.rows.array
        return self.rows.take(np.arange(self.n))

    @property
    def n(self) -> int:
        return len(self.ids)

    @property
    def nbytes(self) -> int:
        """Memory held by its arrays (a mapped file's rows are the page cache's)."""
        arrays = [self.ids, self.positions]
        if isinstance(self.rows, ArrayRows):
            arrays.append(self.rows.array)
        return sum(a.nbytes for a in arrays)

    @property
    def model(self) -> str:
        return self.header.model

    @property
    def dim(self) -> int:
        return self.header.dim

    @property
    def generation(self) -> int:
        return self.header.generation

    @property
    def n_dead(self) -> int:
        return self.n_records - self.n

    def id_list(self) -> list[str]:
        return decode_ids(self.ids)


@dataclass(frozen=True)
class Change:
    """How one write transformed the live rows: keep ``kept`` of the old rows (in order),
    then append ``appended`` new rows. The neighbour graph is updated from this."""

    kept: npt.NDArray[np.bool_]
    appended: int
    added: int = 0
    replaced: int = 0
    unchanged: int = 0
    deleted: int = 0
    missing: int = 0

    @property
    def is_noop(self) -> bool:
        return self.appended == 0 and bool(self.kept.all())


def load_snapshot(fd: int, user_id: str, path: Path) -> tuple[Snapshot, bool]:
    """Read the whole file behind ``fd``. Returns the snapshot and whether repair is due
    (a torn tail or a live duplicate left by a crash)."""
    stat = os.fstat(fd)
    header = Header.decode(read_exact(fd, HEADER_SIZE, 0), path)
    rdtype = record_dtype(header.dim, header.dtype)
    readable = _readable(header, stat.st_size, rdtype.itemsize)
    raw = read_exact(fd, readable * rdtype.itemsize, HEADER_SIZE)
    records = np.frombuffer(raw, dtype=rdtype, count=len(raw) // rdtype.itemsize)
    n_valid, live, needs_repair = _resolve(records["state"], records["id"], header, stat, path)
    snapshot = Snapshot(
        user_id=user_id,
        header=header,
        ids=np.ascontiguousarray(records["id"][live]),
        rows=ArrayRows(np.ascontiguousarray(records["vector"][live], dtype=np.float32)),
        positions=live.astype(np.int64),
        n_records=n_valid,
        file_size=stat.st_size,
        inode=stat.st_ino,
    )
    return snapshot, needs_repair


def load_index(fd: int, user_id: str, path: Path) -> tuple[Snapshot, bool]:
    """:func:`load_snapshot` without loading a vector: the ids and states are read from the
    mapped file a block at a time, the vectors stay in the file (mapped: a writer reads the
    rows it needs, or one pass, :class:`photocluster.store.vectors.MappedRows`)."""
    stat = os.fstat(fd)
    header = Header.decode(read_exact(fd, HEADER_SIZE, 0), path)
    rdtype = record_dtype(header.dim, header.dtype)
    readable = _readable(header, stat.st_size, rdtype.itemsize)
    mapped = MappedRows.of(fd, header, readable, np.zeros(0, np.int64))
    states = np.empty(readable, dtype=np.uint8)
    ids = np.empty(readable, dtype=rdtype["id"])
    for start in range(0, readable, BLOCK_RECORDS):
        end = min(start + BLOCK_RECORDS, readable)
        states[start:end] = mapped.records["state"][start:end]
        ids[start:end] = mapped.records["id"][start:end]
        mapped.release(start, end)
    n_valid, live, needs_repair = _resolve(states, ids, header, stat, path)
    snapshot = Snapshot(
        user_id=user_id,
        header=header,
        ids=ids[live],
        rows=replace(mapped, records=mapped.records[:n_valid], positions=live.astype(np.int64)),
        positions=live.astype(np.int64),
        n_records=n_valid,
        file_size=stat.st_size,
        inode=stat.st_ino,
    )
    return snapshot, needs_repair


#: Given a file's generation and inode, its live rows' ids and record positions, when
#: something derived from that very file knows them (the neighbour graph), else None.
KnownIndex = Callable[[int, int], tuple[IdArray, PositionArray] | None]


def load_known(fd: int, user_id: str, path: Path, index: KnownIndex) -> Snapshot | None:
    """:func:`load_index` without the pass, from what ``index`` knows of this file: only a
    whole file (its size is its committed records: nothing for a writer to repair) of the
    generation and inode the index was made from; else None."""
    stat = os.fstat(fd)
    header = Header.decode(read_exact(fd, HEADER_SIZE, 0), path)
    committed = header.committed
    if committed is None or stat.st_size != HEADER_SIZE + committed * header.record_size:
        return None
    known = index(header.generation, stat.st_ino)
    if known is None:
        return None
    ids, positions = known
    if len(positions) and int(positions[-1]) >= committed:
        return None
    return Snapshot(
        user_id=user_id,
        header=header,
        ids=ids,
        rows=MappedRows.of(fd, header, committed, positions),
        positions=positions,
        n_records=committed,
        file_size=stat.st_size,
        inode=stat.st_ino,
    )


def _readable(header: Header, size: int, record_size: int) -> int:
    """How many records a reader may look at: the complete ones, at most the committed."""
    complete = max(size - HEADER_SIZE, 0) // record_size
    return complete if header.committed is None else min(complete, header.committed)


def _resolve(
    states: npt.NDArray[np.uint8], ids: IdArray, header: Header, stat: os.stat_result, path: Path
) -> tuple[int, PositionArray, bool]:
    """The number of valid records, the positions of the live rows, and whether a crash
    left something to repair (a torn tail, a live duplicate)."""
    valid = (states == STATE_LIVE) | (states == STATE_DEAD)
    n_valid = int(np.argmin(valid)) if not valid.all() else len(states)
    body = stat.st_size - HEADER_SIZE
    size = record_dtype(header.dim, header.dtype).itemsize
    torn = n_valid * size != body
    if torn:
        log.warning(
            "store %s: ignoring %d bytes past the committed records (a write that did not finish)",
            path,
            body - n_valid * size,
        )
    live, duplicated = _last_live_of_each_id(states[:n_valid], ids[:n_valid])
    return n_valid, live, torn or duplicated


def _last_live_of_each_id(
    states: npt.NDArray[np.uint8], ids: IdArray
) -> tuple[PositionArray, bool]:
    """Positions of the ids whose last record is live (a delete appends a dead one); and
    whether a live record is not its id's last (a crash before the superseded records were
    marked dead: the next writer marks them)."""
    live = states == STATE_LIVE
    if len(ids) < 2:
        return np.flatnonzero(live), False
    last = _last_of_each(ids)
    return np.flatnonzero(live & last), bool((live & ~last).any())


#: Odd 64-bit multipliers of the id hash (one per 8 bytes of a 128-byte id), fixed.
_MIX = np.random.default_rng(20261206).integers(1, 2**63, 16, dtype=np.uint64) | np.uint64(1)


def _last_of_each(ids: IdArray) -> npt.NDArray[np.bool_]:
    """Whether each record is its id's last. Sorting 64-bit hashes of the ids is many times
    faster than sorting the 128-byte ids (100,000 records: ~10 ms, not ~90); records whose
    hashes tie are compared in full, and a collision falls back to sorting the ids."""
    backwards = ids[::-1]
    if not len(ids) or ids.dtype.itemsize % 8 or ids.dtype.itemsize > 8 * len(_MIX):
        order, tied = np.zeros(0, np.int64), np.zeros(0, np.int64)
        collision = True  # not ids of the store's width: sort them
    else:
        words = np.ascontiguousarray(ids).view(np.uint64).reshape(len(ids), -1)
        hashes = (words * _MIX[: words.shape[1]]).sum(axis=1, dtype=np.uint64)
        order = np.argsort(hashes[::-1], kind="stable")  # from the end: each id's last first
        sorted_hashes = hashes[::-1][order]
        tied = np.flatnonzero(sorted_hashes[1:] == sorted_hashes[:-1])
        collision = bool((backwards[order[tied]] != backwards[order[tied + 1]]).any())
    if collision:
        _, first_from_end = np.unique(backwards, return_index=True)
    else:
        first = np.ones(len(ids), dtype=bool)
        first[tied + 1] = False
        first_from_end = order[first]
    last = np.zeros(len(ids), dtype=bool)
    last[len(ids) - 1 - first_from_end] = True
    return last


@dataclass
class SnapshotCache:
    """Recent users' snapshots, valid while (inode, size, generation) match the file."""

    memory: MemoryCache = field(default_factory=lambda: MemoryCache(256 * 2**20))

    def get(self, path: Path, inode: int, size: int, generation: int) -> Snapshot | None:
        snap = self.memory.get(("snapshot", path))
        if snap is None or (snap.inode, snap.file_size, snap.generation) != (
            inode,
            size,
            generation,
        ):
            return None
        assert isinstance(snap, Snapshot)
        return snap

    def load(
        self,
        fd: int,
        user_id: str,
        path: Path,
        mapped: bool = False,
        index: KnownIndex | None = None,
    ) -> tuple[Snapshot, bool]:
        """The snapshot of the file behind ``fd`` (from the cache while it is current), and
        whether a crash left something to repair. ``mapped``: with the vectors left in the
        file (a writer's; a cached snapshot of either kind serves); ``index``: what the
        graph knows of it, used when it is of this very file (:func:`load_known`)."""
        stat = os.fstat(fd)
        generation = Header.decode(os.pread(fd, HEADER_SIZE, 0), path).generation
        cached = self.get(path, stat.st_ino, stat.st_size, generation)
        if cached is not None:
            return cached, False
        known = load_known(fd, user_id, path, index) if mapped and index is not None else None
        if known is not None:
            self.put(path, known)
            return known, False
        snapshot, needs_repair = (load_index if mapped else load_snapshot)(fd, user_id, path)
        if not needs_repair:
            self.put(path, snapshot)
        return snapshot, needs_repair

    def clear(self) -> None:
        """Forget every snapshot (the next read loads from the file)."""
        self.memory.clear()

    def put(self, path: Path, snapshot: Snapshot) -> None:
        self.memory.put(("snapshot", path), snapshot, snapshot.nbytes)
