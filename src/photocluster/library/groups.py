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
from photocluster.ids import IdArray, positions
from photocluster.library import cursors

#: Similarities computed in one batch of :func:`scores` (32 MB of float32).
_BATCH_ENTRIES = 1 << 23


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


def scores(vectors: npt.NDArray[np.float32], rows: list[npt.NDArray[np.int64]]) -> list[float]:
    """Each group's lowest similarity of two members (1.0 for a group of one): groups of
    similar size (they come largest first) in one batched product, padded to the largest."""
    found: list[float] = []
    start = 0
    while start < len(rows):
        size = max(len(rows[start]), 1)
        end = start + max(1, _BATCH_ENTRIES // (size * size))
        batch = rows[start:end]
        sizes = np.array([len(at) for at in batch])
        flat = np.concatenate(batch) if batch else np.zeros(0, np.int64)
        slot = np.full((len(batch), size), -1, dtype=np.int64)
        owner = np.repeat(np.arange(len(batch)), sizes)
        slot[owner, np.arange(len(flat)) - np.repeat(np.cumsum(sizes) - sizes, sizes)] = flat
        padded = vectors[np.maximum(slot, 0)]
        similarities = padded @ padded.transpose(0, 2, 1)
        empty = slot < 0
        similarities[empty[:, :, None] | empty[:, None, :]] = np.inf
        similarities[:, np.arange(size), np.arange(size)] = np.inf
        lowest = similarities.reshape(len(batch), -1).min(axis=1)
        found += [min(max(round(float(x), 6), 0.0), 1.0) for x in lowest]
        start = end
    return found


def pages(
    tiers: list[Tier],
    ids: IdArray,
    vectors: npt.NDArray[np.float32],
    limit: int | None = None,
    cursor: str | None = None,
    only: str | None = None,
    same_rows: bool = False,
) -> list[TierPage]:
    """A page of ``limit`` groups (None: all) of each tier, or of the cursor's tier from
    where the cursor left off (``only``: of that tier alone). ``same_rows``: the tiers were
    cut from these very ids (their rows index ``vectors``), else members are looked up."""
    start = 0
    if cursor is not None:
        named, start = _decode(cursor)
        if only is not None and only != named:
            raise InvalidCursor(f"this cursor is for tier {named!r}, not {only!r}")
        only = named
    if only is not None and only not in {t.name for t in tiers}:
        raise InvalidCursor(f"no tier {only!r} in this request")
    result = []
    ids_of: dict[int, str] = {}  # a group's id by its list: as a member and as a parent

    def name(members: list[str]) -> str:
        if id(members) not in ids_of:
            ids_of[id(members)] = group_id(members)
        return ids_of[id(members)]

    for looser, tier in zip([None, *tiers[:-1]], tiers, strict=True):
        if only is not None and tier.name != only:
            continue
        end = len(tier.groups) if limit is None else start + limit
        window = tier.groups[start:end]
        parents = _parents(looser, window, name)
        lowest = _lowest(tier, start, end, window, ids, vectors, same_rows)
        groups = [
            GroupInfo(name(members), score, members, parent)
            for members, parent, score in zip(window, parents, lowest, strict=True)
        ]
        following = _encode(tier.name, end) if end < len(tier.groups) else None
        total_images = sum(len(g) for g in tier.groups)
        result.append(
            TierPage(tier.name, tier.threshold, groups, len(tier.groups), total_images, following)
        )
    return result


def _lowest(
    tier: Tier,
    start: int,
    end: int,
    window: list[list[str]],
    ids: IdArray,
    vectors: npt.NDArray[np.float32],
    same_rows: bool,
) -> list[float]:
    """The window's scores: as the cut knew them, the others from the vectors."""
    if tier.lowest is None:
        known: list[float | None] = [None] * len(window)
    else:
        known = [None if x != x else round(x, 6) for x in tier.lowest[start:end].tolist()]
    missing = [i for i, value in enumerate(known) if value is None]
    if missing:
        rows = tier.rows[start:end] if same_rows and tier.rows else _rows(ids, window)
        for i, value in zip(missing, scores(vectors, [rows[i] for i in missing]), strict=True):
            known[i] = value
    return [value if value is not None else 1.0 for value in known]


def _rows(ids: IdArray, groups: list[list[str]]) -> list[npt.NDArray[np.int64]]:
    """Each group's rows in ``ids`` (one lookup for all of them)."""
    found = positions(ids, [i for members in groups for i in members])
    bounds = np.cumsum([len(members) for members in groups])[:-1]
    return [rows[rows >= 0] for rows in np.split(found, bounds)] if groups else []


def _parents(
    looser: Tier | None, groups: list[list[str]], name: Callable[[list[str]], str]
) -> list[str | None]:
    if looser is None:
        return [None] * len(groups)
    wanted = {members[0] for members in groups}
    holder = {i: members for members in looser.groups for i in members if i in wanted}
    return [name(holder[m[0]]) if m[0] in holder else None for m in groups]


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
