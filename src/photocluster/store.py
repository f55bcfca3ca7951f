"""The per-user embeddings file: one file per user, fixed-size records, POSIX-locked.

Layout of ``{root}/{shard}/{user_id}.pcs``::

    header   512 bytes  magic, format version, dtype, dimension, id width, generation,
                        epoch, creation time, encoder model id
    records  n x R      state (1 byte: 'L' live, 'D' dead) + 7 pad, image id (128 bytes,
                        NUL-padded ASCII), vector (dim x float32|float16, little endian)

A load is one read into a numpy structured array. The file is an append-only log: an
upsert appends a record and marks the record it supersedes dead; a delete marks records
dead (tombstones); compaction rewrites the live records into a temporary file, fsyncs it
and renames it over the old one. Writers hold an exclusive lock on ``{user_id}.lock``
(never replaced, so a rename cannot strand a waiting writer on an unlinked inode) for the
whole read-modify-write; readers hold a shared lock while they read.

Crash safety: the generation counter is bumped *before* data changes, so anything derived
from the file (the neighbour graph) is detectably stale after a crash. Bytes of a record
cut short by a crash (the torn tail) are ignored by readers and truncated by the next writer;
a live duplicate left by a crash between "append" and "mark superseded dead" is resolved
by readers (last record wins) and repaired by the next writer.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import logging
import os
import struct
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import numpy.typing as npt

from photocluster.errors import (
    DimensionMismatch,
    InvalidVector,
    ModelMismatch,
    StoreCorrupt,
    UnknownUser,
)
from photocluster.ids import IMAGE_ID_MAX, validate_image_id, validate_user_id

log = logging.getLogger(__name__)

MAGIC = b"PCSTORE\x00"
FORMAT_VERSION = 1
HEADER_SIZE = 512
MODEL_ID_MAX = 256
STATE_LIVE = ord("L")
STATE_DEAD = ord("D")
DATA_SUFFIX = ".pcs"
LOCK_SUFFIX = ".lock"

StoreDtype = Literal["float32", "float16"]
_DTYPE_CODES: dict[str, int] = {"float32": 1, "float16": 2}
_DTYPE_NAMES = {code: name for name, code in _DTYPE_CODES.items()}
_NUMPY_DTYPES: dict[str, np.dtype[Any]] = {"float32": np.dtype("<f4"), "float16": np.dtype("<f2")}
# Largest difference at which a re-delivered vector counts as unchanged (per stored dtype).
_UNCHANGED_ATOL = {"float32": 1e-6, "float16": 1e-3}

HEADER_DTYPE = np.dtype(
    [
        ("magic", "S8"),
        ("version", "<u2"),
        ("dtype_code", "u1"),
        ("_pad0", "u1"),
        ("dim", "<u4"),
        ("id_bytes", "<u2"),
        ("model_len", "<u2"),
        ("_pad1", "V4"),
        ("generation", "<u8"),
        ("epoch", "<u8"),
        ("created", "<f8"),
        ("model", f"S{MODEL_ID_MAX}"),
    ]
)
_GENERATION_OFFSET = HEADER_DTYPE.fields["generation"][1]  # type: ignore[index]
assert HEADER_DTYPE.itemsize <= HEADER_SIZE

FloatArray = npt.NDArray[np.float32]
IdArray = npt.NDArray[np.bytes_]


def record_dtype(dim: int, dtype: StoreDtype) -> np.dtype[np.void]:
    """The numpy structured dtype of one record of a store with this dimension and dtype."""
    return np.dtype(
        [
            ("state", "u1"),
            ("_pad", "V7"),
            ("id", f"S{IMAGE_ID_MAX}"),
            ("vector", _NUMPY_DTYPES[dtype], (dim,)),
        ]
    )


@dataclass(frozen=True)
class Header:
    """The decoded header of a user's file."""

    version: int
    dtype: StoreDtype
    dim: int
    generation: int
    epoch: int
    created: float
    model: str

    @property
    def record_size(self) -> int:
        return record_dtype(self.dim, self.dtype).itemsize

    def encode(self) -> bytes:
        raw = np.zeros(1, dtype=HEADER_DTYPE)
        model = self.model.encode("utf-8")
        raw["magic"] = MAGIC
        raw["version"] = self.version
        raw["dtype_code"] = _DTYPE_CODES[self.dtype]
        raw["dim"] = self.dim
        raw["id_bytes"] = IMAGE_ID_MAX
        raw["model_len"] = len(model)
        raw["generation"] = self.generation
        raw["epoch"] = self.epoch
        raw["created"] = self.created
        raw["model"] = model
        return raw.tobytes().ljust(HEADER_SIZE, b"\0")

    @classmethod
    def decode(cls, data: bytes, path: Path) -> Header:
        if len(data) < HEADER_SIZE:
            raise StoreCorrupt(f"{path}: {len(data)} bytes is too short for a store header")
        raw = np.frombuffer(data[: HEADER_DTYPE.itemsize], dtype=HEADER_DTYPE)[0]
        if bytes(raw["magic"]) != MAGIC.rstrip(b"\0"):
            raise StoreCorrupt(f"{path} is not a photocluster store file (bad magic)")
        if int(raw["version"]) != FORMAT_VERSION:
            raise StoreCorrupt(f"{path}: unsupported store format version {int(raw['version'])}")
        code = int(raw["dtype_code"])
        if code not in _DTYPE_NAMES:
            raise StoreCorrupt(f"{path}: unknown dtype code {code}")
        if int(raw["id_bytes"]) != IMAGE_ID_MAX:
            raise StoreCorrupt(f"{path}: id width {int(raw['id_bytes'])} != {IMAGE_ID_MAX}")
        dim = int(raw["dim"])
        if not 0 < dim <= 65536:
            raise StoreCorrupt(f"{path}: implausible dimension {dim}")
        model_len = int(raw["model_len"])
        model_bytes = bytes(raw["model"])
        if model_len > MODEL_ID_MAX or len(model_bytes) != model_len:
            raise StoreCorrupt(f"{path}: damaged model id field")
        dtype_name = _DTYPE_NAMES[code]
        assert dtype_name in ("float32", "float16")
        return cls(
            version=FORMAT_VERSION,
            dtype=dtype_name,  # type: ignore[arg-type]
            dim=dim,
            generation=int(raw["generation"]),
            epoch=int(raw["epoch"]),
            created=float(raw["created"]),
            model=model_bytes.decode("utf-8"),
        )


class _Rows:
    """Growable row buffers behind successive snapshots of one writer.

    Appending to the newest snapshot writes into spare capacity instead of copying the
    whole matrix; ``claimed`` says how many rows the newest snapshot owns, so an older
    snapshot never appends over a newer one's rows (it copies instead).
    """

    def __init__(
        self, ids: IdArray, vectors: FloatArray, positions: npt.NDArray[np.int64], capacity: int
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
    positions: npt.NDArray[np.int64]
    n_records: int
    file_size: int
    inode: int
    _rows: _Rows | None = field(default=None, repr=False, compare=False)

    @property
    def n(self) -> int:
        return len(self.ids)

    def appended(
        self, ids: IdArray, vectors: FloatArray, positions: npt.NDArray[np.int64]
    ) -> tuple[IdArray, FloatArray, npt.NDArray[np.int64], _Rows]:
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


@dataclass(frozen=True)
class UserPaths:
    data: Path
    lock: Path


def decode_ids(ids: IdArray) -> list[str]:
    """Decode a fixed-width id array into Python strings (ids are ASCII by validation)."""
    return [raw.decode("ascii") for raw in ids.tolist()]


def encode_ids(ids: Sequence[str]) -> IdArray:
    """Validate and encode image ids into the store's fixed-width id array."""
    for image_id in ids:
        validate_image_id(image_id)
    return np.array([i.encode("ascii") for i in ids], dtype=f"S{IMAGE_ID_MAX}")


def normalise_vectors(vectors: npt.ArrayLike, dim: int | None = None) -> FloatArray:
    """L2-normalise rows to float32; refuse non-finite, all-zero or wrongly shaped input."""
    try:
        array = np.asarray(vectors, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidVector(f"embeddings must be numbers: {exc}") from exc
    if array.ndim != 2:
        raise InvalidVector(f"embeddings must be a 2-D array, got shape {array.shape}")
    if dim is not None and array.shape[1] != dim:
        raise DimensionMismatch(f"embeddings have dimension {array.shape[1]}, expected {dim}")
    if array.shape[1] == 0:
        raise InvalidVector("embeddings must have at least one dimension")
    finite = np.isfinite(array).all(axis=1)
    if not finite.all():
        raise InvalidVector(f"embedding #{int(np.flatnonzero(~finite)[0])} has NaN or infinity")
    norms = np.linalg.norm(array, axis=1)
    if (norms == 0).any():
        raise InvalidVector(f"embedding #{int(np.flatnonzero(norms == 0)[0])} is all zeros")
    return np.ascontiguousarray(array / norms[:, None], dtype=np.float32)


# --------------------------------------------------------------------------- locking

_OFD = hasattr(fcntl, "F_OFD_SETLKW")


class _FileLock:
    """An fcntl lock on a whole file: shared or exclusive.

    Uses open-file-description locks where the kernel has them (Linux), so that threads of
    one process exclude each other and closing another descriptor of the same file does not
    drop the lock; falls back to POSIX ``lockf`` plus an in-process lock elsewhere.
    """

    _process_locks: ClassVar[dict[str, threading.RLock]] = {}
    _guard = threading.Lock()

    def __init__(self, path: Path, exclusive: bool) -> None:
        self.path = path
        self.exclusive = exclusive
        self.fd = -1
        self._thread_lock: threading.RLock | None = None

    def __enter__(self) -> _FileLock:
        flags = os.O_RDWR | os.O_CREAT if self.exclusive else os.O_RDONLY
        self.fd = os.open(self.path, flags | os.O_CLOEXEC, 0o644)
        try:
            if _OFD:
                lock_type = fcntl.F_WRLCK if self.exclusive else fcntl.F_RDLCK
                # struct flock: l_type, l_whence, l_start, l_len, l_pid (0 for OFD locks).
                request = struct.pack("@hhqqi4x", lock_type, os.SEEK_SET, 0, 0, 0)
                _retry_eintr(lambda: fcntl.fcntl(self.fd, fcntl.F_OFD_SETLKW, request))
            else:  # pragma: no cover - non-Linux fallback
                with self._guard:
                    self._thread_lock = self._process_locks.setdefault(
                        str(self.path), threading.RLock()
                    )
                self._thread_lock.acquire()
                mode = fcntl.LOCK_EX if self.exclusive else fcntl.LOCK_SH
                _retry_eintr(lambda: fcntl.lockf(self.fd, mode))
        except BaseException:
            os.close(self.fd)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)  # closing the description releases the lock
        if self._thread_lock is not None:  # pragma: no cover - non-Linux fallback
            self._thread_lock.release()


def _retry_eintr(call: object) -> None:
    assert callable(call)
    while True:
        try:
            call()
            return
        except InterruptedError:
            continue


# --------------------------------------------------------------------------- reading


def _read_exact(fd: int, size: int, offset: int) -> bytes:
    chunks = []
    while size > 0:
        chunk = os.pread(fd, min(size, 1 << 30), offset)
        if not chunk:
            break
        chunks.append(chunk)
        size -= len(chunk)
        offset += len(chunk)
    return b"".join(chunks)


def _write_all(fd: int, data: bytes | memoryview, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view = view[written:]
        offset += written


def _load(fd: int, user_id: str, path: Path) -> tuple[Snapshot, bool]:
    """Read the whole file behind ``fd``. Returns the snapshot and whether repair is due
    (a torn tail or a live duplicate left by a crash)."""
    stat = os.fstat(fd)
    header = Header.decode(_read_exact(fd, HEADER_SIZE, 0), path)
    rdtype = record_dtype(header.dim, header.dtype)
    body = stat.st_size - HEADER_SIZE
    n_full = max(body, 0) // rdtype.itemsize
    raw = _read_exact(fd, n_full * rdtype.itemsize, HEADER_SIZE)
    records = np.frombuffer(raw, dtype=rdtype, count=len(raw) // rdtype.itemsize)
    states = records["state"]
    valid = (states == STATE_LIVE) | (states == STATE_DEAD)
    n_valid = int(np.argmin(valid)) if not valid.all() else len(records)
    torn = n_valid * rdtype.itemsize != body
    records = records[:n_valid]
    live_positions = np.flatnonzero(records["state"] == STATE_LIVE)
    ids = records["id"][live_positions]
    duplicated = False
    if len(ids) > 1:
        # Last record of an id wins; a live duplicate only exists after a crash.
        _, first_from_end = np.unique(ids[::-1], return_index=True)
        if len(first_from_end) != len(ids):
            duplicated = True
            keep = np.sort(len(ids) - 1 - first_from_end)
            live_positions = live_positions[keep]
            ids = ids[keep]
    vectors = np.ascontiguousarray(records["vector"][live_positions], dtype=np.float32)
    snapshot = Snapshot(
        user_id=user_id,
        header=header,
        ids=np.ascontiguousarray(ids),
        vectors=vectors,
        positions=live_positions.astype(np.int64),
        n_records=n_valid,
        file_size=stat.st_size,
        inode=stat.st_ino,
    )
    if torn:
        log.warning(
            "store %s: ignoring %d bytes of torn tail",
            path,
            body - n_valid * rdtype.itemsize,
        )
    return snapshot, torn or duplicated


# --------------------------------------------------------------------------- store


@dataclass
class _CacheEntry:
    snapshot: Snapshot


@dataclass
class Store:
    """All users' embedding files under ``root``."""

    root: Path
    dtype: StoreDtype = "float32"
    fsync: bool = True
    compact_ratio: float = 0.3
    compact_min_dead: int = 64
    cache_users: int = 4
    _cache: OrderedDict[Path, _CacheEntry] = field(default_factory=OrderedDict, repr=False)
    _cache_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def paths(self, user_id: str) -> UserPaths:
        """Where a user's files live; the id is validated before it touches a path."""
        validate_user_id(user_id)
        shard = hashlib.sha256(user_id.encode("ascii")).hexdigest()[:2]
        folder = self.root / shard
        return UserPaths(folder / f"{user_id}{DATA_SUFFIX}", folder / f"{user_id}{LOCK_SUFFIX}")

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

    def read(self, user_id: str) -> Snapshot:
        """The user's live embeddings, read under a shared lock."""
        paths = self.paths(user_id)
        if not paths.data.exists():
            raise UnknownUser(f"no embeddings stored for user {user_id!r}")
        with self.shared_lock(user_id):
            fd = os.open(paths.data, os.O_RDONLY | os.O_CLOEXEC)
            try:
                return self._cached_load(fd, user_id, paths.data)[0]
            finally:
                os.close(fd)

    @contextlib.contextmanager
    def shared_lock(self, user_id: str) -> Iterator[None]:
        """Hold the user's lock shared: no writer runs meanwhile."""
        paths = self.paths(user_id)
        if not paths.lock.exists():
            yield
            return
        with _FileLock(paths.lock, exclusive=False):
            yield

    @contextlib.contextmanager
    def transaction(self, user_id: str) -> Iterator[Transaction]:
        """Hold the user's exclusive lock for a read-modify-write."""
        paths = self.paths(user_id)
        paths.data.parent.mkdir(parents=True, exist_ok=True)
        with _FileLock(paths.lock, exclusive=True):
            tx = Transaction(self, user_id, paths)
            try:
                tx._open()
                yield tx
            finally:
                tx._close()

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

    # -- snapshot cache: valid while (inode, size, generation) match the file on disk.

    def _cached_load(self, fd: int, user_id: str, path: Path) -> tuple[Snapshot, bool]:
        stat = os.fstat(fd)
        generation = Header.decode(os.pread(fd, HEADER_SIZE, 0), path).generation
        with self._cache_lock:
            entry = self._cache.get(path)
            if entry is not None:
                snap = entry.snapshot
                if (snap.inode, snap.file_size, snap.generation) == (
                    stat.st_ino,
                    stat.st_size,
                    generation,
                ):
                    self._cache.move_to_end(path)
                    return snap, False
        snapshot, needs_repair = _load(fd, user_id, path)
        if not needs_repair:
            self._remember(path, snapshot)
        return snapshot, needs_repair

    def _remember(self, path: Path, snapshot: Snapshot) -> None:
        if self.cache_users <= 0:
            return
        with self._cache_lock:
            self._cache[path] = _CacheEntry(snapshot)
            self._cache.move_to_end(path)
            while len(self._cache) > self.cache_users:
                self._cache.popitem(last=False)


class Transaction:
    """A read-modify-write of one user's file under the exclusive lock."""

    def __init__(self, store: Store, user_id: str, paths: UserPaths) -> None:
        self.store = store
        self.user_id = user_id
        self.paths = paths
        self.fd = -1
        self.snapshot: Snapshot | None = None

    # -- lifecycle

    def _open(self) -> None:
        try:
            self.fd = os.open(self.paths.data, os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            return
        try:
            snapshot, needs_repair = self.store._cached_load(self.fd, self.user_id, self.paths.data)
        except StoreCorrupt:
            os.close(self.fd)
            self.fd = -1
            raise
        self.snapshot = snapshot
        if needs_repair:
            self._repair()

    def _close(self) -> None:
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
                "store %s: truncating torn tail (%d bytes)", self.paths.data, snap.file_size - end
            )
            os.ftruncate(self.fd, end)
        raw = _read_exact(self.fd, snap.n_records * snap.header.record_size, HEADER_SIZE)
        states = np.frombuffer(raw, dtype=record_dtype(snap.dim, snap.header.dtype))["state"]
        stale = np.setdiff1d(np.flatnonzero(states == STATE_LIVE), snap.positions)
        if len(stale):
            log.warning("store %s: marking %d duplicate records dead", self.paths.data, len(stale))
            self._bump_generation()
            self._mark_dead(stale)
        self._sync()
        repaired = self.snapshot
        assert repaired is not None
        self._refresh(replace(repaired, file_size=end))

    # -- operations

    def upsert(self, model: str, ids: Sequence[str], vectors: npt.ArrayLike) -> Change:
        """Insert new ids, replace changed ones, skip identical re-deliveries."""
        if not model or len(model.encode("utf-8")) > MODEL_ID_MAX:
            raise ModelMismatch(f"model id must be 1..{MODEL_ID_MAX} bytes")
        encoded = encode_ids(ids)
        snap = self.snapshot
        dim = snap.dim if snap is not None else None
        vecs = normalise_vectors(vectors, dim)
        if len(encoded) != len(vecs):
            raise InvalidVector(f"{len(encoded)} ids but {len(vecs)} embeddings")
        if len(encoded) == 0:
            return self._noop()
        if snap is not None and snap.model != model:
            raise ModelMismatch(
                f"user {self.user_id!r} holds embeddings of model {snap.model!r}; "
                f"refusing vectors of {model!r}"
            )
        # Within one call the last occurrence of an id wins.
        _, last = np.unique(encoded[::-1], return_index=True)
        keep = np.sort(len(encoded) - 1 - last)
        encoded, vecs = encoded[keep], vecs[keep]

        if snap is None:
            self._create(model, vecs.shape[1])
            snap = self.snapshot
            assert snap is not None
        stored = vecs.astype(_NUMPY_DTYPES[snap.header.dtype])
        existing = _positions_of(snap.ids, encoded)  # -1 where new
        is_known = existing >= 0
        same = np.zeros(len(encoded), dtype=bool)
        if is_known.any():
            old = snap.vectors[existing[is_known]]
            diff = np.abs(old - stored[is_known].astype(np.float32)).max(axis=1)
            same[is_known] = diff <= _UNCHANGED_ATOL[snap.header.dtype]
        write = ~same
        replaced_rows = existing[is_known & write]
        kept = np.ones(snap.n, dtype=bool)
        kept[replaced_rows] = False
        change = Change(
            kept=kept,
            appended=int(write.sum()),
            added=int((~is_known).sum()),
            replaced=len(replaced_rows),
            unchanged=int(same.sum()),
        )
        if change.appended == 0:
            return change

        self._bump_generation()
        snap = self.snapshot
        assert snap is not None
        rdtype = record_dtype(snap.dim, snap.header.dtype)
        records = np.zeros(change.appended, dtype=rdtype)
        records["state"] = STATE_LIVE
        records["id"] = encoded[write]
        records["vector"] = stored[write]
        offset = HEADER_SIZE + snap.n_records * rdtype.itemsize
        _write_all(self.fd, records.tobytes(), offset)  # append first: a crash loses nothing
        self._mark_dead(snap.positions[replaced_rows])
        self._sync()
        new_positions = np.arange(snap.n_records, snap.n_records + change.appended)
        if kept.all():
            ids_after, vectors_after, positions_after, rows = snap.appended(
                encoded[write], stored[write].astype(np.float32), new_positions
            )
        else:
            ids_after = np.concatenate([snap.ids[kept], encoded[write]])
            vectors_after = np.concatenate([snap.vectors[kept], stored[write].astype(np.float32)])
            positions_after = np.concatenate([snap.positions[kept], new_positions])
            rows = None
        self._refresh(
            replace(
                snap,
                ids=ids_after,
                vectors=vectors_after,
                positions=positions_after,
                n_records=snap.n_records + change.appended,
                file_size=offset + change.appended * rdtype.itemsize,
                _rows=rows,
            )
        )
        self._maybe_compact()
        return change

    def delete(self, ids: Sequence[str]) -> Change:
        """Tombstone ``ids``; ids that are not stored are counted in ``missing``."""
        encoded = np.unique(encode_ids(ids))
        snap = self.snapshot
        if snap is None:
            raise UnknownUser(f"no embeddings stored for user {self.user_id!r}")
        rows = _positions_of(snap.ids, encoded)
        found = rows[rows >= 0]
        kept = np.ones(snap.n, dtype=bool)
        kept[found] = False
        change = Change(kept=kept, appended=0, deleted=len(found), missing=int((rows < 0).sum()))
        if not len(found):
            return change
        self._bump_generation()
        self._mark_dead(snap.positions[found])
        self._sync()
        snap = self.snapshot
        assert snap is not None
        self._refresh(
            replace(
                snap,
                ids=snap.ids[kept],
                vectors=snap.vectors[kept],
                positions=snap.positions[kept],
                _rows=None,
            )
        )
        self._maybe_compact()
        return change

    def compact(self) -> None:
        """Rewrite live records into a new file: write temp, fsync, rename, fsync folder."""
        snap = self.snapshot
        if snap is None:
            return
        header = replace(snap.header, generation=snap.generation + 1, epoch=snap.header.epoch + 1)
        rdtype = record_dtype(snap.dim, header.dtype)
        records = np.zeros(snap.n, dtype=rdtype)
        records["state"] = STATE_LIVE
        records["id"] = snap.ids
        records["vector"] = snap.vectors.astype(_NUMPY_DTYPES[header.dtype])
        tmp = self.paths.data.with_name(f".{self.paths.data.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        try:
            _write_all(fd, header.encode(), 0)
            _write_all(fd, records.tobytes(), HEADER_SIZE)
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            tmp.unlink(missing_ok=True)
            raise
        os.replace(tmp, self.paths.data)
        _fsync_dir(self.paths.data.parent)
        os.close(self.fd)
        self.fd = fd
        stat = os.fstat(fd)
        self._refresh(
            replace(
                snap,
                header=header,
                positions=np.arange(snap.n, dtype=np.int64),
                _rows=None,
                n_records=snap.n,
                file_size=stat.st_size,
                inode=stat.st_ino,
            )
        )
        log.info("store %s: compacted to %d records", self.paths.data, snap.n)

    # -- internals

    def _noop(self) -> Change:
        n = self.snapshot.n if self.snapshot else 0
        return Change(kept=np.ones(n, dtype=bool), appended=0)

    def _create(self, model: str, dim: int) -> None:
        header = Header(
            version=FORMAT_VERSION,
            dtype=self.store.dtype,
            dim=dim,
            # Start from the clock, so a user's file deleted and created again never
            # repeats a generation that a cache or a graph file may still hold.
            generation=time.time_ns() // 1000,
            epoch=0,
            created=time.time(),
            model=model,
        )
        tmp = self.paths.data.with_name(f".{self.paths.data.name}.{os.getpid()}.new")
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        _write_all(fd, header.encode(), 0)
        if self.store.fsync:
            os.fsync(fd)
        os.replace(tmp, self.paths.data)
        _fsync_dir(self.paths.data.parent)
        self.fd = fd
        stat = os.fstat(fd)
        self.snapshot = Snapshot(
            user_id=self.user_id,
            header=header,
            ids=np.zeros(0, dtype=f"S{IMAGE_ID_MAX}"),
            vectors=np.zeros((0, dim), dtype=np.float32),
            positions=np.zeros(0, dtype=np.int64),
            n_records=0,
            file_size=stat.st_size,
            inode=stat.st_ino,
        )

    def _bump_generation(self) -> None:
        snap = self.snapshot
        assert snap is not None
        generation = snap.generation + 1
        os.pwrite(self.fd, struct.pack("<Q", generation), _GENERATION_OFFSET)
        self.snapshot = replace(snap, header=replace(snap.header, generation=generation))

    def _mark_dead(self, positions: Iterable[int]) -> None:
        snap = self.snapshot
        assert snap is not None
        size = snap.header.record_size
        dead = bytes([STATE_DEAD])
        for position in positions:
            os.pwrite(self.fd, dead, HEADER_SIZE + int(position) * size)

    def _sync(self) -> None:
        if self.store.fsync:
            os.fsync(self.fd)

    def _refresh(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        self.store._remember(self.paths.data, snapshot)

    def _maybe_compact(self) -> None:
        snap = self.snapshot
        assert snap is not None
        dead = snap.n_dead
        if dead >= self.store.compact_min_dead and dead > self.store.compact_ratio * snap.n_records:
            self.compact()


def _positions_of(haystack: IdArray, needles: IdArray) -> npt.NDArray[np.int64]:
    """Row of each needle in ``haystack`` (unique ids), or -1; vectorised via sorting."""
    if len(haystack) == 0 or len(needles) == 0:
        return np.full(len(needles), -1, dtype=np.int64)
    order = np.argsort(haystack, kind="stable")
    sorted_ids = haystack[order]
    slots = np.searchsorted(sorted_ids, needles)
    slots = np.minimum(slots, len(sorted_ids) - 1)
    found = sorted_ids[slots] == needles
    return np.where(found, order[slots], -1).astype(np.int64)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:  # pragma: no cover - platforms without directory fds
        if exc.errno in (errno.EACCES, errno.EISDIR):
            return
        raise
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
