"""A user's listing index: the catalog's images in listing order, newest first, so that a
process that has not parsed the catalog answers a page of images from the index and the
catalog lines appended since it was written (100,000 records parse in about 0.5 s; a page
from the index reads a few hundred rows and lines).

``{root}/{shard}/{user_id}.pcl``: magic (8 bytes), header length (4 bytes, little endian),
a JSON header (format, the catalog's inode, how many bytes of it the index covers and the
last bytes before that point, the rows' id width), then one row per image the catalog
shows, sorted by (newest ``created`` first, image id): created, expires (NaN: none), status,
and where the image's last line is in the catalog (offset -1: a photo stored with no record,
listed as ready). Deleted images have no row.

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
import struct
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from photocluster.store.catalog import STATUSES, ImageRecord, Status, parse_with_offsets
from photocluster.store.files import read_exact, write_file

MAGIC = b"PCLIST\x00\x00"
FORMAT = 1
_LENGTH = struct.Struct("<I")
#: Bytes just before the covered point that an index keeps and checks (an inode number can
#: be reused by a new catalog: these tell the two apart).
_TAIL_CHECK = 64
#: A catalog smaller than this is parsed whole (about 650 records); above it, the index is
#: rebuilt once the catalog's uncovered part passes an eighth of the covered part.
MIN_BYTES = 64 * 1024
_STATUS_CODES = {status: code for code, status in enumerate(STATUSES)}

RowArray = npt.NDArray[np.void]


@dataclass(frozen=True)
class _Header:
    inode: int
    covered: int  # bytes of the catalog indexed: up to the end of a complete line
    before: bytes  # the catalog's bytes just before ``covered``
    id_width: int
    n: int

    def encode(self) -> bytes:
        fields = {
            "format": FORMAT,
            "inode": self.inode,
            "covered": self.covered,
            "before": self.before.hex(),
            "id_width": self.id_width,
            "n": self.n,
        }
        return json.dumps(fields, separators=(",", ":")).encode()

    @classmethod
    def decode(cls, text: bytes) -> _Header | None:
        """None for anything but this format's header (another format: the next writer
        rebuilds the index, and the catalog is parsed meanwhile)."""
        try:
            fields = json.loads(text)
            if fields.get("format") != FORMAT:
                return None
            return cls(
                int(fields["inode"]),
                int(fields["covered"]),
                bytes.fromhex(fields["before"]),
                int(fields["id_width"]),
                int(fields["n"]),
            )
        except (ValueError, TypeError, KeyError, AttributeError):
            return None


def _row_dtype(id_width: int) -> np.dtype[np.void]:
    return np.dtype(
        [
            ("created", "<f8"),
            ("expires", "<f8"),
            ("offset", "<i8"),
            ("length", "<u4"),
            ("status", "u1"),
            ("id", f"S{max(1, id_width)}"),
        ]
    )


@dataclass(frozen=True)
class ListingIndex:
    """A loaded index: its rows in listing order, and the catalog bytes it covers."""

    rows: RowArray
    covered: int

    def __len__(self) -> int:
        return len(self.rows)

    def key(self, row: int) -> tuple[float, str]:
        """Row ``row``'s place in the listing: (-created, image id)."""
        return (-float(self.rows["created"][row]), self.image_id(row))

    def image_id(self, row: int) -> str:
        return bytes(self.rows["id"][row]).decode("ascii")

    def shown(self, now: float, status: Status | None) -> npt.NDArray[np.bool_]:
        """Which rows a listing shows at ``now`` (with ``status``, if given): an upload URL
        never used stops showing once it expires."""
        codes = self.rows["status"]
        expired = (codes == _STATUS_CODES["pending"]) & (self.rows["expires"] < now)
        shown = ~expired
        if status is not None:
            shown &= codes == _STATUS_CODES[status]
        return np.asarray(shown)

    def records(self, catalog_fd: int, rows: Sequence[int]) -> Iterator[ImageRecord]:
        """The records of these rows, each read from its line in the catalog."""
        for row in rows:
            offset = int(self.rows["offset"][row])
            if offset < 0:
                yield ImageRecord(self.image_id(row), "ready")
                continue
            line = read_exact(catalog_fd, int(self.rows["length"][row]), offset)
            yield ImageRecord.from_json(json.loads(line))


class Keys(Sequence[tuple[float, str]]):
    """An index's listing keys as a sequence (for bisect: each key built when asked)."""

    def __init__(self, listing: ListingIndex) -> None:
        self.listing = listing

    def __len__(self) -> int:
        return len(self.listing)

    def __getitem__(self, row: int) -> tuple[float, str]:  # type: ignore[override]
        return self.listing.key(row)


def load(catalog: Path, path: Path) -> tuple[ListingIndex, int] | None:
    """The index at ``path`` and an open fd of the catalog it indexes (the caller closes
    it), or None when there is none, or it is not the current catalog's."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    header, rows = _decode(data)
    if header is None:
        return None
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
    return ListingIndex(rows, header.covered), fd


def due(catalog: Path, path: Path) -> bool:
    """Whether the writer should rebuild the index (it holds the user's lock)."""
    try:
        stat = catalog.stat()
    except FileNotFoundError:
        return False
    header = _read_header(path)
    if header is None or header.inode != stat.st_ino:
        return stat.st_size >= MIN_BYTES
    return stat.st_size - header.covered > max(MIN_BYTES, header.covered // 8)


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
    shown = [entry for entry in latest.values() if entry[0].status != "deleted"]
    extra = [i for i in dict.fromkeys(stored) if i not in latest]
    width = max((len(e[0].image_id) for e in shown), default=1)
    width = max([width, *(len(i) for i in extra)])
    rows = np.zeros(len(shown) + len(extra), dtype=_row_dtype(width))
    n = len(shown)
    rows["created"][:n] = [r.created for r, _, _ in shown]
    rows["expires"][:n] = [np.nan if r.expires is None else r.expires for r, _, _ in shown]
    rows["offset"][:n] = [offset for _, offset, _ in shown]
    rows["length"][:n] = [length for _, _, length in shown]
    rows["status"][:n] = [_STATUS_CODES[r.status] for r, _, _ in shown]
    rows["id"][:n] = [r.image_id.encode("ascii") for r, _, _ in shown]
    rows["expires"][n:] = np.nan
    rows["offset"][n:] = -1
    rows["status"][n:] = _STATUS_CODES["ready"]
    rows["id"][n:] = [i.encode("ascii") for i in extra]
    rows = rows[np.lexsort((rows["id"], -rows["created"]))]
    before = data[max(0, covered - _TAIL_CHECK) : covered]
    header = _Header(inode, covered, before, width, len(rows))
    write_file(path, _encode(header, rows), fsync=fsync)


def _encode(header: _Header, rows: RowArray) -> bytes:
    text = header.encode()
    text += b" " * (-(len(MAGIC) + _LENGTH.size + len(text)) % 8)
    return MAGIC + _LENGTH.pack(len(text)) + text + rows.tobytes()


def _read_header(path: Path) -> _Header | None:
    try:
        with path.open("rb") as handle:
            start = handle.read(len(MAGIC) + _LENGTH.size)
            if len(start) < len(MAGIC) + _LENGTH.size or not start.startswith(MAGIC):
                return None
            (length,) = _LENGTH.unpack_from(start, len(MAGIC))
            return _Header.decode(handle.read(length))
    except FileNotFoundError:
        return None


def _decode(data: bytes) -> tuple[_Header | None, RowArray]:
    empty = np.zeros(0, dtype=_row_dtype(1))
    start = len(MAGIC) + _LENGTH.size
    if len(data) < start or not data.startswith(MAGIC):
        return None, empty
    (length,) = _LENGTH.unpack_from(data, len(MAGIC))
    header = _Header.decode(data[start : start + length])
    if header is None:
        return None, empty
    dtype = _row_dtype(header.id_width)
    body = data[start + length :]
    if len(body) != header.n * dtype.itemsize:
        return None, empty
    return header, np.frombuffer(body, dtype=dtype)
