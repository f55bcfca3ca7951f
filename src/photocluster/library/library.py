"""A user's photo library: the store, its neighbour graph and its image records, kept in step.

Every service goes through this class: the writer Lambda (``write``, ``delete``,
``record``), the cluster API and the CLI (``clusters``, ``similar``, ``pairs``, ``images``,
``stats``). Writes update the store, the graph and the records under the user's one
exclusive lock; reads use the graph, rebuilt first when a writer died before updating it.

Every request's work is bounded: reads from the graph cost about the groups they return;
thresholds below the graph's floor need every pair, computed on demand only for libraries
of at most ``on_demand_max_images`` images (else 422 ``threshold_below_floor``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial

import numpy as np
import numpy.typing as npt

from photocluster.calibrations import StoredCalibrations, TierDefaults
from photocluster.clustering.graph import NeighbourGraph, verified_edges
from photocluster.clustering.similarity import (
    Neighbour,
    Pair,
    RankedPairs,
    pairs_from_graph,
    pairs_on_demand,
    similar,
    similar_by,
)
from photocluster.clustering.tiers import MIN_SIZE_MAX, cluster_graph
from photocluster.config import LINKAGES, Settings, check_thresholds
from photocluster.cpu import StageCpu
from photocluster.errors import (
    ImageNotReady,
    InvalidThresholds,
    InvalidVector,
    ThresholdBelowFloor,
    UnknownImage,
    UnknownUser,
)
from photocluster.ids import (
    IdArray,
    decode_ids,
    encode_ids,
    positions,
    validate_image_id,
    validate_user_id,
)
from photocluster.library import decisions, groups, images
from photocluster.library.copies import UserCopies
from photocluster.library.decisions import UserDecisions
from photocluster.library.graphs import UserGraphs
from photocluster.library.groups import TierPage
from photocluster.library.images import UserImages
from photocluster.library.pairs import PairsInRange, marked_rows, without_marked
from photocluster.library.results import (
    ClusterResult,
    DecisionsPage,
    ImagesPage,
    PairsPage,
    Stats,
    WriteResult,
)
from photocluster.library.tickets import TicketRate, UploadTickets
from photocluster.store import Change, Store, Transaction
from photocluster.store.catalog import CatalogFiles
from photocluster.store.files import version_of
from photocluster.store.format import HEADER_SIZE
from photocluster.store.records import ImageRecord, Status
from photocluster.store.transaction import check_room
from photocluster.store.vectors import MappedVectors

log = logging.getLogger(__name__)


@dataclass
class Library:
    """Per-user operations over a :class:`Store`, the graphs and the records beside it."""

    store: Store
    settings: Settings
    graphs: UserGraphs
    records: UserImages
    decisions: UserDecisions
    calibrations: StoredCalibrations
    copies: UserCopies
    tickets: UploadTickets

    @classmethod
    def from_settings(cls, settings: Settings) -> Library:
        store = Store(
            root=settings.store_root,
            dtype=settings.store_dtype,
            fsync=settings.store_fsync,
            compact_ratio=settings.compact_ratio,
            compact_min_dead=settings.compact_min_dead,
            cache_bytes=settings.cache_mb * 2**20,
        )
        catalogs = CatalogFiles(fsync=settings.store_fsync, memory=store.memory)
        calibrations = StoredCalibrations(settings.store_root, fsync=settings.store_fsync)
        copies = UserCopies(store)
        graphs = UserGraphs(store, settings, calibrations, copies)
        return cls(
            store,
            settings,
            graphs,
            UserImages(store, catalogs, graphs.stored_ids),
            UserDecisions(store),
            calibrations,
            copies,
            UploadTickets(
                store,
                TicketRate(settings.upload_tickets_per_minute, settings.upload_ticket_burst),
                fsync=settings.store_fsync,
            ),
        )

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
            self.records.record(user_id, news, now, _stored(tx), index=graph)
        return _result(change, tx, stale=len(ready) - len(ids), spent=spent)

    def check_room(self, user_id: str, image_id: str) -> None:
        """LibraryFull when the user's library is full and ``image_id`` is not in it (the
        upload route asks before it hands out an upload URL; the writer checks again)."""
        validate_image_id(image_id)
        held = self.stats(user_id).n_images if self.store.exists(user_id) else 0
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
            stored = _among(tx.snapshot.ids, image_ids) if tx.snapshot is not None else set()
            tombstones = [
                ImageRecord(
                    i, "deleted", None, None, now, now, None, modified.get(i), modified.get(i)
                )
                for i in dict.fromkeys(image_ids)
                if i in known or i in stored or i in modified
            ]
            self.records.record(user_id, tombstones, now, _stored(tx))
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
            return self.records.record(user_id, records, time.time(), _stored(tx))

    def open_upload(self, user_id: str, pending: ImageRecord | None) -> None:
        """Spend one of the user's upload tickets (UploadsThrottled past the rate), then
        record the photo ``pending`` (None: it stays as it is, a ready photo until new
        bytes are embedded)."""
        with self.store.transaction(user_id, self.graphs.index(user_id)) as tx:
            now = time.time()
            self.tickets.take(user_id, now)
            if pending is not None:
                validate_image_id(pending.image_id)
                self.records.record(user_id, [pending], now, _stored(tx))

    def reindex(self, user_id: str) -> NeighbourGraph:
        """Rebuild the user's graph and listing index from the store."""
        with self.store.transaction(user_id) as tx:
            snapshot = tx.snapshot
            if snapshot is None:
                raise UnknownUser(f"no embeddings stored for user {user_id!r}")
            self.records.reindex(user_id, snapshot.ids)
            return self.graphs.save(tx, self.graphs.build(user_id, snapshot))

    def mark_not_similar(self, user_id: str, image_ids: Sequence[str]) -> tuple[int, int]:
        """Record that no two of these photos are alike (every pair among them); returns
        the pairs newly marked and the user's total. UnknownImage names any photo the user
        does not have embedded (a pending or failed upload is in no group to separate)."""
        pairs = decisions.pairs_among(image_ids)
        with self.store.transaction(user_id, self.graphs.index(user_id)) as tx:
            stored = _among(tx.snapshot.ids, image_ids) if tx.snapshot is not None else set()
            unknown = sorted(set(image_ids) - stored)
            if unknown:
                raise UnknownImage(f"no image {', '.join(map(repr, unknown))}", tuple(unknown))
            return self.decisions.mark(user_id, pairs, time.time())

    def unmark_not_similar(self, user_id: str, image_ids: Sequence[str]) -> tuple[int, int]:
        """Undo :meth:`mark_not_similar` for every pair among these photos."""
        pairs = decisions.pairs_among(image_ids)
        if not self.decisions.path(user_id).exists():
            return 0, 0
        with self.store.transaction(user_id):
            return self.decisions.unmark(user_id, pairs)

    def not_similar(
        self, user_id: str, limit: int = 100, cursor: str | None = None
    ) -> DecisionsPage:
        """The user's not-similar pairs, newest first, a page at a time."""
        validate_user_id(user_id)
        current = self.decisions.read(user_id)
        window, next_cursor = decisions.page(current, limit, cursor)
        return DecisionsPage(window, len(current.not_similar), next_cursor)

    def version(self, user_id: str, records: bool = True) -> tuple[object, ...]:
        """What changes whenever any answer about the user may: the store's version, the
        decisions' and the calibrations' (a header read, two stats), and with ``records``
        the images' records' (their file parsed once per process: answers about groups and
        neighbours leave it out, it is the largest of the user's small files)."""
        parts: tuple[object, ...] = (
            self.store.version(user_id),
            self.decisions.read(user_id).version,
            self.calibrations.version(),
        )
        return (*parts, self.records.version(user_id, time.time())) if records else parts

    # ------------------------------------------------------------------ reads

    def tiers(self, model: str) -> TierDefaults:
        """The tiers of ``model`` when a request names none, and where they come from
        (``.asked(request)``: a request's tiers)."""
        return self.graphs.tiers(model)

    def clusters(
        self,
        user_id: str,
        thresholds: Mapping[str, float | None] | None = None,
        linkage: str | None = None,
        min_size: int = 2,
    ) -> ClusterResult:
        """Groups per tier (low/medium/high: the model's defaults unless given)."""
        validate_user_id(user_id)
        header = self.store.header(user_id)
        return self.cut(user_id, self.tiers(header.model).asked(thresholds), linkage, min_size)

    def cut(
        self,
        user_id: str,
        thresholds: Mapping[str, float],
        linkage: str | None = None,
        min_size: int = 2,
    ) -> ClusterResult:
        """Groups at any named thresholds (increasing), from the graph (rebuilt first if a
        writer died) when it reaches that low, else computed on demand for libraries of at
        most ``on_demand_max_images`` (ThresholdBelowFloor for larger ones)."""
        validate_user_id(user_id)
        return self._cut(user_id, thresholds, linkage, min_size)[0]

    def _cut(
        self,
        user_id: str,
        thresholds: Mapping[str, float],
        linkage: str | None,
        min_size: int,
    ) -> tuple[ClusterResult, NeighbourGraph]:
        """:meth:`cut`, and the graph its tiers' rows index."""
        linkage = linkage or self.settings.linkage
        if linkage not in LINKAGES:
            raise InvalidThresholds(f"linkage must be one of {list(LINKAGES)}")
        if not 1 <= min_size <= MIN_SIZE_MAX:
            raise InvalidThresholds(f"min_size must be between 1 and {MIN_SIZE_MAX}")
        tiers = check_thresholds(dict(thresholds))
        graph = self.graphs.current(
            user_id, edges=linkage == "single", average=linkage == "average"
        )
        lowest = min(tiers.values())
        if lowest < graph.floor:
            self._check_on_demand(graph, lowest, "threshold")
            graph = self.graphs.on_demand(user_id, lowest)
        exact = linkage == "single" or min(tiers.values()) >= graph.exact_from
        current = self.decisions.read(user_id)
        key = (
            ("cut", user_id, graph.generation, graph.floor, current.version),
            (linkage, min_size, tuple(tiers.items())),
        )
        cut = self.store.memory.get(key)
        if cut is None:  # the same question of the same data is cut once per process
            cut = cluster_graph(graph, tiers, linkage, min_size, marked_rows(graph.ids, current))
            self.store.memory.put(key, cut, sum(t.nbytes for t in cut))
        result = ClusterResult(
            user_id=user_id,
            n_images=graph.n,
            model=graph.model,
            linkage=linkage,
            tiers=cut,
            exact=exact and not graph.capped,
            generation=graph.generation,
        )
        return result, graph

    def clusters_page(
        self,
        user_id: str,
        thresholds: Mapping[str, float | None] | None = None,
        linkage: str | None = None,
        min_size: int = 2,
        limit: int | None = None,
        cursor: str | None = None,
        tier: str | None = None,
    ) -> tuple[ClusterResult, list[TierPage]]:
        """:meth:`clusters`, with its groups as objects (id, score, parent), ``limit`` per
        tier (None: all), from the cursor's place in its tier or of ``tier`` alone. Only
        the page's groups are named and scored (the user is never loaded for them)."""
        validate_user_id(user_id)
        header = self.store.header(user_id)
        wanted = self.tiers(header.model).asked(thresholds)
        result, graph = self._cut(user_id, wanted, linkage, min_size)
        scorer = partial(self._group_scores, user_id, graph)
        return result, groups.pages(result.tiers, scorer, limit, cursor, tier)

    def _group_scores(
        self, user_id: str, graph: NeighbourGraph, rows: list[npt.NDArray[np.int64]]
    ) -> list[float]:
        """Scores of groups of the graph's rows the cut did not know: their rows read from
        the mapped store file; the user loaded only when the file moved on (compacted)."""
        with self.store.mapped(user_id) as mapped:
            if _positions_hold(graph, mapped):
                return groups.scores_of_rows(lambda at: mapped.rows(graph.positions[at]), rows)
        snapshot = self.store.read(user_id)
        found = positions(snapshot.ids, decode_ids(graph.ids[np.concatenate(rows)]))
        bounds = np.cumsum([len(at) for at in rows])[:-1]
        return groups.scores(snapshot.vectors, [at[at >= 0] for at in np.split(found, bounds)])

    def similar(
        self, user_id: str, image_id: str, k: int = 10, min_score: float = 0.0
    ) -> list[Neighbour]:
        """Top-k neighbours of one image (exact: one pass over the mapped store file);
        ImageNotReady for an image still pending or failed, UnknownImage for one never seen."""
        validate_image_id(image_id)
        try:
            found = self._nearest(user_id, image_id, k, min_score)
        except (UnknownUser, UnknownImage):
            record = self.image(user_id, image_id)  # UnknownImage when there is none
            raise ImageNotReady(f"image {image_id!r} is {record.status}") from None
        marked = self.decisions.read(user_id).not_similar
        return [
            replace(n, not_similar=(min(image_id, n.image_id), max(image_id, n.image_id)) in marked)
            for n in found
        ]

    def _nearest(self, user_id: str, image_id: str, k: int, min_score: float) -> list[Neighbour]:
        """The neighbours from the graph's rows and the mapped file; from the loaded user
        when the graph is stale or its positions are for another file."""
        graph = self.graphs.fresh(user_id, edges=False)
        if graph is not None:
            with self.store.mapped(user_id) as mapped:
                if _positions_hold(graph, mapped):
                    at = graph.positions

                    def row_scores(row: int) -> npt.NDArray[np.float32]:
                        return mapped.similarities(mapped.rows(at[row : row + 1])[0], at)

                    return similar_by(graph.ids, row_scores, image_id, k, min_score)
        snapshot = self.store.read(user_id)
        return similar(snapshot.ids, snapshot.vectors, image_id, k, min_score)

    def pairs(
        self,
        user_id: str,
        min_score: float,
        max_score: float = 1.0,
        limit: int = 100,
        offset: int = 0,
    ) -> PairsPage:
        """Pairs with score in [min_score, max_score], highest first, one page at a time."""
        if not 0.0 <= min_score <= max_score <= 1.0:
            raise InvalidThresholds("need 0 <= min_score <= max_score <= 1")
        found = self._unmarked_pairs(user_id, min_score, max_score)
        u, v, s = found.first(offset + limit)
        window = slice(offset, offset + limit)
        names_a = decode_ids(found.ids[u[window]])
        names_b = decode_ids(found.ids[v[window]])
        page = [
            Pair(a, b, float(x))
            for a, b, x in zip(names_a, names_b, s[window].tolist(), strict=True)
        ]
        next_offset = offset + limit if offset + limit < found.total else None
        return PairsPage(page, found.total, next_offset, found.complete)

    def _unmarked_pairs(self, user_id: str, min_score: float, max_score: float) -> PairsInRange:
        """Every pair in the range not marked not similar; kept while the graph file and
        the decisions stay the same (the next page ranks no more than it needs)."""
        graph_file = version_of(self.graphs.path(user_id))  # first: a newer graph is read
        graph = self.graphs.current(user_id, edges=True)
        decisions = self.decisions.read(user_id)
        key = ("pairs", user_id, min_score, max_score)
        version = (graph_file, graph.generation, decisions.version)
        cached = self.store.memory.get(key)
        if cached is not None and cached[0] == version:
            return cached[1]  # type: ignore[no-any-return]
        ids, in_range, complete = self._pairs_in_range(user_id, min_score, max_score)
        found = PairsInRange(ids, without_marked(ids, in_range, decisions), complete)
        if min_score >= graph.floor:  # on demand: computed again (bounded by its own cap)
            weight = 2 * sum(array.nbytes for array in found.pairs)  # with a ranked part
            self.store.memory.put(key, (version, found), weight)
        return found

    def _pairs_in_range(
        self, user_id: str, min_score: float, max_score: float
    ) -> tuple[IdArray, RankedPairs, bool]:
        """Every pair in the range, in no order: from the graph when it reaches that low,
        else computed on demand (bounded by ``on_demand_max_images``)."""
        graph = self.graphs.current(user_id, edges=True)
        if min_score >= graph.floor:
            return graph.ids, pairs_from_graph(graph, min_score, max_score), not graph.capped
        self._check_on_demand(graph, min_score, "min_score")
        snapshot = self.store.read(user_id)
        raised = self._verified_pairs(user_id, snapshot.ids, graph)
        pairs = pairs_on_demand(snapshot.vectors, min_score, max_score, raised)
        return snapshot.ids, pairs, True

    def _verified_pairs(self, user_id: str, ids: IdArray, graph: NeighbourGraph) -> RankedPairs:
        """The user's copies and scene pairs at the scores the graph's edges keep them at, so
        a pair scores the same on demand as from the graph."""
        found = self.copies.rows(user_id, ids)
        u, v, s = verified_edges(found.copies, found.scenes, graph.params)
        return u.astype(np.int64), v.astype(np.int64), s

    def _check_on_demand(self, graph: NeighbourGraph, lowest: float, name: str) -> None:
        """Refuse work below the graph's floor on a library too large for it (every pair
        would be computed: O(N^2 d) time per request)."""
        limit = self.settings.on_demand_max_images
        if graph.n > limit:
            raise ThresholdBelowFloor(
                f"{name} {lowest} is below the stored graph's floor {graph.floor}: below it "
                f"every pair is computed on demand, which this service does only for "
                f"libraries of at most {limit} images (this one has {graph.n}); use "
                f"thresholds of at least {graph.floor}",
                floor=graph.floor,
            )

    def images(
        self,
        user_id: str,
        status: Status | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> ImagesPage:
        """A page of the user's images, newest first, with their status."""
        validate_user_id(user_id)
        return self.records.page(user_id, status, limit, cursor, time.time())

    def image(self, user_id: str, image_id: str) -> ImageRecord:
        """One image's record (UnknownImage when none is shown)."""
        validate_image_id(image_id)
        now = time.time()
        record = self.records.latest(user_id, [image_id]).get(image_id)
        if record is not None and record.visible(now):
            return record
        stored = record is None and self.store.exists(user_id)
        if stored and image_id.encode("ascii") in set(self.graphs.stored_ids(user_id).tolist()):
            return ImageRecord(image_id, "ready")
        raise UnknownImage(f"no image {image_id!r}")

    def counts(self, user_id: str) -> dict[str, int]:
        """How many of the user's images are pending, ready and failed."""
        validate_user_id(user_id)
        return images.counts(self.records.listing(user_id, time.time()))

    def unfinished(self, user_id: str) -> dict[str, int]:
        """How many of the user's images are pending and failed (no listing is built)."""
        validate_user_id(user_id)
        return self.records.unfinished(user_id, time.time())

    def stats(self, user_id: str) -> Stats:
        """The user's counts and files, from the store's and the graph's headers (no
        vector or array is read); from the loaded user only while the graph is stale."""
        header = self.store.header(user_id)
        size = self.store.paths(user_id).data.stat().st_size
        n_records = header.committed
        if n_records is None:  # a version 1 file counts every complete record
            n_records = (size - HEADER_SIZE) // header.record_size
        graph = self.graphs.fresh_header(user_id)
        n_images = graph["n"] if graph is not None else self.store.read(user_id).n
        return Stats(
            user_id=user_id,
            model=header.model,
            dim=header.dim,
            dtype=header.dtype,
            n_images=n_images,
            n_records=n_records,
            n_dead=n_records - n_images,
            file_bytes=size,
            generation=header.generation,
            graph_fresh=graph is not None,
            graph_floor=graph["floor"] if graph else None,
            graph_edges=graph["sections"]["edge_u"]["count"] if graph else None,
            graph_exact_from=graph["exact_from"] if graph else None,
            tiers=self.tiers(header.model).to_dict(),
            runtime=self.calibrations.served_by(header.model),
        )


def _positions_hold(graph: NeighbourGraph, mapped: MappedVectors) -> bool:
    """Whether the graph's rows are at its positions in this mapped file: it is the file
    they were recorded for (records never move inside one file; a compaction makes a new one)."""
    return (
        len(graph.positions) == graph.n
        and mapped.inode == graph.inode
        and (graph.n == 0 or int(graph.positions.max()) < mapped.n_records)
    )


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


def _among(ids: IdArray, image_ids: Sequence[str]) -> set[str]:
    """Which of ``image_ids`` are in ``ids`` (no decoding of every id)."""
    wanted = list(dict.fromkeys(image_ids))
    if len(wanted) > _FEW:
        at = positions(ids, wanted).tolist()
        return {i for i, row in zip(wanted, at, strict=True) if row >= 0}
    return {i for i in wanted if bool((ids == i.encode("ascii")).any())}


#: Up to this many ids are looked up one pass each; more, through one sort of all ids.
_FEW = 8


def _stored(tx: Transaction) -> IdArray | None:
    return tx.snapshot.ids if tx.snapshot is not None else None


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
