"""The per-user image catalog: each image's key, processing status and error, beside the store.

``{root}/{shard}/{user_id}.pci`` holds one JSON object a line; the last line of an image
wins. Writers append under the user's exclusive lock (the store's), so the file is a log:
a reader parses only the lines added since it last looked, and a line cut short by a
crash (no newline yet) is ignored by readers and truncated by the next writer. Once most
lines are superseded, the file is rewritten (temp file, fsync, rename) without them, and
without what has expired: pending records of upload URLs never used, old tombstones.

A cold process (a Lambda's first request, the CLI) never parses the whole file for a write
or for one image: :meth:`CatalogFiles.latest` finds just the last line of each image asked
for, and appends and the compaction check count lines instead of parsing them (100,000
records parse in about 0.5 s). Listings parse it once a process, then only what is new.

Statuses: ``pending`` (an upload URL was issued, or ingest saw the object and will retry),
``ready`` (embedded; the store holds its vector), ``failed`` (with an error code),
``deleted`` (a tombstone: kept a while so that a late event of the deleted object cannot
bring it back).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from photocluster.store.files import FILE_MODE, read_exact, write_all, write_file
from photocluster.store.memory import RECORD_BYTES, MemoryCache
from photocluster.store.records import (
    ImageRecord,
    last_line_of,
    parse_lines,
)

log = logging.getLogger(__name__)

#: Most images :meth:`CatalogFiles.latest` looks up line by line (each lookup scans the
#: file; more are cheaper parsed whole, once, then only what is new).
_LOOKUPS_MAX = 32

#: How long a deletion is remembered (late events of the deleted object are ignored).
TOMBSTONE_TTL_S = 7 * 24 * 3600


@dataclass
class _Parsed:
    inode: int
    offset: int  # bytes parsed: the end of the last complete line
    lines: int
    records: dict[str, ImageRecord]


@dataclass
class CatalogFiles:
    """Every user's catalog file; what was read is kept, per file, so that a read parses
    only the lines appended since (by any process)."""

    fsync: bool = True
    memory: MemoryCache = field(default_factory=lambda: MemoryCache(64 * 2**20))
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def records(self, path: Path) -> dict[str, ImageRecord]:
        """The current record of every image in the file (empty when there is none)."""
        return dict(self._read(path).records)

    def read(self, path: Path) -> tuple[tuple[int, int], dict[str, ImageRecord]]:
        """The file's version (it changes with every append or rewrite) and its records
        (not to be modified: the cache's own)."""
        parsed = self._read(path)
        return (parsed.inode, parsed.offset), parsed.records

    def parsed(self, path: Path) -> bool:
        """Whether this process has parsed the file (and so lists from memory)."""
        return self._parsed_if_current(path) is not None

    def latest(self, path: Path, image_ids: Iterable[str]) -> dict[str, ImageRecord]:
        """The current record of each of ``image_ids`` the file knows: from what this
        process has parsed when it has, else from the last line of each (no full parse)."""
        wanted = set(image_ids)
        known = self._parsed_if_current(path)
        if known is None and len(wanted) > _LOOKUPS_MAX:  # a big batch: parse it all once
            known = self._read(path)
        if known is not None:
            return {i: known.records[i] for i in wanted if i in known.records}
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return {}
        data = b"\n" + data[: data.rfind(b"\n") + 1]  # complete lines, each after a newline
        found = {}
        for image_id in wanted:
            record = last_line_of(data, image_id, path)
            if record is not None:
                found[image_id] = record
        return found

    def unfinished(self, path: Path) -> tuple[tuple[int, int], list[ImageRecord]]:
        """The file's version and the current record of every image that is pending or
        failed (what a status count and an ETag need): a process that has not parsed the
        file reads just the lines of images that ever were (the ready are most)."""
        with self._lock:
            cached = self.memory.get(("unfinished", path))
        try:
            stat = path.stat()
        except FileNotFoundError:
            return (-1, 0), []
        known = self._parsed_if_current(path)
        if known is not None:
            found = [r for r in known.records.values() if r.status in ("pending", "failed")]
            return (known.inode, known.offset), found
        if cached is not None and cached[0] == (stat.st_ino, stat.st_size):
            return cached[1], cached[2]
        data = path.read_bytes()
        end = data.rfind(b"\n") + 1
        named = _unfinished_ids(data, end)
        if named is None:  # many: parse it all once
            parsed = self._read(path)
            found = [r for r in parsed.records.values() if r.status in ("pending", "failed")]
            return (parsed.inode, parsed.offset), found
        latest = self.latest(path, named)
        version = (stat.st_ino, end)
        found = [r for r in latest.values() if r.status in ("pending", "failed")]
        self.memory.put(("unfinished", path), ((stat.st_ino, stat.st_size), version, found), 4096)
        return version, found

    def append(self, path: Path, records: Iterable[ImageRecord]) -> None:
        """Append records (the caller holds the user's exclusive lock)."""
        data = b"".join(record.to_line() for record in records)
        if not data:
            return
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
        try:
            end = _complete_end(fd)
            if os.fstat(fd).st_size > end:  # a torn line left by a crash
                os.ftruncate(fd, end)
            write_all(fd, data, end)
            if self.fsync:
                os.fsync(fd)
        finally:
            os.close(fd)

    def compact_if_due(
        self,
        path: Path,
        now: float,
        images: int = 0,
        derived: Iterable[Path] = (),
        lines: int | None = None,
    ) -> bool:
        """Rewrite the file without superseded lines and expired records, once at least
        half of its lines are such (the caller holds the user's exclusive lock). A process
        that has not parsed the file counts its lines first: below twice ``images`` (the
        photos stored, each of which has a line) it cannot be due. Returns whether it did.
        ``derived``: files made from this one (a listing index), removed before it is
        replaced: a writer that dies between the two leaves none that names the old file.
        ``lines``: the file's line count where something knows it (the listing index)."""
        if self._parsed_if_current(path) is None:
            try:
                lines = lines if lines is not None else _count_lines(path)
            except FileNotFoundError:
                return False
            if lines < 64 or lines < 2 * images:
                return False
        parsed = self._read(path)
        kept = [r for r in parsed.records.values() if _worth_keeping(r, now)]
        if parsed.lines < 64 or parsed.lines < 2 * len(kept):
            return False
        for stale in derived:
            stale.unlink(missing_ok=True)
        write_file(path, b"".join(r.to_line() for r in kept), fsync=True)
        return True

    def since(self, path: Path, inode: int, offset: int) -> dict[str, ImageRecord]:
        """The latest record of each image with a line after ``offset`` in the file (what a
        listing index does not cover), parsed once: later calls parse only newer lines."""
        key = ("catalog-since", path, inode, offset)
        with self._lock:
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                return {}
            try:
                if os.fstat(fd).st_ino != inode:
                    return {}
                return self._refresh(path, fd, key, offset).records
            finally:
                os.close(fd)

    def _parsed_if_current(self, path: Path) -> _Parsed | None:
        """What this process parsed of ``path``, brought up to date (only new lines are
        parsed), or None when it has parsed nothing of this file."""
        known = self.memory.get(("catalog", path))
        try:
            inode = path.stat().st_ino
        except FileNotFoundError:
            return None
        if known is None or known.inode != inode:
            return None
        return self._read(path)

    def _read(self, path: Path) -> _Parsed:
        with self._lock:
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                self.memory.discard(("catalog", path))
                return _Parsed(-1, 0, 0, {})
            try:
                return self._refresh(path, fd)
            finally:
                os.close(fd)

    def _refresh(
        self, path: Path, fd: int, key: tuple[object, ...] | None = None, start: int = 0
    ) -> _Parsed:
        """What ``key`` holds of the file (from ``start``), brought up to date."""
        key = key or ("catalog", path)
        stat = os.fstat(fd)
        known = self.memory.get(key)
        if known is None or known.inode != stat.st_ino or stat.st_size < known.offset:
            known = _Parsed(stat.st_ino, start, 0, {})
        if stat.st_size > known.offset:
            tail = read_exact(fd, stat.st_size - known.offset, known.offset)
            complete = tail[: tail.rfind(b"\n") + 1]
            if complete:
                # A new dict, never the one handed out: readers iterate theirs unlocked.
                records = dict(known.records)
                records.update((r.image_id, r) for r in parse_lines(complete, path))
                known = _Parsed(
                    known.inode,
                    known.offset + len(complete),
                    known.lines + complete.count(b"\n"),
                    records,
                )
        self.memory.put(key, known, len(known.records) * RECORD_BYTES)
        return known


def _count_lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(block.count(b"\n") for block in iter(lambda: handle.read(1 << 20), b""))


def _unfinished_ids(data: bytes, end: int) -> set[str] | None:
    """The ids of the lines (before ``end``) that say pending or failed, or None when there
    are more than a line-by-line lookup pays for (a search for each status, no parse)."""
    found: set[str] = set()
    for status in (b'","status":"pending"', b'","status":"failed"'):
        at = data.find(status, 0, end)
        while at >= 0:
            start = data.rfind(b"\n", 0, at) + 1
            try:  # the line's first field, up to the status that follows it
                line = json.loads(data[start:at] + b'"}') if data.startswith(_FIRST, start) else {}
            except ValueError:  # the words stood inside another field
                line = {}
            if isinstance(line.get("image_id"), str):
                found.add(line["image_id"])
            if len(found) > _LOOKUPS_MAX:
                return None
            at = data.find(status, at + 1, end)
    return found


_FIRST = b'{"image_id":"'


def _complete_end(fd: int) -> int:
    """Where the file's last complete line ends (what follows is a line a crash cut short)."""
    size = os.fstat(fd).st_size
    step = 1 << 16
    end = size
    while end > 0:
        start = max(0, end - step)
        newline = os.pread(fd, end - start, start).rfind(b"\n")
        if newline >= 0:
            return start + newline + 1
        end = start
    return 0


def _worth_keeping(record: ImageRecord, now: float) -> bool:
    if record.status == "deleted":
        return record.updated + TOMBSTONE_TTL_S >= now
    return record.visible(now)
