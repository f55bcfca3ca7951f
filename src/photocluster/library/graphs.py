"""Each user's neighbour graph kept in step with the store: updated inside the writer's
transaction, cached for readers, rebuilt whenever missing or stale.

A graph is stale after a writer died between changing the store and saving the graph. The
first reader that finds it so rebuilds it, once, under the user's exclusive lock; readers
arriving meanwhile wait for that lock and then find the rebuilt graph. No request ever
falls back to computing every pair of a large library. A graph file older than average
linkage serves the other linkages as it is; the next write, or the first average-linkage
query, links its components again (its edges are kept).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from photocluster.calibrations import StoredCalibrations, TierDefaults, resolve_tiers
from photocluster.clustering.copies import COPY_SIMILARITY, scene_similarity
from photocluster.clustering.graph import (
    GraphParams,
    NeighbourGraph,
    build_graph,
    relink,
    stamp,
    update_graph,
)
from photocluster.clustering.graph_file import load_graph, read_header, save_graph
from photocluster.config import Settings
from photocluster.errors import GraphUnavailable, UnknownUser
from photocluster.ids import ID_DTYPE, IdArray
from photocluster.library.copies import UserCopies
from photocluster.store import Change, Store, Transaction
from photocluster.store.snapshot import KnownIndex, PositionArray, Snapshot

log = logging.getLogger(__name__)


@dataclass
class UserGraphs:
    """The graph files beside the store's, and the recent users' graphs in memory."""

    store: Store
    settings: Settings
    calibrations: StoredCalibrations
    copies: UserCopies

    def floor(self, model: str) -> float:
        """The graph's floor for ``model``: from its persisted calibration when it has one."""
        return self.tiers(model).index_floor

    def tiers(self, model: str) -> TierDefaults:
        """The default tiers of ``model`` (the one resolver: :func:`resolve_tiers`)."""
        return resolve_tiers(self.settings, model, self.calibrations.get(model))

    def params(self, model: str, floor: float | None = None) -> GraphParams:
        tiers = self.tiers(model).thresholds
        return GraphParams(
            floor=self.floor(model) if floor is None else min(floor, self.floor(model)),
            max_neighbours=self.settings.index_max_neighbours,
            linkage_max=self.settings.index_linkage_max,
            copy_similarity=max(COPY_SIMILARITY, tiers["high"]),
            scene_similarity=scene_similarity(tiers["medium"], tiers["high"]),
        )

    def build(self, user_id: str, snapshot: Snapshot, floor: float | None = None) -> NeighbourGraph:
        """The graph of the stored rows from scratch, with the user's copies and scenes."""
        pairs = self.copies.rows(user_id, snapshot.ids)
        params = self.params(snapshot.model, floor)
        return build_graph(snapshot.ids, snapshot.rows, params, pairs.copies, pairs.scenes)

    def path(self, user_id: str) -> Path:
        return self.store.paths(user_id).graph

    # ------------------------------------------------------------------ writes

    def for_update(self, tx: Transaction) -> NeighbourGraph | None:
        """The stored graph if it reflects the store as it is now, else None (rebuild)."""
        snapshot = tx.snapshot
        if snapshot is None:
            return None
        path = self.path(tx.user_id)
        graph = self._cached(path)
        if graph is None or graph.generation != snapshot.generation or not graph.has_edges:
            try:
                graph = load_graph(path)
            except Exception:  # a damaged derived file is rebuilt, never fatal
                log.exception("graph %s unreadable; rebuilding", path)
                graph = None
        params = self.params(snapshot.model)
        if graph is not None and math.isnan(graph.params.scene_similarity):
            # a graph from before scene pairs holds none: any value serves it
            scenes = params.scene_similarity
            graph = replace(graph, params=replace(graph.params, scene_similarity=scenes))
        if (
            graph is None
            or graph.generation != snapshot.generation
            or graph.model != snapshot.model
            or graph.params != params
            or graph.n != snapshot.n
        ):
            return None
        return graph

    def update(self, tx: Transaction, graph: NeighbourGraph | None, change: Change) -> None:
        """Bring the graph to the store's new state: incrementally when ``graph`` (what
        :meth:`for_update` gave before the change) is usable, else from scratch."""
        snapshot = tx.snapshot
        if snapshot is None:
            return
        if graph is not None and change.is_noop:
            if graph.generation != snapshot.generation:  # e.g. a repair bumped it
                self.save(tx, graph)
            return
        if graph is None:
            new = self.build(tx.user_id, snapshot)
        else:
            pairs = self.copies.rows(tx.user_id, snapshot.ids)
            new = update_graph(
                graph,
                snapshot.ids,
                snapshot.rows,
                change.kept,
                change.appended,
                pairs.copies,
                pairs.scenes,
            )
        self.save(tx, new)

    def save(self, tx: Transaction, graph: NeighbourGraph) -> NeighbourGraph:
        snapshot = tx.snapshot
        assert snapshot is not None
        graph = stamp(
            graph, snapshot.generation, snapshot.model, snapshot.positions, snapshot.inode
        )
        path = self.path(tx.user_id)
        save_graph(graph, path, fsync=self.store.fsync)
        self._remember(path, graph)
        return graph

    # ------------------------------------------------------------------ reads

    def fresh(self, user_id: str, edges: bool) -> NeighbourGraph | None:
        """The user's graph if it matches the store's generation, else None (see
        :meth:`_when_fresh`)."""
        path = self.path(user_id)
        return self._when_fresh(
            user_id, lambda generation: self._cached_or_loaded(path, generation, edges)
        )

    def fresh_header(self, user_id: str) -> dict[str, Any] | None:
        """The header of the user's graph file if it matches the store's generation (as
        :meth:`fresh`, without reading a single array), else None."""
        return self._when_fresh(user_id, lambda _: self._header(user_id))

    def _when_fresh(self, user_id: str, look: Callable[[int], _Fresh | None]) -> _Fresh | None:
        """What ``look`` finds for the store's generation, if it is of that generation.

        Lock-free on the fast path; if it is stale (a write in progress, or a crash), waits
        for any writer under the shared lock and looks once more.
        """
        for attempt in range(2):
            generation = self.store.header(user_id).generation
            found = look(generation)
            if found is not None and _generation_of(found) == generation:
                return found
            if attempt == 0:
                with self.store.shared_lock(user_id):
                    pass  # once we hold it, any write that was in progress has finished
        return None

    def _header(self, user_id: str) -> dict[str, Any] | None:
        path = self.path(user_id)
        try:
            return read_header(path)
        except Exception:  # derived data: a damaged file is rebuilt, never fatal
            log.exception("graph %s unreadable", path)
            return None

    def index(self, user_id: str) -> KnownIndex:
        """What the user's graph knows of its store file (ids, record positions), for a
        writer's transaction: its rows without a pass over the file, when the graph is of
        that very file (generation and inode); the graph is kept in memory for the write."""
        return partial(self._known_rows, user_id)

    def _known_rows(
        self, user_id: str, generation: int, inode: int
    ) -> tuple[IdArray, PositionArray] | None:
        graph = self._cached_or_loaded(self.path(user_id), generation, edges=True)
        if graph is None or graph.generation != generation or graph.inode != inode:
            return None
        if len(graph.positions) != graph.n:
            return None
        return graph.ids.astype(ID_DTYPE), graph.positions

    def stored_ids(self, user_id: str) -> IdArray:
        """The ids the store holds, in store order: the fresh graph's (no user is loaded),
        else the store's own."""
        graph = self.fresh(user_id, edges=False)
        return graph.ids if graph is not None else self.store.read(user_id).ids

    def current(self, user_id: str, edges: bool, average: bool = False) -> NeighbourGraph:
        """The user's graph as of the store's generation: the saved one when fresh, else
        rebuilt now (see the module's docstring). UnknownUser when nothing is stored.
        ``average``: with its average-linkage merges (an older file is relinked first)."""
        graph = self.fresh(user_id, edges)
        if graph is None or (average and not graph.has_average):
            return self.heal(user_id)
        return graph

    def heal(self, user_id: str) -> NeighbourGraph:
        """Rebuild a stale graph, or relink one older than average linkage, under the
        user's exclusive lock (unless the reader that held the lock before has just done so)."""
        try:
            with self.store.transaction(user_id) as tx:
                graph = self.for_update(tx)
                if graph is not None and graph.has_average:
                    return graph
                snapshot = tx.snapshot
                if snapshot is None:
                    raise UnknownUser(f"no embeddings stored for user {user_id!r}")
                if graph is not None:
                    log.info("user %s: graph predates average linkage; relinking it", user_id)
                    pairs = self.copies.rows(user_id, snapshot.ids)
                    relinked = relink(graph, snapshot.rows, pairs.copies, pairs.scenes)
                    return self.save(tx, relinked)
                log.warning("user %s: graph stale (a writer died?); rebuilding it", user_id)
                return self.save(tx, self.build(user_id, snapshot))
        except OSError as exc:
            log.error("user %s: stale graph could not be rebuilt: %s", user_id, exc)
            raise GraphUnavailable(f"the graph of user {user_id!r} is being rebuilt") from exc

    def _cached_or_loaded(self, path: Path, generation: int, edges: bool) -> NeighbourGraph | None:
        graph = self._cached(path)
        if graph is not None and graph.generation == generation and (graph.has_edges or not edges):
            return graph
        try:
            graph = load_graph(path, for_clusters_only=not edges)
        except Exception:  # derived data: answer on demand instead
            log.exception("graph %s unreadable; answering on demand", path)
            return None
        if graph is not None and graph.generation == generation:
            self._remember(path, graph)
        return graph

    def on_demand(self, user_id: str, floor: float) -> NeighbourGraph:
        """A graph built now from the stored vectors, down to ``floor`` (exact, slower)."""
        snapshot = self.store.read(user_id)
        log.info(
            "user %s: clustering on demand (floor %.3f, %d images)", user_id, floor, snapshot.n
        )
        graph = self.build(user_id, snapshot, floor)
        return stamp(graph, snapshot.generation, snapshot.model, snapshot.positions, snapshot.inode)

    def _cached(self, path: Path) -> NeighbourGraph | None:
        graph = self.store.memory.get(("graph", path))
        assert graph is None or isinstance(graph, NeighbourGraph)
        return graph

    def _remember(self, path: Path, graph: NeighbourGraph) -> None:
        current = self._cached(path)
        if (
            current is not None
            and current.generation == graph.generation
            and current.has_edges
            and not graph.has_edges
        ):
            return
        self.store.memory.put(("graph", path), graph, _nbytes(graph))


_Fresh = TypeVar("_Fresh", NeighbourGraph, dict[str, Any])


def _generation_of(found: NeighbourGraph | dict[str, Any]) -> object:
    return found.generation if isinstance(found, NeighbourGraph) else found.get("generation")


def _nbytes(graph: NeighbourGraph) -> int:
    edges = (graph.ids, graph.edge_u, graph.edge_v, graph.edge_s)
    merges = (graph.merge_u, graph.merge_v, graph.merge_s)
    average = (graph.average_u, graph.average_v, graph.average_s)
    return sum(a.nbytes for a in (*edges, *merges, *average))
