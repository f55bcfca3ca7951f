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
from dataclasses import dataclass, field
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

log = logging.getLogger(__name__)

PositionArray = npt.NDArray[np.int64]


class _Rows:
    """Growable row buffers behind successive snapshots of one writer.

    Appending to the newest snapshot writes into spare capacity instead of copying the
    whole matrix; ``claimed`` says how many rows the newest snapshot owns, so an older
    snapshot never appends over a newer one's rows (it copies instead).
    """

    def __init__(
        self, ids: IdArray, vectors: FloatArray, positions: PositionArray, capacity: int
    ) -> None:
        n, dim = vectors.shape
        self.ids = np.zeros(capacity, dtype=ids.dtype)
        self.vectors = np.zeros((capacity, dim), dtype=np.float32)
        self.positions = np.zeros(capacity, dtype=np.int64)
        self.ids[:n], self.vectors[:n], self.positions[:n] = ids, vectors, positions
        self.claimed = n

    @property
    def capacity(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class Snapshot:
    """The live content of a user's file at one generation.

    ``ids`` and ``vectors`` are in file order (the order images were first stored in, kept
    across compactions); ``positions`` are their record numbers in the current file.
    """

    user_id: str
    header: Header
    ids: IdArray
    vectors: FloatArray
    positions: PositionArray
    n_records: int
    file_size: int
    inode: int
    _rows: _Rows | None = field(default=None, repr=False, compare=False)

    @property
    def n(self) -> int:
        return len(self.ids)

    @property
    def nbytes(self) -> int:
        """Memory held by its arrays (a writer's spare row capacity included)."""
        arrays = (self.ids, self.vectors, self.positions)
        if self._rows is not None:
            arrays = (self._rows.ids, self._rows.vectors, self._rows.positions)
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

    def appended(
        self, ids: IdArray, vectors: FloatArray, positions: PositionArray
    ) -> tuple[IdArray, FloatArray, PositionArray, _Rows]:
        """These rows followed by new ones, in O(new rows) when this is the newest snapshot."""
        n, k = self.n, len(ids)
        rows = self._rows
        if rows is None or rows.claimed != n or rows.capacity < n + k:
            rows = _Rows(self.ids, self.vectors, self.positions, max(1024, (n + k) * 3 // 2))
        rows.ids[n : n + k], rows.vectors[n : n + k], rows.positions[n : n + k] = (
            ids,
            vectors,
            positions,
        )
        rows.claimed = n + k
        return rows.ids[: n + k], rows.vectors[: n + k], rows.positions[: n + k], rows


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
    body = stat.st_size - HEADER_SIZE
    complete = max(body, 0) // rdtype.itemsize
    readable = complete if header.committed is None else min(complete, header.committed)
    raw = read_exact(fd, readable * rdtype.itemsize, HEADER_SIZE)
    records = np.frombuffer(raw, dtype=rdtype, count=len(raw) // rdtype.itemsize)
    states = records["state"]
    valid = (states == STATE_LIVE) | (states == STATE_DEAD)
    n_valid = int(np.argmin(valid)) if not valid.all() else len(records)
    torn = n_valid * rdtype.itemsize != body
    if torn:
        log.warning(
            "store %s: ignoring %d bytes past the committed records (a write that did not finish)",
            path,
            body - n_valid * rdtype.itemsize,
        )
    records = records[:n_valid]
    live, duplicated = _last_live_of_each_id(records)
    snapshot = Snapshot(
        user_id=user_id,
        header=header,
        ids=np.ascontiguousarray(records["id"][live]),
        vectors=np.ascontiguousarray(records["vector"][live], dtype=np.float32),
        positions=live.astype(np.int64),
        n_records=n_valid,
        file_size=stat.st_size,
        inode=stat.st_ino,
    )
    return snapshot, torn or duplicated


def _last_live_of_each_id(records: np.ndarray) -> tuple[PositionArray, bool]:
    """Positions of the ids whose last record is live (a delete appends a dead one); and
    whether a live record is not its id's last (a crash before the superseded records were
    marked dead: the next writer marks them)."""
    live = records["state"] == STATE_LIVE
    ids = records["id"]
    if len(ids) < 2:
        return np.flatnonzero(live), False
    _, first_from_end = np.unique(ids[::-1], return_index=True)
    last = np.zeros(len(ids), dtype=bool)
    last[len(ids) - 1 - first_from_end] = True
    return np.flatnonzero(live & last), bool((live & ~last).any())


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

    def load(self, fd: int, user_id: str, path: Path) -> tuple[Snapshot, bool]:
        """The snapshot of the file behind ``fd`` (from the cache while it is current), and
        whether a crash left something to repair."""
        stat = os.fstat(fd)
        generation = Header.decode(os.pread(fd, HEADER_SIZE, 0), path).generation
        cached = self.get(path, stat.st_ino, stat.st_size, generation)
        if cached is not None:
            return cached, False
        snapshot, needs_repair = load_snapshot(fd, user_id, path)
        if not needs_repair:
            self.put(path, snapshot)
        return snapshot, needs_repair

    def clear(self) -> None:
        """Forget every snapshot (the next read loads from the file)."""
        self.memory.clear()

    def put(self, path: Path, snapshot: Snapshot) -> None:
        self.memory.put(("snapshot", path), snapshot, snapshot.nbytes)
