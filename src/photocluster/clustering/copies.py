"""Is one photo a copy of the other, or another shot of its scene: the geometric check of
candidate pairs (README, Quality: "The geometric check").

A copy lies inside its original (a crop, a padded or screenshotted photo, a straightened
one) or covers it (a burst frame); another shot of the scene sticks out of it, the camera
having moved. So a pair of photos is a near-duplicate when local features (ORB) agree on a
homography with enough inliers and one picture, mapped through it, lies almost whole
inside the other; it is the same scene when at least half of one lies inside the other.
ORB is not mirror-invariant: each photo is also matched against its pair's mirrored
picture, for flips.

Ingest computes a photo's :class:`Features` once, from the picture it decoded, for the
picture and its mirror image (:mod:`~photocluster.clustering.orb` computes and packs them,
about 40 kB). The writer checks each new photo against its most similar earlier ones
(:mod:`photocluster.library.copies`) and keeps only the picture's own points (about 20 kB):
the new photo's mirror image stands in for the earlier photo's (mirroring one side of a
pair asks what mirroring the other would, the pictures' geometry mirrored with it).
``photocluster eval-verify DIR`` measures the check alone
(:mod:`~photocluster.quality.check_report`). OpenCV and faiss are imported only where a
check runs.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from photocluster.clustering.orb import Features, FloatArray, Keypoints, opencv

RATIO = 0.8  # Lowe's ratio test
RANSAC_PX = 5.0
#: RANSAC's most iterations (OpenCV's default is 2,000). It stops as soon as it is 99.5%
#: sure of the inliers, which a copy's or a scene's share of inliers makes quick; only pairs
#: that do not match ran the full 2,000, at 6.5 ms each.
RANSAC_ITERATIONS = 500
MIN_INLIERS = 20
#: Fewer ratio-tested matches one way, and the other is not searched: the two orders'
#: counts go together, and no benchmark pair below 10 one way was related the other (README).
FEW_MATCHES = MIN_INLIERS // 2
#: Inliers count only where they lie inside this margin of one picture or the other: what
#: apps add at a picture's edges (a phone's status and navigation bars, captions,
#: watermarks) is the same on unrelated photos, and matched alone it maps one onto the other.
EDGE = 0.125
CONTAINED = 0.95  # of one picture's 16 x 16 points, mapped, inside the other
#: At least this much of one picture inside the other, and not a copy: another shot of the
#: same scene (the same view, for the most part). Another time at one place shows less of it.
SCENE_SHARE = 0.5
AREA_RATIO = (0.05, 20.0)  # the mapped frame's area over the picture's: a sane homography
CANDIDATE_FLOOR = 0.30
#: What a pair the check accepts counts at least in the graph (above every built-in high tier).
COPY_SIMILARITY = 0.9
#: What a scene pair's groups count at least where no tiers are given (tools, tests): the
#: built-in tiers' :func:`scene_similarity` (a unit test holds them together). The writer's
#: graph takes it from the deployment's tiers.
SCENE_SIMILARITY = 0.51

COPY = "copy"
SCENE = "scene"


@functools.cache
def _faiss() -> Any:
    """faiss (the nearest descriptors), imported where a check runs, as OpenCV is."""
    import faiss

    return faiss


def preload() -> None:
    """Import OpenCV and faiss now: a writer's init, not its first check (about 0.5 s)."""
    opencv()
    _faiss()


@dataclass(frozen=True)
class Match:
    inliers: int  # RANSAC's inliers away from both pictures' edges (EDGE)
    contained: float  # the larger share of either picture that lies inside the other


def match(a: Keypoints, b: Keypoints) -> Match | None:
    """The homography a -> b and how much of one picture lies in the other; None when
    there are too few matches or the homography is degenerate."""
    if a.descriptors is None or b.descriptors is None:
        return None
    return _homography(a, b, *ratio_matches(a.descriptors, b.descriptors))


def ratio_matches(
    queries: npt.NDArray[np.uint8], trains: npt.NDArray[np.uint8]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Lowe's ratio test on each query descriptor's two nearest train descriptors (ORB's,
    by Hamming distance): the queries whose nearest is clearly nearer than the second
    (``RATIO``), and that nearest train; in query order, as OpenCV's knnMatch gives them
    (so RANSAC samples the same points). faiss's popcount kernels find the two nearest:
    the distances were 60% of the check's time in numpy (issue 29)."""
    if len(trains) < 2 or len(queries) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    faiss = _faiss()
    faiss.omp_set_num_threads(1)  # per thread: callers already check photos side by side
    index = faiss.IndexBinaryFlat(8 * trains.shape[1])
    index.add(np.ascontiguousarray(trains))
    distances, nearest = index.search(np.ascontiguousarray(queries), 2)
    good = np.flatnonzero(distances[:, 0] < RATIO * distances[:, 1])
    return good, nearest[good, 0].astype(np.int64)


def _homography(
    a: Keypoints, b: Keypoints, queries: npt.NDArray[np.int64], trains: npt.NDArray[np.int64]
) -> Match | None:
    """The match a -> b of the matched points ``a[queries]`` -> ``b[trains]``."""
    cv2 = opencv()
    if len(queries) < MIN_INLIERS:
        return None
    source, target = a.points[queries], b.points[trains]
    # USAC (LO-RANSAC), not classic RANSAC, whose 500 iterations on pairs that do not match
    # took 5 ms a call: a tenth of that, and answers that depend less on the points' order
    # (README, Quality: "USAC for the homography").
    found, mask = cv2.findHomography(
        source, target, cv2.USAC_FAST, RANSAC_PX, maxIters=RANSAC_ITERATIONS
    )
    if found is None:
        return None
    homography = np.asarray(found, dtype=np.float64)
    if mask is None or abs(np.linalg.det(homography)) < 1e-9:
        return None
    frame = _mapped(_corners(a.shape), homography)
    area = cv2.contourArea(frame) / (a.shape[0] * a.shape[1])
    if not cv2.isContourConvex(frame) or not AREA_RATIO[0] < area < AREA_RATIO[1]:
        return None
    a_in_b = _inside(_mapped(_grid(a.shape), homography), b.shape)
    inverse = np.linalg.inv(homography).astype(np.float64)
    b_in_a = _inside(_mapped(_grid(b.shape), inverse), a.shape)
    inlier = np.asarray(mask).ravel().astype(bool)
    supported = inlier & (_interior(source, a.shape) | _interior(target, b.shape))
    return Match(int(supported.sum()), max(a_in_b, b_in_a))


def relation(new: Features, old: Features | Keypoints) -> str | None:
    """:data:`COPY` when one photo is a copy of the other, :data:`SCENE` when they show the
    same scene, None otherwise. ``old``: the earlier photo (its picture's own points: the new
    photo's mirror image stands for the earlier's, for flips). Both directions are tried: the
    ratio test keeps other matches from a to b than from b to a."""
    earlier = old.plain if isinstance(old, Features) else old
    if earlier.descriptors is None:
        return None
    found: str | None = None
    for picture in (new.plain, new.mirrored):
        if found is not None:  # one scene as shot: its mirror image is not asked (0 of 5,046
            return found  # pairs of held-out seeds 3 and 4 answered otherwise; 25% less time)
        if picture.descriptors is None:
            continue
        for source, target in ((picture, earlier), (earlier, picture)):
            assert source.descriptors is not None and target.descriptors is not None
            matches = ratio_matches(source.descriptors, target.descriptors)
            if len(matches[0]) < FEW_MATCHES:  # the other order shares as little
                break
            matched = _homography(source, target, *matches)
            if matched is None or matched.inliers < MIN_INLIERS:
                continue
            if matched.contained >= CONTAINED:
                return COPY
            if matched.contained >= SCENE_SHARE:
                found = SCENE
    return found


def is_copy(new: Features, old: Features | Keypoints) -> bool:
    return relation(new, old) == COPY


def scene_similarity(medium: float, high: float) -> float:
    """What a scene pair's groups count at least: between the medium and the high tier, so
    another shot joins its scene's medium group and never its near-duplicates."""
    return round((medium + high) / 2, 4)


class Accepted(NamedTuple):
    """Pairs (i < j) the check accepted, by what they are."""

    copies: set[tuple[int, int]]
    scenes: set[tuple[int, int]]


def verified_pairs(
    found: Sequence[Features], similarity: FloatArray, floor: float = CANDIDATE_FLOOR
) -> tuple[Accepted, int]:
    """The candidate pairs (i < j, similarity >= floor) the check accepts, and how many
    candidates there were (``j`` checked as the newer photo, as the writer would)."""
    rows, cols = np.nonzero(np.triu(similarity >= floor, k=1))
    accepted = Accepted(set(), set())
    for i, j in zip(rows.tolist(), cols.tolist(), strict=True):
        kind = relation(found[j], found[i].plain)
        if kind is not None:
            (accepted.copies if kind == COPY else accepted.scenes).add((i, j))
    return accepted, len(rows)


def raised(
    similarity: FloatArray,
    copies: Iterable[tuple[int, int]],
    scenes: Iterable[tuple[int, int]] = (),
    copy_to: float = COPY_SIMILARITY,
    scene_to: float = SCENE_SIMILARITY,
) -> FloatArray:
    """The similarities the linkages read (a square matrix): a copy counts at least
    ``copy_to``. Photos joined by copies (a *copy group*: two edits of one photo) show one
    scene at least, so every pair inside a copy group counts at least ``scene_to``; a scene
    pair joins two copy groups, so every pair across the two counts that too. Another shot
    matches some of its scene's near-duplicates and not others (a crop of another corner);
    raising one pair of many would barely move their groups' average. A wrong copy joins
    two groups at ``scene_to`` only (below the high tier), not at ``copy_to``."""
    out = similarity.copy()
    copy_pairs = sorted(copies)
    scene_pairs = sorted(scenes)
    if not copy_pairs and not scene_pairs:
        return out
    group = _copy_groups(len(out), copy_pairs)
    blocks = {(int(g), int(g)) for g in group[[i for i, _ in copy_pairs]]}
    for i, j in scene_pairs:
        a, b = int(group[i]), int(group[j])
        blocks.add((min(a, b), max(a, b)))
    for a, b in sorted(blocks):
        rows, cols = np.flatnonzero(group == a), np.flatnonzero(group == b)
        block = np.maximum(out[np.ix_(rows, cols)], np.float32(scene_to))
        out[np.ix_(rows, cols)] = block
        out[np.ix_(cols, rows)] = block.T
    for i, j in copy_pairs:
        out[i, j] = out[j, i] = max(out[i, j], copy_to)
    return out


def _copy_groups(n: int, pairs: Sequence[tuple[int, int]]) -> npt.NDArray[np.int32]:
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    u = np.array([i for i, _ in pairs], dtype=np.int64)
    v = np.array([j for _, j in pairs], dtype=np.int64)
    graph = coo_matrix((np.ones(len(u), dtype=np.int8), (u, v)), shape=(n, n)).tocsr()
    _, labels = connected_components(graph, directed=False)
    return np.asarray(labels, dtype=np.int32)


@functools.lru_cache(maxsize=256)
def _corners(shape: tuple[int, int]) -> FloatArray:
    h, w = shape
    return _read_only(np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float32))


@functools.lru_cache(maxsize=256)  # per picture size: np.mgrid was half a check's Python time
def _grid(shape: tuple[int, int], n: int = 16) -> FloatArray:
    h, w = shape
    ys, xs = np.mgrid[0:n, 0:n]
    grid = np.stack([(xs.ravel() + 0.5) * w / n, (ys.ravel() + 0.5) * h / n], 1)
    return _read_only(grid.astype(np.float32))


def _read_only(array: FloatArray) -> FloatArray:
    array.setflags(write=False)  # cached: shared by every call
    return array


def _mapped(points: FloatArray, homography: npt.NDArray[np.float64]) -> FloatArray:
    out: FloatArray = opencv().perspectiveTransform(points[None], homography)[0].astype(np.float32)
    return out


def _interior(points: FloatArray, shape: tuple[int, int]) -> npt.NDArray[np.bool_]:
    h, w = shape
    x, y = points[:, 0], points[:, 1]
    inside_x = (x >= EDGE * w) & (x <= (1 - EDGE) * w)
    return np.asarray(inside_x & (y >= EDGE * h) & (y <= (1 - EDGE) * h))


def _inside(points: FloatArray, shape: tuple[int, int]) -> float:
    h, w = shape
    x, y = points[:, 0], points[:, 1]
    return float(np.mean((x >= 0) & (x < w) & (y >= 0) & (y < h)))
