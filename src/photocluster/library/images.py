"""Each user's images as the app sees them: key, status, error, in a stable order.

The catalog file (:mod:`photocluster.store.catalog`) holds a record per image the pipeline
or the upload route has seen; an image in the store with no record (stored before records
existed, or imported with ``photocluster import-embeddings``) counts as ready. Records
carry the S3 LastModified of their object, so that a late event of an object already
replaced or deleted never overrides what came after it.

A process that has not parsed the catalog (a new Lambda instance) answers a page from the
listing index (:mod:`photocluster.store.listing`) and the lines appended since it was
written; the writer keeps that index.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import os
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from photocluster.ids import IdArray, decode_ids
from photocluster.library import cursors
from photocluster.library.results import ImagesPage
from photocluster.store import Store
from photocluster.store import listing as listing_index
from photocluster.store.catalog import CatalogFiles
from photocluster.store.memory import RECORD_BYTES
from photocluster.store.records import ImageRecord, Status


@dataclass
class UserImages:
    """The catalog files beside the store's, and recent users' listings in memory."""

    store: Store
    files: CatalogFiles
    #: the ids the store holds now (from the graph when it is fresh: no user is loaded)
    stored_ids: Callable[[str], IdArray]

    def path(self, user_id: str) -> Path:
        return self.store.paths(user_id).catalog

    def current(self, user_id: str) -> dict[str, ImageRecord]:
        """The latest record of every image the catalog knows (tombstones included);
        read-only: the cache's own."""
        return self.files.read(self.path(user_id))[1]

    def latest(self, user_id: str, image_ids: Iterable[str]) -> dict[str, ImageRecord]:
        """The latest record of each of these images the catalog knows (no full parse in
        a process that has not parsed it yet: a write, one image's status): from the
        listing index and the lines after it where there is one."""
        wanted = set(image_ids)
        path = self.path(user_id)
        loaded = None if self.files.parsed(path) else self._index(user_id)
        if loaded is None:
            return self.files.latest(path, wanted)
        index, fd = loaded
        try:
            since = self.files.since(path, os.fstat(fd).st_ino, index.covered)
            found = {i: since[i] for i in wanted if i in since}
            rows = index.find(wanted - set(found))
            found.update(zip(rows, index.records(fd, list(rows.values())), strict=True))
            return found
        finally:
            os.close(fd)

    def _index(self, user_id: str) -> tuple[listing_index.ListingIndex, int] | None:
        """The listing index of the current catalog and an fd of that catalog, if any."""
        return listing_index.load(self.path(user_id), self._index_path(user_id), self.store.memory)

    def version(self, user_id: str, now: float) -> tuple[object, int]:
        """What changes whenever the listing may: the file's version, and how many upload
        URLs never used have expired by ``now`` (their records stop showing)."""
        version, unfinished = self.files.unfinished(self.path(user_id))
        expired = sum(1 for r in unfinished if r.status == "pending" and not r.visible(now))
        return version, expired

    def unfinished(self, user_id: str, now: float) -> dict[str, int]:
        """How many of the user's photos are pending and failed (no listing is built)."""
        found = Counter(
            r.status for r in self.files.unfinished(self.path(user_id))[1] if r.visible(now)
        )
        return {"pending": found.get("pending", 0), "failed": found.get("failed", 0)}

    def record(
        self,
        user_id: str,
        records: Sequence[ImageRecord],
        now: float,
        stored: IdArray | None = None,
        index: bool = True,
    ) -> list[bool]:
        """Append what is news, in the caller's transaction (it holds the user's lock);
        returns, per record, whether it was news (False: about an older object).
        ``stored``: the ids the store holds; ``index``: keep the listing index (an import's
        batches leave it to :meth:`reindex`, at the end)."""
        known = self.latest(user_id, [r.image_id for r in records])
        latest: dict[str, ImageRecord] = {}  # this call's own records, over the file's
        news, lines = [], []
        for record in records:
            previous = latest.get(record.image_id) or known.get(record.image_id)
            new = supersedes(previous, record)
            news.append(new)
            full = previous.then(record) if previous else record
            if new and not (previous and previous.same_state(full)):
                lines.append(full)
                latest[record.image_id] = full
        path = self.path(user_id)
        self.files.append(path, lines)
        stored = stored if stored is not None else np.zeros(0, dtype="S1")
        index_path = self._index_path(user_id)
        counted = listing_index.lines(path, index_path)  # else counted over the whole file
        compacted = self.files.compact_if_due(path, now, len(stored), [index_path], counted)
        if index and (compacted or listing_index.due(path, index_path)):
            listing_index.build(path, index_path, decode_ids(stored), fsync=self.files.fsync)
        return news

    def reindex(self, user_id: str, stored: IdArray) -> None:
        """Build the listing index again (the caller holds the user's lock)."""
        path, index_path = self.path(user_id), self._index_path(user_id)
        listing_index.build(path, index_path, decode_ids(stored), fsync=self.files.fsync)

    def page(
        self, user_id: str, status: Status | None, limit: int, cursor: str | None, now: float
    ) -> ImagesPage:
        """One page of the listing (see :func:`page`): from the listing index unless this
        process has parsed the catalog, or there is no index of the current catalog."""
        path = self.path(user_id)
        after = _decode(cursor) if cursor else None
        loaded = None if self.files.parsed(path) else self._index(user_id)
        if loaded is None:
            return page(self.listing(user_id, now), status, limit, cursor)
        index, fd = loaded
        try:
            inode = os.fstat(fd).st_ino
            since = self.files.since(path, inode, index.covered)
            return _indexed_page(index, fd, since, status, limit, after, now)
        finally:
            os.close(fd)

    def _index_path(self, user_id: str) -> Path:
        return self.store.paths(user_id).listing

    def listing(self, user_id: str, now: float) -> list[ImageRecord]:
        """Every image to show, newest first (ties: by id)."""
        return [r for r in self._ordered(user_id) if r.visible(now)]

    def _ordered(self, user_id: str) -> list[ImageRecord]:
        """Every image but the deleted, newest first; kept while neither the records nor
        the store change."""
        path = self.path(user_id)
        version, records = self.files.read(path)
        stored = self.store.header(user_id).generation if self.store.exists(user_id) else None
        cached = self.store.memory.get(("listing", path))
        if cached is not None and cached[0] == (version, stored):
            listing: list[ImageRecord] = cached[1]
            return listing
        ordered = [r for r in records.values() if r.status != "deleted"]
        if stored is not None:
            ids = decode_ids(self.stored_ids(user_id))
            ordered += [ImageRecord(i, "ready") for i in ids if i not in records]
        ordered.sort(key=_order)
        weight = len(ordered) * RECORD_BYTES
        self.store.memory.put(("listing", path), ((version, stored), ordered), weight)
        return ordered


def supersedes(current: ImageRecord | None, new: ImageRecord) -> bool:
    """Whether ``new`` is news: not about an object older than the current record's, nor
    about an object that was deleted (or one older than it)."""
    modified = new.object_modified
    if current is None or modified is None:
        return True
    if current.deleted_modified is not None and modified <= current.deleted_modified:
        return False
    return current.object_modified is None or modified >= current.object_modified


def page(
    listing: list[ImageRecord], status: Status | None, limit: int, cursor: str | None
) -> ImagesPage:
    """One page of ``listing``: the images after ``cursor`` (with ``status`` if given)."""
    chosen = [r for r in listing if status is None or r.status == status]
    start = bisect.bisect_right(chosen, _decode(cursor), key=_order) if cursor else 0
    images = chosen[start : start + limit]
    more = start + limit < len(chosen)
    return ImagesPage(images, _encode(images[-1]) if more and images else None)


def _indexed_page(
    index: listing_index.ListingIndex,
    catalog_fd: int,
    since: dict[str, ImageRecord],
    status: Status | None,
    limit: int,
    after: tuple[float, str] | None,
    now: float,
) -> ImagesPage:
    """A page from the index's rows and the records of lines it does not cover (``since``:
    they supersede the index's rows of the same images)."""
    start = bisect.bisect_right(listing_index.Keys(index), after) if after is not None else 0
    shown = np.flatnonzero(index.shown(now, status)[start:]) + start
    rows = (int(row) for row in shown if index.image_id(int(row)) not in since)
    from_index = ((index.key(row), row) for row in rows)
    newer = sorted(
        (_order(r), r)
        for r in since.values()
        if r.visible(now)
        and (status is None or r.status == status)
        and (after is None or _order(r) > after)
    )
    merged: Iterable[tuple[tuple[float, str], int | ImageRecord]] = heapq.merge(from_index, newer)
    chosen = list(itertools.islice(merged, limit + 1))
    more = len(chosen) > limit
    chosen = chosen[:limit]
    wanted = [item for _, item in chosen if isinstance(item, int)]
    read = dict(zip(wanted, index.records(catalog_fd, wanted), strict=True))
    images = [item if isinstance(item, ImageRecord) else read[item] for _, item in chosen]
    return ImagesPage(images, _encode(images[-1]) if more and images else None)


def counts(listing: list[ImageRecord]) -> dict[str, int]:
    found = Counter(r.status for r in listing)
    return {status: found.get(status, 0) for status in ("pending", "ready", "failed")}


def _order(record: ImageRecord) -> tuple[float, str]:
    return (-record.created, record.image_id)


def _encode(record: ImageRecord) -> str:
    return cursors.encode([record.created, record.image_id])


def _decode(cursor: str) -> tuple[float, str]:
    """The listing position a cursor stands for (opaque to clients: they pass it back)."""
    position = cursors.decode(cursor)
    if not isinstance(position, list) or len(position) != 2:
        raise cursors.invalid()
    created, image_id = position
    if not isinstance(image_id, str) or not isinstance(created, int | float):
        raise cursors.invalid()
    return (-float(created), image_id)
