"""The on-disk format of a user's embeddings file: a 512-byte header, then fixed-size records.

::

    header   512 bytes  magic, format version, dtype, dimension, id width, generation,
                        epoch, creation time, encoder model id, committed record count
    records  n x R      state (1 byte: 'L' live, 'D' dead) + 7 pad, image id (128 bytes,
                        NUL-padded ASCII), vector (dim x float32|float16, little endian)

An image is stored when the last record of its id is live. Upserts append live records,
deletes append dead ones (tombstones); the records they supersede are then marked dead.

Fixed-size records are what make a load one read into a numpy structured array. Records
past the committed count are a batch whose writer did not finish: no reader sees them
(version 1 files, written before the count existed, count every complete record).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from photocluster.errors import DimensionMismatch, InvalidVector, StoreCorrupt
from photocluster.ids import IMAGE_ID_MAX, IdArray

MAGIC = b"PCSTORE\x00"
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
HEADER_SIZE = 512
MODEL_ID_MAX = 256
#: The longest vector a store holds (and the writer accepts).
MAX_DIM = 65536
STATE_LIVE = ord("L")
STATE_DEAD = ord("D")
#: A user's files, beside each other: the embeddings, the lock, the neighbour graph
#: (derived), the images' records, the user's decisions about pairs, the pairs the geometric
#: check accepted, the folder of the features it reads, the catalog's listing index, and
#: the user's allowance of upload tickets.
DATA_SUFFIX = ".pcs"
LOCK_SUFFIX = ".lock"
GRAPH_SUFFIX = ".pcg"
CATALOG_SUFFIX = ".pci"
DECISIONS_SUFFIX = ".pcd"
COPIES_SUFFIX = ".pcp"
FEATURES_SUFFIX = ".pcf"
LISTING_SUFFIX = ".pcl"
TICKETS_SUFFIX = ".pct"

StoreDtype = Literal["float32", "float16"]
_DTYPE_CODES: dict[str, int] = {"float32": 1, "float16": 2}
_DTYPE_NAMES = {code: name for name, code in _DTYPE_CODES.items()}
NUMPY_DTYPES: dict[str, np.dtype[Any]] = {"float32": np.dtype("<f4"), "float16": np.dtype("<f2")}
#: Largest difference at which a re-delivered vector counts as unchanged (per stored dtype).
UNCHANGED_ATOL = {"float32": 1e-6, "float16": 1e-3}

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
        ("committed", "<u8"),
    ]
)
GENERATION_OFFSET = HEADER_DTYPE.fields["generation"][1]  # type: ignore[index]
COMMITTED_OFFSET = HEADER_DTYPE.fields["committed"][1]  # type: ignore[index]
VERSION_OFFSET = HEADER_DTYPE.fields["version"][1]  # type: ignore[index]
assert HEADER_DTYPE.itemsize <= HEADER_SIZE

FloatArray = npt.NDArray[np.float32]


def record_dtype(dim: int, dtype: StoreDtype) -> np.dtype[np.void]:
    """The numpy structured dtype of one record of a store with this dimension and dtype."""
    return np.dtype(
        [
            ("state", "u1"),
            ("_pad", "V7"),
            ("id", f"S{IMAGE_ID_MAX}"),
            ("vector", NUMPY_DTYPES[dtype], (dim,)),
        ]
    )


def tombstone_records(ids: IdArray, dim: int, dtype: StoreDtype) -> bytes:
    """The bytes of dead records naming these ids (a delete batch, appended and committed
    like an upsert: an id's last record says whether it is stored)."""
    records = np.zeros(len(ids), dtype=record_dtype(dim, dtype))
    records["state"] = STATE_DEAD
    records["id"] = ids
    return records.tobytes()


def live_records(ids: IdArray, vectors: FloatArray, dim: int, dtype: StoreDtype) -> bytes:
    """The bytes of live records for these ids and vectors (appends and compaction)."""
    records = np.zeros(len(ids), dtype=record_dtype(dim, dtype))
    records["state"] = STATE_LIVE
    records["id"] = ids
    records["vector"] = vectors.astype(NUMPY_DTYPES[dtype])
    return records.tobytes()


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
    committed: int | None = None  # None: a version 1 file (every complete record counts)

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
        raw["committed"] = self.committed or 0
        return raw.tobytes().ljust(HEADER_SIZE, b"\0")

    @classmethod
    def decode(cls, data: bytes, path: Path) -> Header:
        if len(data) < HEADER_SIZE:
            raise StoreCorrupt(f"{path}: {len(data)} bytes is too short for a store header")
        raw = np.frombuffer(data[: HEADER_DTYPE.itemsize], dtype=HEADER_DTYPE)[0]
        _check_header(raw, path)
        dtype_name = _DTYPE_NAMES[int(raw["dtype_code"])]
        assert dtype_name in ("float32", "float16")
        version = int(raw["version"])
        return cls(
            version=version,
            dtype=dtype_name,  # type: ignore[arg-type]
            dim=int(raw["dim"]),
            generation=int(raw["generation"]),
            epoch=int(raw["epoch"]),
            created=float(raw["created"]),
            model=bytes(raw["model"]).decode("utf-8"),
            committed=int(raw["committed"]) if version >= 2 else None,
        )


def _check_header(raw: Any, path: Path) -> None:
    """Raise StoreCorrupt unless every field of a raw header is plausible."""
    if bytes(raw["magic"]) != MAGIC.rstrip(b"\0"):
        raise StoreCorrupt(f"{path} is not a photocluster store file (bad magic)")
    if int(raw["version"]) not in READABLE_VERSIONS:
        raise StoreCorrupt(f"{path}: unsupported store format version {int(raw['version'])}")
    if int(raw["dtype_code"]) not in _DTYPE_NAMES:
        raise StoreCorrupt(f"{path}: unknown dtype code {int(raw['dtype_code'])}")
    if int(raw["id_bytes"]) != IMAGE_ID_MAX:
        raise StoreCorrupt(f"{path}: id width {int(raw['id_bytes'])} != {IMAGE_ID_MAX}")
    if not 0 < int(raw["dim"]) <= MAX_DIM:
        raise StoreCorrupt(f"{path}: implausible dimension {int(raw['dim'])}")
    model_len = int(raw["model_len"])
    if model_len > MODEL_ID_MAX or len(bytes(raw["model"])) != model_len:
        raise StoreCorrupt(f"{path}: damaged model id field")


def normalise_vectors(vectors: npt.ArrayLike, dim: int | None = None, first: int = 0) -> FloatArray:
    """L2-normalise rows to float32; refuse non-finite, all-zero or wrongly shaped input
    (``first``: the number of the first row, in the errors' words)."""
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
        raise InvalidVector(
            f"embedding #{first + int(np.flatnonzero(~finite)[0])} has NaN or infinity"
        )
    norms = np.linalg.norm(array, axis=1)
    if (norms == 0).any():
        raise InvalidVector(f"embedding #{first + int(np.flatnonzero(norms == 0)[0])} is all zeros")
    return np.ascontiguousarray(array / norms[:, None], dtype=np.float32)
