"""Groups as objects an app can key its screens on: a stable id, a score, the parent group
in the next looser tier, and a page of each tier at a time.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from photocluster.clustering.tiers import Tier
from photocluster.errors import InvalidCursor
from photocluster.library import cursors

#: Vectors (unit rows) of the given image ids.
VectorsOf = Callable[[Sequence[str]], npt.NDArray[np.float32]]


@dataclass(frozen=True)
class GroupInfo:
    id: str
    score: float
    image_ids: list[str]
    parent_id: str | None

    def to_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class TierPage:
    name: str
    threshold: float
    groups: list[GroupInfo]
    total_groups: int
    total_images: int
    next_cursor: str | None

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "threshold": self.threshold,
            "groups": [group.to_dict() for group in self.groups],
            "total_groups": self.total_groups,
            "total_images": self.total_images,
            "next_cursor": self.next_cursor,
        }


def group_id(image_ids: Sequence[str]) -> str:
    """The same id for the same members, in any order, in any process."""
    digest = hashlib.blake2b("\n".join(sorted(image_ids)).encode(), digest_size=8)
    return f"g_{digest.hexdigest()}"


def score(vectors: npt.NDArray[np.float32]) -> float:
    """The lowest similarity of two members (1.0 for a group of one)."""
    if len(vectors) < 2:
        return 1.0
    similarities = vectors @ vectors.T
    lowest = similarities[np.triu_indices(len(vectors), k=1)].min()
    return round(float(np.clip(lowest, 0.0, 1.0)), 6)


def pages(
    tiers: list[Tier],
    vectors_of: VectorsOf,
    limit: int | None = None,
    cursor: str | None = None,
    only: str | None = None,
) -> list[TierPage]:
    """A page of ``limit`` groups (None: all) of each tier, or of the cursor's tier from
    where the cursor left off (``only``: of that tier alone)."""
    start = 0
    if cursor is not None:
        named, start = _decode(cursor)
        if only is not None and only != named:
            raise InvalidCursor(f"this cursor is for tier {named!r}, not {only!r}")
        only = named
    if only is not None and only not in {t.name for t in tiers}:
        raise InvalidCursor(f"no tier {only!r} in this request")
    result = []
    for looser, tier in zip([None, *tiers[:-1]], tiers, strict=True):
        if only is not None and tier.name != only:
            continue
        end = len(tier.groups) if limit is None else start + limit
        window = tier.groups[start:end]
        parents = _parents(looser, window)
        groups = [
            GroupInfo(group_id(members), score(vectors_of(members)), members, parent)
            for members, parent in zip(window, parents, strict=True)
        ]
        following = _encode(tier.name, end) if end < len(tier.groups) else None
        total_images = sum(len(g) for g in tier.groups)
        result.append(
            TierPage(tier.name, tier.threshold, groups, len(tier.groups), total_images, following)
        )
    return result


def _parents(looser: Tier | None, groups: list[list[str]]) -> list[str | None]:
    if looser is None:
        return [None] * len(groups)
    wanted = {members[0] for members in groups}
    holder = {i: members for members in looser.groups for i in members if i in wanted}
    return [group_id(holder[m[0]]) if m[0] in holder else None for m in groups]


def _encode(tier: str, offset: int) -> str:
    return cursors.encode({"t": tier, "o": offset})


def _decode(cursor: str) -> tuple[str, int]:
    position = cursors.decode(cursor)
    if not isinstance(position, dict):
        raise cursors.invalid()
    tier, offset = position.get("t"), position.get("o")
    if not isinstance(tier, str) or not isinstance(offset, int) or offset < 0:
        raise cursors.invalid()
    return tier, offset
