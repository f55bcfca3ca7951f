"""What the library's operations answer: plain values that services turn into JSON."""

from __future__ import annotations

from dataclasses import dataclass, field

from photocluster.clustering.similarity import Pair
from photocluster.clustering.tiers import Tier
from photocluster.store.records import ImageRecord


@dataclass(frozen=True)
class WriteResult:
    """What one write did, by image count (``stale``: events of an object already
    superseded or deleted, ignored)."""

    added: int = 0
    replaced: int = 0
    unchanged: int = 0
    deleted: int = 0
    missing: int = 0
    stale: int = 0
    n_images: int = 0
    #: CPU milliseconds of this thread by stage (``copy_check``, ``graph``, ``store``: the
    #: rest of the write), for the pipeline's cost metrics (ingest.costs).
    cpu_ms: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class ClusterResult:
    user_id: str
    n_images: int
    model: str
    linkage: str
    tiers: list[Tier]
    exact: bool
    generation: int = -1  # of the store the groups were cut from (their rows index it)

    def to_dict(self) -> dict[str, object]:
        return self.summary() | {"tiers": [tier.to_dict() for tier in self.tiers]}

    def summary(self) -> dict[str, object]:
        """Everything but the tiers (whose pages the caller names: no other group's
        members are decoded)."""
        return {
            "user_id": self.user_id,
            "n_images": self.n_images,
            "model": self.model,
            "linkage": self.linkage,
            "exact": self.exact,
        }


@dataclass(frozen=True)
class PairsPage:
    pairs: list[Pair]
    total: int
    next_offset: int | None
    complete: bool


@dataclass(frozen=True)
class ImagesPage:
    """One page of a user's images, newest first; ``next_cursor`` None on the last page."""

    images: list[ImageRecord]
    next_cursor: str | None


@dataclass(frozen=True)
class DecisionsPage:
    """Not-similar pairs ``(a, b, marked at)``, newest first; ``total`` on every page."""

    not_similar: list[tuple[str, str, float]]
    total: int
    next_cursor: str | None


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
    #: The default tiers of the user's model and where they come from (TierDefaults.to_dict).
    tiers: dict[str, object]
    #: The encoder runtime that embedded the model's latest photos (None: not said yet).
    runtime: str | None = None
