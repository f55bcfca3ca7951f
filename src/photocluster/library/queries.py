"""A library's answers about likeness: groups per tier, a photo's neighbours, pairs in a
score range; from the graph, or computed on demand below its floor for small libraries."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from functools import partial

import numpy as np
import numpy.typing as npt

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
from photocluster.config import LINKAGES, check_thresholds
from photocluster.errors import (
    ImageNotReady,
    InvalidThresholds,
    ThresholdBelowFloor,
    UnknownImage,
    UnknownUser,
)
from photocluster.ids import IdArray, decode_ids, positions, validate_image_id, validate_user_id
from photocluster.library import groups
from photocluster.library.groups import TierPage
from photocluster.library.pairs import PairsInRange, marked_rows, without_marked
from photocluster.library.parts import LibraryParts, positions_hold
from photocluster.library.results import ClusterResult, PairsPage
from photocluster.store.files import version_of


class LibraryQueries(LibraryParts):
    # ------------------------------------------------------------------ reads

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
        self, user_id: str, thresholds: Mapping[str, float], linkage: str | None, min_size: int
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
            if positions_hold(graph, mapped):
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
                if positions_hold(graph, mapped):
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
