"""A read-modify-write of one user's file, under the user's exclusive lock.

The file is an append-only log: an upsert appends its batch of records, commits them
(the header's record count, written once they are on disk), then marks the records they
supersede dead; a delete marks records dead (tombstones). A batch is thus seen whole or not
at all: a writer killed before the commit leaves records no reader sees. The generation
counter in the header is bumped *before* data changes, so anything derived from the file
(the neighbour graph) is detectably stale after a crash. Opening a transaction repairs what
a crash left (uncommitted records are cut off, a live duplicate marked dead); the store
removes the temporary files of writers that died before it opens one.
"""

from __future__ import annotations

import logging
import os
import struct
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import numpy.typing as npt

from photocluster.errors import StoreCorrupt, UnknownUser
from photocluster.ids import ID_DTYPE, encode_ids
from photocluster.store.compaction import needs_compaction, write_compacted
from photocluster.store.files import (
    FILE_MODE,
    read_exact,
    replace_with,
    temp_path,
    write_all,
)
from photocluster.store.format import (
    COMMITTED_OFFSET,
    FORMAT_VERSION,
    GENERATION_OFFSET,
    HEADER_SIZE,
    STATE_DEAD,
    STATE_LIVE,
    VERSION_OFFSET,
    Header,
    StoreDtype,
    live_records,
    record_dtype,
    tombstone_records,
)
from photocluster.store.snapshot import Change, KnownIndex, Snapshot, SnapshotCache
from photocluster.store.vectors import MappedRows
from photocluster.store.write_plan import (
    UpsertPlan,
    after_append,
    check_room,
    kept_rows,
    plan_upsert,
    positions_of,
    validated,
)

# check_room is the library's too, imported from here as before it moved to write_plan.
__all__ = ["Transaction", "WriteOptions", "check_room"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WriteOptions:
    """How a store writes: the vector dtype of new files, durability, when to compact."""

    dtype: StoreDtype = "float32"
    fsync: bool = True
    compact_ratio: float = 0.3
    compact_min_dead: int = 64


class Transaction:
    """A read-modify-write of one user's file under the exclusive lock."""

    def __init__(
        self,
        options: WriteOptions,
        cache: SnapshotCache,
        user_id: str,
        path: Path,
        index: KnownIndex | None = None,
    ) -> None:
        self.options = options
        self.cache = cache
        self.user_id = user_id
        self.path = path
        self.index = index
        self.fd = -1
        self.snapshot: Snapshot | None = None

    # -- lifecycle

    def open(self) -> None:
        """Load the file (if there is one) and repair what a crash left in it."""
        try:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            return
        try:
            snapshot, needs_repair = self.cache.load(
                self.fd, self.user_id, self.path, mapped=True, index=self.index
            )
        except StoreCorrupt:
            self.close()
            raise
        self.snapshot = snapshot
        if needs_repair:
            self._repair()
        if self.snapshot is not None and self.snapshot.header.committed is None:
            self._upgrade()

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def _repair(self) -> None:
        """Truncate a torn tail and mark crash-left duplicates dead."""
        snap = self.snapshot
        assert snap is not None
        end = HEADER_SIZE + snap.n_records * snap.header.record_size
        if snap.file_size != end:
            log.warning(
                "store %s: truncating torn tail (%d bytes)", self.path, snap.file_size - end
            )
            os.ftruncate(self.fd, end)
        if snap.header.committed not in (None, snap.n_records):
            self._commit(snap.n_records)
        raw = read_exact(self.fd, snap.n_records * snap.header.record_size, HEADER_SIZE)
        states = np.frombuffer(raw, dtype=record_dtype(snap.dim, snap.header.dtype))["state"]
        stale = np.setdiff1d(np.flatnonzero(states == STATE_LIVE), snap.positions)
        if len(stale):
            log.warning("store %s: marking %d duplicate records dead", self.path, len(stale))
            self._bump_generation()
            self._mark_dead(stale)
        self._sync()
        repaired = self.snapshot
        assert repaired is not None
        self._refresh(replace(repaired, file_size=end))

    def _upgrade(self) -> None:
        """A version 1 file gets the committed count of version 2 (every record it has)."""
        snap = self.snapshot
        assert snap is not None
        self._commit(snap.n_records)
        os.pwrite(self.fd, struct.pack("<H", FORMAT_VERSION), VERSION_OFFSET)
        upgraded = self.snapshot
        assert upgraded is not None
        self._refresh(replace(upgraded, header=replace(upgraded.header, version=FORMAT_VERSION)))
        log.info("store %s: upgraded to format version %d", self.path, FORMAT_VERSION)

    # -- operations

    def upsert(
        self, model: str, ids: Sequence[str], vectors: npt.ArrayLike, max_rows: int | None = None
    ) -> Change:
        """Insert new ids, replace changed ones, skip identical re-deliveries; LibraryFull,
        with nothing written, when the new ids would take the file past ``max_rows``."""
        encoded, vecs = validated(self.snapshot, self.user_id, model, ids, vectors)
        if len(encoded) == 0:
            return self._noop()
        n = self.snapshot.n if self.snapshot is not None else 0
        if self.snapshot is None:
            check_room(self.user_id, 0, len(encoded), max_rows)  # before the file exists
        snap = self.snapshot if self.snapshot is not None else self._create(model, vecs.shape[1])
        plan = plan_upsert(snap, encoded, vecs)
        check_room(self.user_id, n, plan.change.added, max_rows)
        if plan.change.appended:
            self._append(plan)
            self._maybe_compact()
        return plan.change

    def delete(self, ids: Sequence[str]) -> Change:
        """Tombstone ``ids``; ids that are not stored are counted in ``missing``."""
        encoded = np.unique(encode_ids(ids))
        snap = self.snapshot
        if snap is None:
            raise UnknownUser(f"no embeddings stored for user {self.user_id!r}")
        rows = positions_of(snap.ids, encoded)
        found = rows[rows >= 0]
        kept = np.ones(snap.n, dtype=bool)
        kept[found] = False
        change = Change(kept=kept, appended=0, deleted=len(found), missing=int((rows < 0).sum()))
        if not len(found):
            return change
        self._bump_generation()
        snap = self.snapshot
        assert snap is not None
        offset = HEADER_SIZE + snap.n_records * snap.header.record_size
        write_all(self.fd, tombstone_records(snap.ids[found], snap.dim, snap.header.dtype), offset)
        self._sync()  # the tombstones are on disk before the count that makes them count
        self._commit(snap.n_records + len(found))
        self._sync()
        self._mark_dead(snap.positions[found])  # lost in a crash: the next writer repairs
        snap = self.snapshot
        assert snap is not None
        self._refresh(
            replace(
                snap,
                ids=snap.ids[kept],
                rows=kept_rows(snap.rows, kept),
                positions=snap.positions[kept],
                n_records=snap.n_records + len(found),
                file_size=offset + len(found) * snap.header.record_size,
            )
        )
        self._maybe_compact()
        return change

    def compact(self) -> None:
        """Rewrite live records into a new file (see photocluster.store.compaction)."""
        if self.snapshot is None:
            return
        fd, compacted = write_compacted(self.snapshot, self.path)
        os.close(self.fd)
        self.fd = fd
        self._refresh(compacted)
        log.info("store %s: compacted to %d records", self.path, compacted.n)

    # -- steps of an upsert

    def _append(self, plan: UpsertPlan) -> None:
        """Append the plan's records, commit them, then mark the ones they supersede dead
        (so a crash at any point loses nothing and shows no part of the batch)."""
        self._bump_generation()
        snap = self.snapshot
        assert snap is not None
        size = snap.header.record_size
        offset = HEADER_SIZE + snap.n_records * size
        records = live_records(plan.ids, plan.vectors, snap.dim, snap.header.dtype)
        write_all(self.fd, records, offset)
        self._sync()  # the records are on disk before the count that makes them visible
        self._commit(snap.n_records + len(plan.ids))
        self._sync()
        # Not synced on its own: lost, the marks leave duplicates, which the later record
        # wins and the next writer repairs.
        self._mark_dead(snap.positions[plan.replaced_rows])
        committed = self.snapshot
        assert committed is not None
        self._refresh(after_append(committed, plan, offset + len(plan.ids) * size, self.fd))

    # -- internals

    def _noop(self) -> Change:
        n = self.snapshot.n if self.snapshot else 0
        return Change(kept=np.ones(n, dtype=bool), appended=0)

    def _create(self, model: str, dim: int) -> Snapshot:
        header = Header(
            version=FORMAT_VERSION,
            dtype=self.options.dtype,
            dim=dim,
            # Start from the clock, so a user's file deleted and created again never
            # repeats a generation that a cache or a graph file may still hold.
            generation=time.time_ns() // 1000,
            epoch=0,
            created=time.time(),
            model=model,
            committed=0,
        )
        tmp = temp_path(self.path)
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, FILE_MODE)
        write_all(fd, header.encode(), 0)
        replace_with(tmp, self.path, fd, fsync=self.options.fsync)
        self.fd = fd
        stat = os.fstat(fd)
        self.snapshot = Snapshot(
            user_id=self.user_id,
            header=header,
            ids=np.zeros(0, dtype=ID_DTYPE),
            rows=MappedRows.of(fd, header, 0, np.zeros(0, dtype=np.int64)),
            positions=np.zeros(0, dtype=np.int64),
            n_records=0,
            file_size=stat.st_size,
            inode=stat.st_ino,
        )
        return self.snapshot

    def _bump_generation(self) -> None:
        snap = self.snapshot
        assert snap is not None
        generation = snap.generation + 1
        os.pwrite(self.fd, struct.pack("<Q", generation), GENERATION_OFFSET)
        self.snapshot = replace(snap, header=replace(snap.header, generation=generation))

    def _commit(self, n_records: int) -> None:
        """Make the first ``n_records`` records the file's (one 8-byte write)."""
        snap = self.snapshot
        assert snap is not None
        os.pwrite(self.fd, struct.pack("<Q", n_records), COMMITTED_OFFSET)
        self.snapshot = replace(snap, header=replace(snap.header, committed=n_records))

    def _mark_dead(self, positions: Iterable[int]) -> None:
        snap = self.snapshot
        assert snap is not None
        size = snap.header.record_size
        dead = bytes([STATE_DEAD])
        for position in positions:
            os.pwrite(self.fd, dead, HEADER_SIZE + int(position) * size)

    def _sync(self) -> None:
        if self.options.fsync:
            os.fsync(self.fd)

    def _refresh(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        self.cache.put(self.path, snapshot)

    def _maybe_compact(self) -> None:
        snap = self.snapshot
        assert snap is not None
        if needs_compaction(snap, self.options.compact_ratio, self.options.compact_min_dead):
            self.compact()
