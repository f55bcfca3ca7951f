"""A user's pairs in one score range, as GET pairs pages them: the pairs the user marked
not similar left out, ranked only as far as the pages asked."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from photocluster.clustering.similarity import RankedPairs, ranked
from photocluster.ids import IdArray, positions
from photocluster.library.decisions import Decisions


@dataclass
class PairsInRange:
    """A user's pairs in one score range (rows of ``ids``), ranked as far as pages asked."""

    ids: IdArray
    pairs: RankedPairs
    complete: bool
    _ranked: RankedPairs | None = None

    @property
    def total(self) -> int:
        return len(self.pairs[2])

    def first(self, count: int) -> RankedPairs:
        """The first ``count`` pairs, highest first (ranked again, twice as far, only when
        a page passes what was ranked)."""
        if self._ranked is None or (len(self._ranked[2]) < min(count, self.total)):
            known = len(self._ranked[2]) if self._ranked is not None else 0
            self._ranked = ranked(self.pairs, max(count, 2 * known))
        return self._ranked


def marked_rows(
    ids: IdArray, current: Decisions
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]] | None:
    """Rows of ``ids`` of the pairs marked not similar (both photos stored)."""
    if not current.not_similar:
        return None
    a, b = zip(*current.not_similar, strict=True)
    u, v = positions(ids, a), positions(ids, b)
    both = (u >= 0) & (v >= 0)
    return u[both], v[both]


def without_marked(ids: IdArray, ranked: RankedPairs, current: Decisions) -> RankedPairs:
    """The ranked pairs without those marked not similar."""
    marked = marked_rows(ids, current)
    if marked is None:
        return ranked
    n = len(ids)
    u, v, s = ranked
    keys = np.minimum(u, v) * n + np.maximum(u, v)
    gone = np.minimum(*marked) * n + np.maximum(*marked)
    keep = ~np.isin(keys, gone)
    return u[keep], v[keep], s[keep]
