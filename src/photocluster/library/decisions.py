"""The user's decisions about pairs of photos: "these are not similar".

One small JSON document per user beside the store's (``{user_id}.pcd``,
:mod:`photocluster.store.documents`), rewritten whole and atomically under the user's
exclusive lock. Decisions
are about image ids: they outlive compaction, reindexing and a re-upload of the same
photo, and go when a photo is deleted.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from photocluster.errors import InvalidDecision, StoreCorrupt, TooManyDecisions
from photocluster.ids import validate_image_id
from photocluster.library import cursors
from photocluster.store import Store
from photocluster.store.documents import read_document, write_document
from photocluster.store.files import version_of

FORMAT = 1
#: Most not-similar pairs one user keeps (a decision about 100 photos is 4,950 pairs).
MAX_PAIRS = 100_000
#: Fewest and most photos one decision names.
MIN_IDS, MAX_IDS = 2, 100
#: Bytes a pair weighs in the memory budget (two ids, a time, the dict entry).
PAIR_BYTES = 400

Pair = tuple[str, str]


@dataclass(frozen=True)
class Decisions:
    """One version of a user's decisions: ``not_similar`` maps each pair (ids in sorted
    order) to when it was marked (epoch seconds)."""

    version: tuple[int, int, int]
    not_similar: dict[Pair, float]

    def involving(self, image_ids: Iterable[str]) -> list[Pair]:
        wanted = set(image_ids)
        return [pair for pair in self.not_similar if pair[0] in wanted or pair[1] in wanted]


NO_DECISIONS = Decisions((0, 0, 0), {})


def pairs_among(image_ids: Sequence[str]) -> list[Pair]:
    """Every pair among the photos one decision names (2-100 distinct, valid ids)."""
    distinct = sorted(set(image_ids))
    for image_id in distinct:
        validate_image_id(image_id)
    if not MIN_IDS <= len(distinct) <= MAX_IDS:
        raise InvalidDecision(
            f"a decision names {MIN_IDS} to {MAX_IDS} distinct photos; got {len(distinct)}"
        )
    return list(itertools.combinations(distinct, 2))


@dataclass
class UserDecisions:
    """Every user's decisions file; what was read is kept in the store's memory budget."""

    store: Store

    def path(self, user_id: str) -> Path:
        return self.store.paths(user_id).decisions

    def read(self, user_id: str) -> Decisions:
        path = self.path(user_id)
        version = version_of(path)
        if version is None:
            return NO_DECISIONS
        cached = self.store.memory.get(("decisions", path))
        if isinstance(cached, Decisions) and cached.version == version:
            return cached
        decisions = Decisions(version, _parse(path))
        self.store.memory.put(
            ("decisions", path), decisions, len(decisions.not_similar) * PAIR_BYTES
        )
        return decisions

    def mark(self, user_id: str, pairs: Sequence[Pair], now: float) -> tuple[int, int]:
        """Add not-similar pairs (the caller holds the user's lock); returns how many were
        new and the total after."""
        current = self.read(user_id).not_similar
        new = [pair for pair in dict.fromkeys(pairs) if pair not in current]
        if len(current) + len(new) > MAX_PAIRS:
            raise TooManyDecisions(
                f"this would make {len(current) + len(new)} not-similar pairs; a user keeps "
                f"at most {MAX_PAIRS}"
            )
        if new:
            self._write(user_id, {**current, **dict.fromkeys(new, now)})
        return len(new), len(current) + len(new)

    def unmark(self, user_id: str, pairs: Iterable[Pair]) -> tuple[int, int]:
        """Remove pairs (the caller holds the user's lock); returns how many were there
        and the total after."""
        current = self.read(user_id).not_similar
        gone = {pair for pair in pairs if pair in current}
        if gone:
            self._write(user_id, {p: t for p, t in current.items() if p not in gone})
        return len(gone), len(current) - len(gone)

    def forget(self, user_id: str, image_ids: Iterable[str]) -> int:
        """Drop every decision about these photos (they were deleted)."""
        return self.unmark(user_id, self.read(user_id).involving(image_ids))[0]

    def _write(self, user_id: str, pairs: dict[Pair, float]) -> None:
        rows = sorted([a, b, t] for (a, b), t in pairs.items())
        write_document(self.path(user_id), FORMAT, {"not_similar": rows}, fsync=self.store.fsync)


def _parse(path: Path) -> dict[Pair, float]:
    version, document = read_document(path, "decisions", (FORMAT,))
    if not version:
        return {}
    try:
        return {(str(a), str(b)): float(t) for a, b, t in document["not_similar"]}
    except (ValueError, TypeError, KeyError) as exc:
        raise StoreCorrupt(f"{path}: not a decisions file ({exc})") from exc


def page(
    decisions: Decisions, limit: int, cursor: str | None
) -> tuple[list[tuple[str, str, float]], str | None]:
    """Newest first (ties: by ids), ``limit`` at a time from ``cursor``."""
    ordered = sorted(decisions.not_similar.items(), key=lambda item: (-item[1], item[0]))
    start = _offset(cursor)
    window = ordered[start : start + limit]
    following = start + limit if start + limit < len(ordered) else None
    next_cursor = None if following is None else cursors.encode(following)
    return [(a, b, t) for (a, b), t in window], next_cursor


def _offset(cursor: str | None) -> int:
    if cursor is None:
        return 0
    offset = cursors.decode(cursor)
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise cursors.invalid()
    return offset
