"""A user's listing index: the catalog's images in listing order, newest first, so that a
process that has not parsed the catalog answers a page of images from the index and the
catalog lines appended since it was written (100,000 records parse in about 0.5 s; a page
from the index reads a few hundred rows and lines).

``{root}/{shard}/{user_id}.pcl``, in the store's array file layout
(:mod:`photocluster.store.sections`): a header (the catalog's inode, how many bytes of it
the index covers and the last bytes before that point), then a column per field, a row per
image the catalog shows, sorted by (newest ``created`` first, image id): created, expires
(NaN: none), status, and where the image's last line is in the catalog (offset -1: a photo
stored with no record, listed as ready). Deleted images keep their row (a tombstone, never
listed): the index also answers what the catalog last says of an image (:meth:`find`).

The catalog only grows by appends (a line a crash cut short lies after the last complete
line, beyond what an index covers) until a compaction replaces it: the compaction removes
the index first, so that an index only ever names the catalog it was made from (checked by
its inode, its size and the bytes just before the point the index covers). The writer that
appends rebuilds it (atomically, under the user's exclusive lock) after a compaction and
once what it does not cover passes an eighth of what it does: a reader parses at most that
many lines.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from photocluster.errors import StoreCorrupt
from photocluster.store.files import read_exact, version_of
from photocluster.store.memory import MemoryCache
from photocluster.store.records import STATUSES, ImageRecord, Status, parse_with_offsets
from photocluster.store.sections import read_header, read_sections, write_sections

MAGIC = b"PCLIST02"  # format 2: tombstones have rows (1 had none: not read)
_VERSIONS = {MAGIC: 2}
_COLUMNS = ("created", "expires", "offset", "length", "status", "id")
#: Bytes just before the covered point that an index keeps and checks.
_TAIL_CHECK = 64
#: A catalog smaller than this is parsed whole (about 650 records); above it, the index is
#: rebuilt once the catalog's uncovered part passes an eighth of the covered part.
MIN_BYTES = 64 * 1024
_STATUS_CODES = {status: code for code, status in enumerate(STATUSES)}


@dataclass(frozen=True)
class _Header:
    inode: int
    covered: int  # bytes of the catalog indexed: up to the end of a complete line
    before: bytes  # the catalog's bytes just before ``covered``
    lines: int  # the catalog's lines in those bytes (superseded ones too)

    def fields(self) -> dict[str, object]:
        return {
            "inode": self.inode,
            "covered": self.covered,
            "before": self.before.hex(),
            "lines": self.lines,
        }

    @classmethod
    def of(cls, fields: dict[str, Any]) -> _Header | None:
        try:
            return cls(
                int(fields["inode"]),
                int(fields["covered"]),
                bytes.fromhex(fields["before"]),
                int(fields["lines"]),
            )
        except (ValueError, TypeError, KeyError):
            return None


@dataclass(frozen=True)
class ListingIndex:
    """A loaded index: its columns (rows in listing order), and the catalog bytes it covers."""

    columns: dict[str, np.ndarray]
    covered: int

    def __len__(self) -> int:
        return len(self.columns["id"])

    def key(self, row: int) -> tuple[float, str]:
        """Row ``row``'s place in the listing: (-created, image id)."""
        return (-float(self.columns["created"][row]), self.image_id(row))

    def image_id(self, row: int) -> str:
        return bytes(self.columns["id"][row]).decode("ascii")

    def shown(self, now: float, status: Status | None) -> npt.NDArray[np.bool_]:
        """Which rows a listing shows at ``now`` (with ``status``, if given): an upload URL
        never used stops showing once it expires."""
        codes = self.columns["status"]
        expired = (codes == _STATUS_CODES["pending"]) & (self.columns["expires"] < now)
        shown = ~expired & (codes != _STATUS_CODES["deleted"])
        if status is not None:
            shown &= codes == _STATUS_CODES[status]
        return np.asarray(shown)

    def find(self, image_ids: Iterable[str]) -> dict[str, int]:
        """The row of each of these images that has a line in the catalog."""
        names = [i.encode("ascii") for i in image_ids if len(i) <= self.columns["id"].itemsize]
        wanted = np.array(names, dtype=self.columns["id"].dtype)
        found = np.isin(self.columns["id"], wanted) & (self.columns["offset"] >= 0)
        return {self.image_id(int(row)): int(row) for row in np.flatnonzero(found)}

    def records(self, catalog_fd: int, rows: Sequence[int]) -> Iterator[ImageRecord]:
        """The records of these rows, each read from its line in the catalog."""
        for row in rows:
            offset = int(self.columns["offset"][row])
            if offset < 0:
                yield ImageRecord(self.image_id(row), "ready")
                continue
            line = read_exact(catalog_fd, int(self.columns["length"][row]), offset)
            yield ImageRecord.from_json(json.loads(line))


class Keys(Sequence[tuple[float, str]]):
    """An index's listing keys as a sequence (for bisect: each key built when asked)."""

    def __init__(self, listing: ListingIndex) -> None:
        self.listing = listing

    def __len__(self) -> int:
        return len(self.listing)

    def __getitem__(self, row: int) -> tuple[float, str]:  # type: ignore[override]
        return self.listing.key(row)


def load(
    catalog: Path, path: Path, memory: MemoryCache | None = None
) -> tuple[ListingIndex, int] | None:
    """The index at ``path`` and an open fd of the catalog it indexes (the caller closes
    it), or None when there is none, or it is not the current catalog's or not readable
    (the catalog is parsed instead, and the next writer rebuilds the index). ``memory``:
    where a process keeps what it read, while the file stays the same."""
    read = _read(path, memory)
    if read is None:
        return None
    header, index = read
    try:
        fd = os.open(catalog, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    stat = os.fstat(fd)
    start = header.covered - len(header.before)
    if (
        stat.st_ino != header.inode
        or stat.st_size < header.covered
        or read_exact(fd, len(header.before), start) != header.before
    ):
        os.close(fd)
        return None
    return index, fd


def _read(path: Path, memory: MemoryCache | None) -> tuple[_Header, ListingIndex] | None:
    version = version_of(path)
    if version is None:
        return None
    cached = memory.get(("listing-index", path)) if memory is not None else None
    if cached is not None and cached[0] == version:
        return cached[1]  # type: ignore[no-any-return]
    try:
        found = read_sections(path, _VERSIONS, _COLUMNS)
    except StoreCorrupt:
        return None
    if found is None:
        return None
    _, fields, columns = found
    header = _Header.of(fields)
    lengths = {len(columns.get(name, ())) for name in _COLUMNS}
    if header is None or len(lengths) != 1 or set(columns) != set(_COLUMNS):
        return None
    read = header, ListingIndex(columns, header.covered)
    if memory is not None:
        weight = sum(column.nbytes for column in columns.values())
        memory.put(("listing-index", path), (version, read), weight)
    return read


def due(catalog: Path, path: Path) -> bool:
    """Whether the writer should rebuild the index (it holds the user's lock)."""
    try:
        stat = catalog.stat()
    except FileNotFoundError:
        return False
    try:
        found = read_header(path, _VERSIONS)
    except StoreCorrupt:
        found = None
    header = _Header.of(found[1]) if found is not None else None
    if header is None or header.inode != stat.st_ino:
        return stat.st_size >= MIN_BYTES
    return stat.st_size - header.covered > max(MIN_BYTES, header.covered // 8)


def lines(catalog: Path, path: Path) -> int | None:
    """How many lines the catalog has (the compaction's check), from the index's count and
    the bytes after what it covers; None without an index of this catalog."""
    try:
        found = read_header(path, _VERSIONS)
    except StoreCorrupt:
        return None
    header = _Header.of(found[1]) if found is not None else None
    if header is None:
        return None
    try:
        fd = os.open(catalog, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        stat = os.fstat(fd)
        start = header.covered - len(header.before)
        if stat.st_ino != header.inode or stat.st_size < header.covered:
            return None
        if read_exact(fd, len(header.before), start) != header.before:
            return None
        return header.lines + read_exact(fd, stat.st_size - header.covered, header.covered).count(
            b"\n"
        )
    finally:
        os.close(fd)


def build(catalog: Path, path: Path, stored: Iterable[str], fsync: bool = True) -> None:
    """Write the index of the catalog as it is now (the caller holds the user's exclusive
    lock); ``stored``: the ids the store holds (those with no record are listed as ready)."""
    try:
        fd = os.open(catalog, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        path.unlink(missing_ok=True)
        return
    try:
        inode = os.fstat(fd).st_ino
        data = read_exact(fd, os.fstat(fd).st_size, 0)
    finally:
        os.close(fd)
    covered = data.rfind(b"\n") + 1
    latest: dict[str, tuple[ImageRecord, int, int]] = {}
    for record, offset, length in parse_with_offsets(data[:covered], catalog):
        latest[record.image_id] = (record, offset, length)
    shown = list(latest.values())
    extra = [i for i in dict.fromkeys(stored) if i not in latest]
    ids = [r.image_id for r, _, _ in shown] + extra
    width = max((len(i) for i in ids), default=1)
    nan = float("nan")
    columns = {
        "created": np.array([r.created for r, _, _ in shown] + [0.0] * len(extra), "<f8"),
        "expires": np.array(
            [nan if r.expires is None else r.expires for r, _, _ in shown] + [nan] * len(extra),
            "<f8",
        ),
        "offset": np.array([o for _, o, _ in shown] + [-1] * len(extra), "<i8"),
        "length": np.array([n for _, _, n in shown] + [0] * len(extra), "<u4"),
        "status": np.array(
            [_STATUS_CODES[r.status] for r, _, _ in shown] + [_STATUS_CODES["ready"]] * len(extra),
            "u1",
        ),
        "id": np.array([i.encode("ascii") for i in ids], f"S{max(1, width)}"),
    }
    order = np.lexsort((columns["id"], -columns["created"]))
    before = data[max(0, covered - _TAIL_CHECK) : covered]
    header = _Header(inode, covered, before, data.count(b"\n", 0, covered))
    ordered = {name: columns[name][order] for name in _COLUMNS}
    write_sections(path, MAGIC, header.fields(), ordered, fsync=fsync)
