"""A library's writes: embeddings in, deletions, records, upload tickets; each under the
user's one lock, with the graph and the records kept in step with the store."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt

from photocluster.clustering.graph import NeighbourGraph
from photocluster.cpu import StageCpu
from photocluster.errors import InvalidVector, UnknownUser
from photocluster.ids import encode_ids, validate_image_id
from photocluster.library import images
from photocluster.library.parts import LibraryParts, among, stored_ids
from photocluster.library.results import WriteResult
from photocluster.store import Change, Transaction
from photocluster.store.records import ImageRecord
from photocluster.store.transaction import check_room


class LibraryWrites(LibraryParts):
    # ------------------------------------------------------------------ writes

    def write(
        self,
        user_id: str,
        model: str,
        image_ids: Sequence[str],
        vectors: npt.ArrayLike,
        keys: Sequence[str | None] | None = None,
        modified: Sequence[float | None] | None = None,
        features: Sequence[bytes | None] | None = None,
        graph: bool = True,
    ) -> WriteResult:
        """Upsert embeddings, bring the graph up to date, record the images as ready
        (idempotent). ``keys`` and ``modified`` (S3 LastModified) say which object each
        vector came from; a vector of an object already superseded or deleted is ignored.
        ``features``: each photo's packed ORB features for the geometric check (None: its
        vector alone groups it). ``graph=False`` leaves the graph stale (a bulk import
        builds it once at the end: :mod:`photocluster.library.bulk`)."""
        now = time.time()
        ready = [
            ImageRecord(image_id, "ready", key, None, now, now, None, mod)
            for image_id, key, mod in zip(
                image_ids,
                keys or [None] * len(image_ids),
                modified or [None] * len(image_ids),
                strict=True,
            )
        ]
        spent = StageCpu()
        index = self.graphs.index(user_id) if graph else None  # an import's graph is stale
        with spent.stage("store"), self.store.transaction(user_id, index) as tx:
            known = self.records.latest(user_id, image_ids)
            fresh = [images.supersedes(known.get(r.image_id), r) for r in ready]
            ids = [r.image_id for r, news in zip(ready, fresh, strict=True) if news]
            current = self.graphs.for_update(tx) if graph else None
            rows = vectors if all(fresh) else _rows(vectors, fresh)
            change = tx.upsert(model, ids, rows, self.settings.max_images_per_user)
            given = dict(zip(ids, _given(features, fresh), strict=True))
            with spent.stage("copy_check"):
                if self._check_copies(tx, change, given):
                    current = None  # copies found for photos already stored: graph rebuilt
            if graph:
                with spent.stage("graph"):
                    self.graphs.update(tx, current, change)
            news = [r for r, n in zip(ready, fresh, strict=True) if n]
            self.records.record(user_id, news, now, stored_ids(tx), index=graph)
        return _result(change, tx, stale=len(ready) - len(ids), spent=spent)

    def check_room(self, user_id: str, image_id: str) -> None:
        """LibraryFull when the user's library is full and ``image_id`` is not in it (the
        upload route asks before it hands out an upload URL; the writer checks again)."""
        validate_image_id(image_id)
        held = self.n_images(user_id) if self.store.exists(user_id) else 0
        if held >= self.settings.max_images_per_user:
            new = image_id.encode("ascii") not in set(self.graphs.stored_ids(user_id).tolist())
            check_room(user_id, held, int(new), self.settings.max_images_per_user)

    def check_room_for(self, user_id: str, image_ids: Sequence[str]) -> None:
        """LibraryFull when these photos would take the user past the largest library (those
        it holds already take no more room): before a bulk import writes anything."""
        with self.store.transaction(user_id) as tx:
            stored = tx.snapshot.ids if tx.snapshot is not None else np.zeros(0, "S1")
            wanted = np.unique(encode_ids(list(image_ids)))
            new = len(wanted) - int(np.isin(wanted, stored).sum())
            check_room(user_id, len(stored), new, self.settings.max_images_per_user)

    def _check_copies(
        self, tx: Transaction, change: Change, features: dict[str, bytes | None]
    ) -> bool:
        """The writer's geometric check (:mod:`photocluster.library.copies`); True when it
        changed the copies of photos stored before (the graph is then built again)."""
        snapshot = tx.snapshot
        if snapshot is None:
            return False
        return self.copies.after_upsert(
            tx.user_id, snapshot.ids, snapshot.rows, change.appended, features
        )

    def delete(
        self,
        user_id: str,
        image_ids: Sequence[str],
        object_modified: Mapping[str, float] | None = None,
    ) -> WriteResult:
        """Tombstone images (unknown ids are counted as missing, not an error).
        ``object_modified``: the S3 LastModified of each deleted object, when known, so that
        a late event of that very object cannot bring it back."""
        now = time.time()
        modified = object_modified or {}
        for image_id in image_ids:
            validate_image_id(image_id)
        if not modified and not self._has_anything(user_id):
            return WriteResult(missing=len(set(image_ids)))  # and leaves no file behind
        with self.store.transaction(user_id, self.graphs.index(user_id)) as tx:
            graph = self.graphs.for_update(tx)
            change = _missing(image_ids) if tx.snapshot is None else tx.delete(image_ids)
            self.copies.forget(user_id, image_ids)
            self.graphs.update(tx, graph, change)
            known = self.records.latest(user_id, image_ids)
            stored = among(tx.snapshot.ids, image_ids) if tx.snapshot is not None else set()
            tombstones = [
                ImageRecord(
                    i, "deleted", None, None, now, now, None, modified.get(i), modified.get(i)
                )
                for i in dict.fromkeys(image_ids)
                if i in known or i in stored or i in modified
            ]
            self.records.record(user_id, tombstones, now, stored_ids(tx))
            self.decisions.forget(user_id, image_ids)
            return _result(change, tx)

    def _has_anything(self, user_id: str) -> bool:
        return self.store.exists(user_id) or self.records.path(user_id).exists()

    def record(self, user_id: str, records: Sequence[ImageRecord]) -> list[bool]:
        """Record images as pending or failed (the upload route, ingest's outcomes);
        returns, per record, whether it was news (False: about an older object)."""
        for record in records:
            validate_image_id(record.image_id)
            if record.status not in ("pending", "failed"):
                raise ValueError(f"only pending and failed are recorded directly: {record}")
        with self.store.transaction(user_id, self.graphs.index(user_id)) as tx:
            return self.records.record(user_id, records, time.time(), stored_ids(tx))

    def open_upload(self, user_id: str, pending: ImageRecord | None) -> None:
        """Spend one of the user's upload tickets (UploadsThrottled past the rate), then
        record the photo ``pending`` (None: it stays as it is, a ready photo until new
        bytes are embedded)."""
        with self.store.transaction(user_id, self.graphs.index(user_id)) as tx:
            now = time.time()
            self.tickets.take(user_id, now)
            if pending is not None:
                validate_image_id(pending.image_id)
                self.records.record(user_id, [pending], now, stored_ids(tx))

    def reindex(self, user_id: str) -> NeighbourGraph:
        """Rebuild the user's graph and listing index from the store."""
        with self.store.transaction(user_id) as tx:
            snapshot = tx.snapshot
            if snapshot is None:
                raise UnknownUser(f"no embeddings stored for user {user_id!r}")
            self.records.reindex(user_id, snapshot.ids)
            return self.graphs.save(tx, self.graphs.build(user_id, snapshot))


def _rows(vectors: npt.ArrayLike, keep: list[bool]) -> npt.NDArray[np.float64]:
    """The rows of ``vectors`` to keep (one per id, as the store checks again)."""
    try:
        array = np.asarray(vectors, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidVector(f"embeddings must be numbers: {exc}") from exc
    if array.ndim != 2 or len(array) != len(keep):
        raise InvalidVector(f"{len(keep)} ids but embeddings of shape {array.shape}")
    return np.asarray(array[np.array(keep, dtype=bool)], dtype=np.float64)


def _given(features: Sequence[bytes | None] | None, fresh: list[bool]) -> list[bytes | None]:
    """The features of the photos a write stores (``fresh``), None where none were given."""
    if features is None:
        return [None] * sum(fresh)
    return [f for f, news in zip(features, fresh, strict=True) if news]


def _missing(image_ids: Sequence[str]) -> Change:
    return Change(kept=np.zeros(0, dtype=bool), appended=0, missing=len(set(image_ids)))


def _result(
    change: Change, tx: Transaction, stale: int = 0, spent: StageCpu | None = None
) -> WriteResult:
    snapshot = tx.snapshot
    cpu_ms = {}
    if spent is not None:  # "store" timed the whole write: what the other stages left
        cpu_ms = {name: round(ms, 3) for name, ms in spent.ms.items()}
        cpu_ms["store"] = round(
            max(
                0.0,
                cpu_ms.get("store", 0.0)
                - sum(ms for name, ms in cpu_ms.items() if name != "store"),
            ),
            3,
        )
    return WriteResult(
        added=change.added,
        replaced=change.replaced,
        unchanged=change.unchanged,
        deleted=change.deleted,
        missing=change.missing,
        stale=stale,
        n_images=snapshot.n if snapshot else 0,
        cpu_ms=cpu_ms,
    )
