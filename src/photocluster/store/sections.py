"""A user's derived array files (the neighbour graph ``.pcg``): named numpy arrays behind a
JSON header, written atomically, read a header or a few arrays at a time.

Layout: magic (8 bytes: the kind and its format), header length (8 bytes, little endian),
the JSON header (the owner's fields, and ``sections``: each array's dtype, count and byte
offset after the header), then the arrays. Whoever owns a file's content names its magics
and arrays; this module owns the layout and the atomic replace.
"""

from __future__ import annotations

import json
import os
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from photocluster.errors import StoreCorrupt
from photocluster.store.files import FILE_MODE, replace_with, temp_path

_PREFIX = 16  # magic and header length


def write_sections(
    path: Path,
    magic: bytes,
    header: Mapping[str, Any],
    arrays: Mapping[str, np.ndarray],
    fsync: bool = True,
) -> None:
    """Replace ``path`` with ``header`` and ``arrays`` (in their order), atomically."""
    contiguous = {name: np.ascontiguousarray(array) for name, array in arrays.items()}
    sections, offset = {}, 0
    for name, array in contiguous.items():
        sections[name] = {"dtype": array.dtype.str, "count": len(array), "offset": offset}
        offset += array.nbytes
    text = json.dumps({**header, "sections": sections}).encode()
    tmp = temp_path(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, FILE_MODE)
    with os.fdopen(fd, "wb") as handle:
        handle.write(magic)
        handle.write(len(text).to_bytes(8, "little"))
        handle.write(text)
        for array in contiguous.values():
            handle.write(array.tobytes())
        handle.flush()
        replace_with(tmp, path, handle.fileno(), fsync=fsync)


def read_header(path: Path, magics: Mapping[bytes, int]) -> tuple[int, dict[str, Any]] | None:
    """The file's format (by its magic) and header, or None when there is no file; no array
    is read."""
    try:
        with path.open("rb") as handle:
            version, _, header = _header(handle, path, magics)
            return version, header
    except FileNotFoundError:
        return None


def read_sections(
    path: Path, magics: Mapping[bytes, int], wanted: Collection[str]
) -> tuple[int, dict[str, Any], dict[str, np.ndarray]] | None:
    """The file's format, header and the arrays in ``wanted`` it has (the others it has: empty,
    of their dtype); None when there is no file."""
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        return None
    with handle:
        version, size, header = _header(handle, path, magics)
        arrays = {
            name: _section(handle, section, _PREFIX + size, name in wanted, name, path)
            for name, section in header["sections"].items()
        }
    return version, header, arrays


def _header(
    handle: BinaryIO, path: Path, magics: Mapping[bytes, int]
) -> tuple[int, int, dict[str, Any]]:
    version = magics.get(handle.read(8))
    if version is None:
        raise StoreCorrupt(f"{path} is not a photocluster file of this kind")
    size = int.from_bytes(handle.read(8), "little")
    if size > os.fstat(handle.fileno()).st_size - _PREFIX:
        raise StoreCorrupt(f"{path}: truncated header")
    try:
        header = json.loads(handle.read(size))
    except ValueError as exc:
        raise StoreCorrupt(f"{path}: damaged header ({exc})") from exc
    if not isinstance(header, dict) or not isinstance(header.get("sections"), dict):
        raise StoreCorrupt(f"{path}: damaged header")
    return version, size, header


def _section(
    handle: BinaryIO, section: dict[str, Any], base: int, wanted: bool, name: str, path: Path
) -> np.ndarray:
    dtype = np.dtype(section["dtype"])
    if not wanted:
        return np.zeros(0, dtype=dtype)
    count, start = int(section["count"]), base + int(section["offset"])
    if count < 0 or start + count * dtype.itemsize > os.fstat(handle.fileno()).st_size:
        raise StoreCorrupt(f"{path}: section {name} is truncated")
    handle.seek(start)
    data = handle.read(count * dtype.itemsize)
    if len(data) != count * dtype.itemsize:
        raise StoreCorrupt(f"{path}: section {name} is truncated")
    return np.frombuffer(data, dtype=dtype)
