"""The one door to the embeddings files: ``Store`` places, locks, reads and writes them.

``{root}/{shard}/{user_id}.pcs`` holds a user's embeddings (see
:mod:`photocluster.store.format`), ``{user_id}.lock`` beside it the lock. ``shard`` is the
first two hex digits of the SHA-256 of the user id, so no folder holds millions of files.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy.typing as npt

from photocluster.errors import UnknownUser
from photocluster.ids import validate_user_id
from photocluster.store.files import make_folder, remove_leftovers
from photocluster.store.format import (
    CATALOG_SUFFIX,
    COPIES_SUFFIX,
    DATA_SUFFIX,
    DECISIONS_SUFFIX,
    FEATURES_SUFFIX,
    GRAPH_SUFFIX,
    HEADER_SIZE,
    LISTING_SUFFIX,
    LOCK_SUFFIX,
    TICKETS_SUFFIX,
    Header,
    StoreDtype,
)
from photocluster.store.lock import FileLock
from photocluster.store.memory import MemoryCache
from photocluster.store.snapshot import Change, KnownIndex, Snapshot, SnapshotCache
from photocluster.store.transaction import Transaction, WriteOptions
from photocluster.store.vectors import MappedVectors, mapped


@dataclass(frozen=True)
class UserPaths:
    """A user's files (see photocluster.store.format)."""

    data: Path
    lock: Path
    graph: Path
    catalog: Path
    decisions: Path
    copies: Path
    features: Path  # a folder
    listing: Path
    tickets: Path


@dataclass
class Store:
    """All users' embedding files under ``root``."""

    root: Path
    dtype: StoreDtype = "float32"
    fsync: bool = True
    compact_ratio: float = 0.3
    compact_min_dead: int = 64
    cache_bytes: int = 256 * 2**20
    memory: MemoryCache = field(init=False, repr=False)
    cache: SnapshotCache = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.memory = MemoryCache(self.cache_bytes)  # shared with the graphs and records
        self.cache = SnapshotCache(self.memory)

    @property
    def options(self) -> WriteOptions:
        return WriteOptions(self.dtype, self.fsync, self.compact_ratio, self.compact_min_dead)

    def paths(self, user_id: str) -> UserPaths:
        """Where a user's files live; the id is validated before it touches a path."""
        validate_user_id(user_id)
        shard = hashlib.sha256(user_id.encode("ascii")).hexdigest()[:2]
        folder = self.root / shard
        return UserPaths(
            *(folder / f"{user_id}{suffix}" for suffix in (DATA_SUFFIX, LOCK_SUFFIX)),
            *(
                folder / f"{user_id}{suffix}"
                for suffix in (
                    GRAPH_SUFFIX,
                    CATALOG_SUFFIX,
                    DECISIONS_SUFFIX,
                    COPIES_SUFFIX,
                    FEATURES_SUFFIX,
                    LISTING_SUFFIX,
                    TICKETS_SUFFIX,
                )
            ),
        )

    def exists(self, user_id: str) -> bool:
        return self.paths(user_id).data.exists()

    def header(self, user_id: str) -> Header:
        """The header alone (no lock: its generation field is written in one 8-byte write)."""
        path = self.paths(user_id).data
        try:
            with path.open("rb") as handle:
                return Header.decode(handle.read(HEADER_SIZE), path)
        except FileNotFoundError:
            raise UnknownUser(f"no embeddings stored for user {user_id!r}") from None

    def version(self, user_id: str) -> tuple[int, int] | None:
        """What changes with every write of the user's embeddings: the file's inode (a
        compaction replaces it) and its generation; None when nothing is stored."""
        try:
            with self.paths(user_id).data.open("rb") as handle:
                header = handle.read(HEADER_SIZE)
                inode = os.fstat(handle.fileno()).st_ino
        except FileNotFoundError:
            return None
        return inode, Header.decode(header, self.paths(user_id).data).generation

    def read(self, user_id: str) -> Snapshot:
        """The user's live embeddings, read under a shared lock."""
        paths = self.paths(user_id)
        if not paths.data.exists():
            raise UnknownUser(f"no embeddings stored for user {user_id!r}")
        with self.shared_lock(user_id):
            fd = os.open(paths.data, os.O_RDONLY | os.O_CLOEXEC)
            try:
                return self.cache.load(fd, user_id, paths.data)[0]
            finally:
                os.close(fd)

    @contextlib.contextmanager
    def mapped(self, user_id: str) -> Iterator[MappedVectors]:
        """The user's file mapped read-only, to read some rows or make one pass over all of
        them without loading the user (see :mod:`photocluster.store.vectors`)."""
        try:
            with mapped(self.paths(user_id).data) as view:
                yield view
        except FileNotFoundError:
            raise UnknownUser(f"no embeddings stored for user {user_id!r}") from None

    @contextlib.contextmanager
    def shared_lock(self, user_id: str) -> Iterator[None]:
        """Hold the user's lock shared: no writer runs meanwhile."""
        paths = self.paths(user_id)
        if not paths.lock.exists():
            yield
            return
        with FileLock(paths.lock, exclusive=False):
            yield

    @contextlib.contextmanager
    def transaction(self, user_id: str, index: KnownIndex | None = None) -> Iterator[Transaction]:
        """Hold the user's exclusive lock for a read-modify-write. ``index``: where the
        file's live rows are, if something derived from it knows (see :func:`load_known`)."""
        paths = self.paths(user_id)
        make_folder(paths.data.parent)
        with FileLock(paths.lock, exclusive=True):
            tx = Transaction(self.options, self.cache, user_id, paths.data, index)
            remove_leftovers(
                paths.data,
                paths.graph,
                paths.catalog,
                paths.decisions,
                paths.copies,
                paths.listing,
                paths.tickets,
            )
            try:
                tx.open()
                yield tx
            finally:
                tx.close()

    def upsert(
        self, user_id: str, model: str, ids: Sequence[str], vectors: npt.ArrayLike
    ) -> Change:
        """Insert or replace embeddings by image id (idempotent)."""
        with self.transaction(user_id) as tx:
            return tx.upsert(model, ids, vectors)

    def delete(self, user_id: str, ids: Sequence[str]) -> Change:
        """Tombstone these image ids; unknown ids are counted as missing."""
        with self.transaction(user_id) as tx:
            return tx.delete(ids)

    def compact(self, user_id: str) -> None:
        """Rewrite the user's file without dead records (atomic)."""
        with self.transaction(user_id) as tx:
            tx.compact()

    def users(self) -> Iterator[str]:
        """Every user with a store file under the root."""
        if not self.root.exists():
            return
        for path in sorted(self.root.glob(f"*/*{DATA_SUFFIX}")):
            yield path.name[: -len(DATA_SUFFIX)]
