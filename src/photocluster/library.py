"""A user's photo library: the store and its neighbour graph, kept in step.

Every service goes through this module: the writer Lambda (``write``/``delete``), the
cluster API and the CLI (``clusters``, ``similar``, ``pairs``, ``stats``). Writes update
the store and the graph under one exclusive lock; reads use the graph when it matches the
store's generation and fall back to exact on-demand computation when it does not.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy.typing as npt

from photocluster.clustering.graph import (
    GraphParams,
    NeighbourGraph,
    build_graph,
    stamp,
    update_graph,
)
from photocluster.clustering.graph_file import GRAPH_SUFFIX, load_graph, save_graph
from photocluster.clustering.similarity import (
    Neighbour,
    Pair,
    RankedPairs,
    pairs_from_graph,
    pairs_on_demand,
    similar,
)
from photocluster.clustering.tiers import LINKAGES, Tier, cluster_graph
from photocluster.config import Settings, check_thresholds
from photocluster.errors import InvalidThresholds, UnknownUser
from photocluster.ids import IdArray, decode_ids, validate_image_id, validate_user_id
from photocluster.store import Change, Store, Transaction

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WriteResult:
    """What one write did, by image count."""

    added: int = 0
    replaced: int = 0
    unchanged: int = 0
    deleted: int = 0
    missing: int = 0
    n_images: int = 0

    def to_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class ClusterResult:
    user_id: str
    n_images: int
    model: str
    linkage: str
    tiers: list[Tier]
    exact: bool

    def to_dict(self) -> dict[str, object]:
        return {
            "user_id": self.user_id,
            "n_images": self.n_images,
            "model": self.model,
            "linkage": self.linkage,
            "exact": self.exact,
            "tiers": [tier.to_dict() for tier in self.tiers],
        }


@dataclass(frozen=True)
class PairsPage:
    pairs: list[Pair]
    total: int
    next_offset: int | None
    complete: bool


@dataclass(frozen=True)
class Stats:
    user_id: str
    model: str
    dim: int
    dtype: str
    n_images: int
    n_records: int
    n_dead: int
    file_bytes: int
    generation: int
    graph_fresh: bool
    graph_floor: float | None
    graph_edges: int | None
    graph_exact_from: float | None


@dataclass
class Library:
    """Per-user operations over a :class:`Store` and the graphs beside its files."""

    store: Store
    settings: Settings
    _graphs: OrderedDict[Path, NeighbourGraph] = field(default_factory=OrderedDict, repr=False)
    _graphs_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> Library:
        store = Store(
            root=settings.store_root,
            dtype=settings.store_dtype,
            fsync=settings.store_fsync,
            compact_ratio=settings.compact_ratio,
            compact_min_dead=settings.compact_min_dead,
        )
        return cls(store=store, settings=settings)

    # ------------------------------------------------------------------ writes

    def write(
        self, user_id: str, model: str, image_ids: Sequence[str], vectors: npt.ArrayLike
    ) -> WriteResult:
        """Upsert embeddings and bring the user's graph up to date (idempotent)."""
        with self.store.transaction(user_id) as tx:
            graph = self._graph_for_update(tx)
            change = tx.upsert(model, image_ids, vectors)
            self._update_graph(tx, graph, change)
            return _result(change, tx)

    def delete(self, user_id: str, image_ids: Sequence[str]) -> WriteResult:
        """Tombstone images (unknown ids are counted as missing, not an error)."""
        with self.store.transaction(user_id) as tx:
            graph = self._graph_for_update(tx)
            change = tx.delete(image_ids)
            self._update_graph(tx, graph, change)
            return _result(change, tx)

    def reindex(self, user_id: str) -> NeighbourGraph:
        """Rebuild the user's graph from the store."""
        with self.store.transaction(user_id) as tx:
            snapshot = tx.snapshot
            if snapshot is None:
                raise UnknownUser(f"no embeddings stored for user {user_id!r}")
            return self._save(
                tx, build_graph(snapshot.ids, snapshot.vectors, self._params(snapshot.model))
            )

    def _params(self, model: str) -> GraphParams:
        return GraphParams(
            floor=self.settings.floor_for(model),
            max_neighbours=self.settings.index_max_neighbours,
            linkage_max=self.settings.index_linkage_max,
        )

    def _graph_path(self, user_id: str) -> Path:
        return self.store.paths(user_id).data.with_suffix(GRAPH_SUFFIX)

    def _graph_for_update(self, tx: Transaction) -> NeighbourGraph | None:
        """The stored graph if it reflects the store as it is now, else None (rebuild)."""
        snapshot = tx.snapshot
        if snapshot is None:
            return None
        path = self._graph_path(tx.user_id)
        with self._graphs_lock:
            graph = self._graphs.get(path)
        if graph is None or graph.generation != snapshot.generation or not graph.has_edges:
            try:
                graph = load_graph(path)
            except Exception:  # a damaged derived file is rebuilt, never fatal
                log.exception("graph %s unreadable; rebuilding", path)
                graph = None
        if (
            graph is None
            or graph.generation != snapshot.generation
            or graph.model != snapshot.model
            or graph.params != self._params(snapshot.model)
            or graph.n != snapshot.n
        ):
            return None
        return graph

    def _update_graph(self, tx: Transaction, graph: NeighbourGraph | None, change: Change) -> None:
        snapshot = tx.snapshot
        if snapshot is None:
            return
        if graph is not None and change.is_noop:
            if graph.generation != snapshot.generation:  # e.g. a repair bumped it
                self._save(tx, graph)
            return
        if graph is None:
            new = build_graph(snapshot.ids, snapshot.vectors, self._params(snapshot.model))
        else:
            new = update_graph(graph, snapshot.ids, snapshot.vectors, change.kept, change.appended)
        self._save(tx, new)

    def _save(self, tx: Transaction, graph: NeighbourGraph) -> NeighbourGraph:
        snapshot = tx.snapshot
        assert snapshot is not None
        graph = stamp(graph, snapshot.generation, snapshot.model)
        path = self._graph_path(tx.user_id)
        save_graph(graph, path, fsync=self.store.fsync)
        self._remember_graph(path, graph)
        return graph

    # ------------------------------------------------------------------ reads

    def thresholds(self, model: str, requested: Mapping[str, float | None]) -> dict[str, float]:
        """The tiers of a request: the model's defaults, overridden by what was given."""
        base = self.settings.thresholds_for(model)
        for name, value in requested.items():
            if name not in base:
                raise InvalidThresholds(f"unknown tier {name!r}; tiers are {list(base)}")
            if value is not None:
                base[name] = value
        return check_thresholds(base)

    def fresh_graph(self, user_id: str, edges: bool) -> NeighbourGraph | None:
        """The user's graph if it matches the store's generation, else None.

        Lock-free on the fast path; if the graph is stale (a write in progress, or a crash),
        waits for any writer under the shared lock and looks once more.
        """
        path = self._graph_path(user_id)
        for attempt in range(2):
            generation = self.store.header(user_id).generation
            with self._graphs_lock:
                graph = self._graphs.get(path)
            usable = (
                graph is not None
                and graph.generation == generation
                and (graph.has_edges or not edges)
            )
            if not usable:
                try:
                    graph = load_graph(path, for_clusters_only=not edges)
                except Exception:  # derived data: answer on demand instead
                    log.exception("graph %s unreadable; answering on demand", path)
                    graph = None
                if graph is not None and graph.generation == generation:
                    self._remember_graph(path, graph)
            if graph is not None and graph.generation == generation:
                return graph
            if attempt == 0:
                with self.store.shared_lock(user_id):
                    pass  # once we hold it, any write that was in progress has finished
        return None

    def _remember_graph(self, path: Path, graph: NeighbourGraph) -> None:
        with self._graphs_lock:
            current = self._graphs.get(path)
            if (
                current is not None
                and current.generation == graph.generation
                and current.has_edges
                and not graph.has_edges
            ):
                return
            self._graphs[path] = graph
            self._graphs.move_to_end(path)
            while len(self._graphs) > self.store.cache_users:
                self._graphs.popitem(last=False)

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
        return self.cut(user_id, self.thresholds(header.model, thresholds or {}), linkage, min_size)

    def cut(
        self,
        user_id: str,
        thresholds: Mapping[str, float],
        linkage: str | None = None,
        min_size: int = 2,
    ) -> ClusterResult:
        """Groups at any named thresholds (increasing), from the graph when it is fresh and
        reaches that low, else computed on demand (see :mod:`photocluster.clustering.graph`)."""
        validate_user_id(user_id)
        linkage = linkage or self.settings.linkage
        if linkage not in LINKAGES:
            raise InvalidThresholds(f"linkage must be one of {list(LINKAGES)}")
        tiers = check_thresholds(dict(thresholds))
        header = self.store.header(user_id)
        graph = self.fresh_graph(user_id, edges=linkage == "single")
        if graph is None or min(tiers.values()) < graph.floor:
            graph = self._on_demand_graph(user_id, min(tiers.values()))
        exact = linkage == "single" or min(tiers.values()) >= graph.exact_from
        return ClusterResult(
            user_id=user_id,
            n_images=graph.n,
            model=header.model,
            linkage=linkage,
            tiers=cluster_graph(graph, tiers, linkage, min_size),
            exact=exact and not graph.capped,
        )

    def _on_demand_graph(self, user_id: str, floor: float) -> NeighbourGraph:
        snapshot = self.store.read(user_id)
        params = GraphParams(
            floor=min(floor, self.settings.floor_for(snapshot.model)),
            max_neighbours=self.settings.index_max_neighbours,
            linkage_max=self.settings.index_linkage_max,
        )
        log.info(
            "user %s: clustering on demand (floor %.3f, %d images)",
            user_id,
            params.floor,
            snapshot.n,
        )
        return stamp(
            build_graph(snapshot.ids, snapshot.vectors, params), snapshot.generation, snapshot.model
        )

    def similar(
        self, user_id: str, image_id: str, k: int = 10, min_score: float = 0.0
    ) -> list[Neighbour]:
        """Top-k neighbours of one image (exact, from the stored vectors)."""
        validate_image_id(image_id)
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
        ids, (u, v, s), complete = self._ranked_pairs(user_id, min_score, max_score)
        window = slice(offset, offset + limit)
        names_a = decode_ids(ids[u[window]])
        names_b = decode_ids(ids[v[window]])
        page = [
            Pair(a, b, float(x))
            for a, b, x in zip(names_a, names_b, s[window].tolist(), strict=True)
        ]
        next_offset = offset + limit if offset + limit < len(s) else None
        return PairsPage(page, len(s), next_offset, complete)

    def _ranked_pairs(
        self, user_id: str, min_score: float, max_score: float
    ) -> tuple[IdArray, RankedPairs, bool]:
        """Every pair in the range, highest first: from the graph when it reaches that low,
        else computed on demand (bounded by ``pairs_on_demand_max_images``)."""
        graph = self.fresh_graph(user_id, edges=True)
        if graph is not None and min_score >= graph.floor:
            return graph.ids, pairs_from_graph(graph, min_score, max_score), not graph.capped
        snapshot = self.store.read(user_id)
        limit_n = self.settings.pairs_on_demand_max_images
        if snapshot.n > limit_n:
            floor = graph.floor if graph is not None else self.settings.floor_for(snapshot.model)
            raise InvalidThresholds(
                f"min_score {min_score} is below the stored graph's floor {floor}; pairs "
                f"below it are computed on demand only for libraries of at most {limit_n} "
                f"images (this one has {snapshot.n})"
            )
        return snapshot.ids, pairs_on_demand(snapshot.vectors, min_score, max_score), True

    def stats(self, user_id: str) -> Stats:
        snapshot = self.store.read(user_id)
        graph = self.fresh_graph(user_id, edges=True)
        path = self.store.paths(user_id).data
        return Stats(
            user_id=user_id,
            model=snapshot.model,
            dim=snapshot.dim,
            dtype=snapshot.header.dtype,
            n_images=snapshot.n,
            n_records=snapshot.n_records,
            n_dead=snapshot.n_dead,
            file_bytes=path.stat().st_size,
            generation=snapshot.generation,
            graph_fresh=graph is not None,
            graph_floor=graph.floor if graph else None,
            graph_edges=len(graph.edge_u) if graph else None,
            graph_exact_from=graph.exact_from if graph else None,
        )


def _result(change: Change, tx: Transaction) -> WriteResult:
    snapshot = tx.snapshot
    return WriteResult(
        added=change.added,
        replaced=change.replaced,
        unchanged=change.unchanged,
        deleted=change.deleted,
        missing=change.missing,
        n_images=snapshot.n if snapshot else 0,
    )
