"""Scores, top-k neighbours and pair ranges: pure functions over arrays.

Score = cosine similarity of L2-normalised embeddings, clipped to [0, 1].
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from photocluster.clustering.graph import NeighbourGraph
from photocluster.errors import InvalidThresholds, UnknownImage
from photocluster.ids import IMAGE_ID_MAX, IdArray

_PAIR_BLOCK = 1024

#: Pairs as rows ``(u, v)`` with scores ``s``, highest score first.
RankedPairs = tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float32]]


@dataclass(frozen=True)
class Neighbour:
    image_id: str
    score: float
    not_similar: bool = False  # the user marked this pair not similar


@dataclass(frozen=True)
class Pair:
    a: str
    b: str
    score: float


def normalise(vectors: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """Rows scaled to unit length (float32); zero rows stay zero."""
    array = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(array, axis=-1, keepdims=True)
    return np.asarray(
        np.divide(array, norms, out=np.zeros_like(array), where=norms > 0), dtype=np.float32
    )


def scores(
    matrix: npt.NDArray[np.float32], query: npt.NDArray[np.float32]
) -> npt.NDArray[np.float32]:
    """Cosine similarity of each row of ``matrix`` (unit rows) with ``query``, in [0, 1]."""
    return np.asarray(np.clip(matrix @ query, 0.0, 1.0), dtype=np.float32)


#: Most neighbours one query returns (the API's and the CLI's limit alike).
K_MAX = 500


def similar(
    ids: IdArray,
    vectors: npt.NDArray[np.float32],
    image_id: str,
    k: int = 10,
    min_score: float = 0.0,
) -> list[Neighbour]:
    """The ``k`` most similar other images of ``image_id`` with score >= ``min_score``."""
    return similar_by(ids, lambda row: scores(vectors, vectors[row]), image_id, k, min_score)


def similar_by(
    ids: IdArray,
    scores_of: Callable[[int], npt.NDArray[np.float32]],
    image_id: str,
    k: int = 10,
    min_score: float = 0.0,
) -> list[Neighbour]:
    """:func:`similar`, with ``scores_of(row)`` giving every row's score against that row
    (e.g. one pass over a mapped file instead of a loaded matrix)."""
    if not 1 <= k <= K_MAX:
        raise InvalidThresholds(f"k must be between 1 and {K_MAX}, got {k}")
    if not 0.0 <= min_score <= 1.0:
        raise InvalidThresholds(f"min_score must be between 0 and 1, got {min_score}")
    hits = np.flatnonzero(ids == image_id.encode("ascii"))
    if not len(hits):
        raise UnknownImage(f"no embedding stored for image {image_id!r}")
    row = int(hits[0])
    sims = np.array(scores_of(row), dtype=np.float32)
    sims[row] = -1.0  # never its own neighbour
    k = min(k, len(sims) - 1)
    if k <= 0:
        return []
    top = np.argpartition(-sims, k - 1)[:k]
    top = top[np.lexsort((top, -sims[top]))]
    top = top[sims[top] >= min_score]
    names = ids[top].astype(f"U{IMAGE_ID_MAX}").tolist()
    return [Neighbour(name, float(s)) for name, s in zip(names, sims[top].tolist(), strict=True)]


def pairs_from_graph(graph: NeighbourGraph, min_score: float, max_score: float) -> RankedPairs:
    """Stored pairs (lower row first) with score in [min_score, max_score] (min >= floor),
    in no order: :func:`ranked` orders them."""
    s = np.clip(graph.edge_s, 0.0, 1.0)
    mask = (s >= np.float32(min_score)) & (s <= np.float32(max_score))
    u, v, s = graph.edge_u[mask].astype(np.int64), graph.edge_v[mask].astype(np.int64), s[mask]
    return np.minimum(u, v), np.maximum(u, v), s


def ranked(pairs: RankedPairs, count: int | None = None) -> RankedPairs:
    """``pairs`` highest first (ties: by rows), the first ``count`` of them (None: all). A
    first page of a million pairs sorts only the pairs at or above its lowest score."""
    u, v, s = pairs
    if count is not None and 0 < count < len(s) // 2:
        lowest = s[np.argpartition(-s, count - 1)[:count]].min()
        take = np.flatnonzero(s >= lowest)  # every pair tied with the page's last, too
        order = take[np.lexsort((v[take], u[take], -s[take]))][:count]
    else:
        order = np.lexsort((v, u, -s))[: len(s) if count is None else count]
    return u[order], v[order], s[order]


def pairs_on_demand(
    vectors: npt.NDArray[np.float32],
    min_score: float,
    max_score: float,
    raised: RankedPairs | None = None,
) -> RankedPairs:
    """Every pair (lower row first) with score in [min_score, max_score], computed
    blockwise, in no order (:func:`ranked` orders them); ``raised``: pairs (rows u, v) that
    score at least s, as the graph's edges keep them (the geometric check's copies and scene
    pairs)."""
    n = len(vectors)
    us, vs, ss = [], [], []
    for lo in range(0, n, _PAIR_BLOCK):
        hi = min(lo + _PAIR_BLOCK, n)
        block = np.clip(vectors[lo:hi] @ vectors.T, 0.0, 1.0)
        if raised is not None:
            _raise_in_block(block, lo, hi, raised)
        rows, cols = np.nonzero((block >= min_score) & (block <= max_score))
        upper = cols > rows + lo
        rows, cols = rows[upper], cols[upper]
        us.append(rows + lo)
        vs.append(cols)
        ss.append(block[rows, cols])
    if not us:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
    u, v, s = np.concatenate(us), np.concatenate(vs), np.concatenate(ss).astype(np.float32)
    return u.astype(np.int64), v.astype(np.int64), s


def _raise_in_block(block: npt.NDArray[np.float32], lo: int, hi: int, raised: RankedPairs) -> None:
    u, v, s = raised
    for a, b in ((u, v), (v, u)):
        inside = (a >= lo) & (a < hi)
        rows, cols = a[inside] - lo, b[inside]
        block[rows, cols] = np.maximum(block[rows, cols], s[inside].astype(block.dtype))


def most_similar(
    sims: npt.NDArray[np.float32],
    row: int,
    floor: float,
    limit: int,
    skip: npt.NDArray[np.bool_] | None = None,
) -> npt.NDArray[np.int64]:
    """The other rows most similar to ``row`` (``sims``: every row's cosine with it), at
    least ``floor`` alike and not in ``skip``, at most ``limit``, most similar first."""
    eligible = sims >= floor
    eligible[row] = False
    if skip is not None:
        eligible &= ~skip
    found = np.flatnonzero(eligible)
    return found[np.argsort(-sims[found], kind="stable")[:limit]].astype(np.int64)
