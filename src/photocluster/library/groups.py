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


Rows = npt.NDArray[np.int64]
#: What scores groups the cut could not: the vectors of the tiers' rows, or a function that
#: gives the scores of groups of those rows (e.g. reading just their rows from the store).
Vectors = npt.NDArray[np.float32] | Callable[[list[Rows]], list[float]]


def pages(
    tiers: list[Tier],
    vectors: Vectors,
    limit: int | None = None,
    cursor: str | None = None,
    only: str | None = None,
) -> list[TierPage]:
    """A page of ``limit`` groups (None: all) of each tier, or of the cursor's tier from
    where the cursor left off (``only``: of that tier alone). Only the page's groups are
    named and scored: its cost does not grow with the groups it does not show.
    ``vectors``: of the rows the tiers were cut from, read for scores the cut did not know."""
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
        end = tier.n_groups if limit is None else min(start + limit, tier.n_groups)
        start_at = min(start, end)
        members, ids = _named(tier, start_at, end)
        parents = _parents(looser, tier, start_at, end)
        lowest = _lowest(tier, start_at, end, vectors)
        groups = [
            GroupInfo(group, score, names, parent)
            for group, names, parent, score in zip(ids, members, parents, lowest, strict=True)
        ]
        following = _encode(tier.name, end) if end < tier.n_groups else None
        result.append(
            TierPage(tier.name, tier.threshold, groups, tier.n_groups, tier.n_images, following)
        )
    return result


def _lowest(tier: Tier, start: int, end: int, vectors: Vectors) -> list[float]:
    """The window's scores: as the cut knew them, the others from the vectors."""
    if tier.lowest is None:
        known = np.full(end - start, np.nan, dtype=np.float32)
    else:
        known = tier.lowest[start:end].copy()
    missing = np.flatnonzero(np.isnan(known))
    if len(missing):
        rows = tier.rows(start, end)
        wanted = [rows[i] for i in missing.tolist()]
        known[missing] = vectors(wanted) if callable(vectors) else scores(vectors, wanted)
    return [round(float(x), 6) for x in known.tolist()]


def scores_of_rows(
    read: Callable[[Rows], npt.NDArray[np.float32]], groups: list[Rows]
) -> list[float]:
    """:func:`scores` of groups of rows, reading each row's vector once (``read``: the
    vectors of sorted, distinct rows)."""
    if not groups:
        return []
    unique, local = np.unique(np.concatenate(groups), return_inverse=True)
    bounds = np.cumsum([len(at) for at in groups])[:-1]
    return scores(np.asarray(read(unique), np.float32), np.split(local, bounds))


def _parents(looser: Tier | None, tier: Tier, start: int, end: int) -> list[str | None]:
    """The id of the looser tier's group holding each group of the window (None: none)."""
    if looser is None:
        return [None] * (end - start)
    heads = tier.members[tier.starts[start:end]]
    holder = looser.group_of_rows()[heads]
    found = {int(g): _named(looser, int(g), int(g) + 1)[1][0] for g in np.unique(holder)}
    return [found[int(g)] if g >= 0 else None for g in holder]


def _named(tier: Tier, start: int, end: int) -> tuple[list[list[str]], list[str]]:
    """The members' ids and the group ids of groups ``start`` to ``end`` (kept with the
    tier: the same page of a kept cut is not decoded or hashed again)."""
    key = ("named", start, end)
    if key not in tier.memo:
        names = tier.names(start, end)
        tier.memo[key] = names, [group_id(members) for members in names]
    named: tuple[list[list[str]], list[str]] = tier.memo[key]
    return named


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
