"""A geometric check of candidate pairs, measured beside the vectors (README, Quality: "A
geometric check"); not yet part of the writer.

A copy lies inside its original (a crop, a padded or screenshotted photo, a straightened
one) or covers it (a burst frame); another shot of the scene sticks out of it, the camera
having moved. So a pair of photos is a near-duplicate when local features (ORB) agree on a
homography with enough inliers and one picture, mapped through it, lies almost whole
inside the other. ORB is not mirror-invariant: each photo is also matched against its
pair's mirrored picture, for flips.

``photocluster eval-verify DIR`` measures it: the pairs of candidates (similarity at or
above a floor) the check accepts have their similarity raised before average linkage, and
each tier is scored with and without it.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageOps

from photocluster.ingest.images import ENCODER_MIN_SIDE, ImageLimits, decode_image
from photocluster.quality.metrics import TierScore, score_tier

FloatArray = npt.NDArray[np.float32]

KEYPOINTS = 500
RATIO = 0.8  # Lowe's ratio test
RANSAC_PX = 5.0
MIN_INLIERS = 20
CONTAINED = 0.95  # of one picture's 16 x 16 points, mapped, inside the other
AREA_RATIO = (0.05, 20.0)  # the mapped frame's area over the picture's: a sane homography
CANDIDATE_FLOOR = 0.30
RAISED_TO = 0.9


@dataclass(frozen=True)
class Keypoints:
    points: FloatArray  # (n, 2), x and y in pixels
    descriptors: npt.NDArray[np.uint8] | None  # (n, 32), ORB's binary descriptors
    shape: tuple[int, int]  # height, width


@dataclass(frozen=True)
class Features:
    """A photo's keypoints, and its mirrored picture's."""

    plain: Keypoints
    mirrored: Keypoints


def features(picture: Image.Image) -> Features:
    return Features(_keypoints(picture), _keypoints(ImageOps.mirror(picture)))


def _keypoints(picture: Image.Image) -> Keypoints:
    import cv2

    gray = np.asarray(picture.convert("L"))
    orb = cv2.ORB_create(nfeatures=KEYPOINTS)  # type: ignore[attr-defined]
    found, descriptors = orb.detectAndCompute(gray, None)
    points = np.array([k.pt for k in found], dtype=np.float32).reshape(-1, 2)
    return Keypoints(points, descriptors, (gray.shape[0], gray.shape[1]))


@dataclass(frozen=True)
class Match:
    inliers: int
    contained: float  # the larger share of either picture that lies inside the other


def match(a: Keypoints, b: Keypoints) -> Match | None:
    """The homography a -> b and how much of one picture lies in the other; None when
    there are too few matches or the homography is degenerate."""
    import cv2

    if a.descriptors is None or b.descriptors is None:
        return None
    pairs = cv2.BFMatcher(cv2.NORM_HAMMING).knnMatch(a.descriptors, b.descriptors, k=2)
    good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < RATIO * p[1].distance]
    if len(good) < MIN_INLIERS:
        return None
    source = a.points[[m.queryIdx for m in good]]
    target = b.points[[m.trainIdx for m in good]]
    found, mask = cv2.findHomography(source, target, cv2.RANSAC, RANSAC_PX)
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
    return Match(int(mask.sum()), max(a_in_b, b_in_a))


def is_copy(a: Features, b: Features) -> bool:
    for other in (b.plain, b.mirrored):
        found = match(a.plain, other)
        if found is not None and found.inliers >= MIN_INLIERS and found.contained >= CONTAINED:
            return True
    return False


def verified_pairs(
    found: Sequence[Features], similarity: FloatArray, floor: float = CANDIDATE_FLOOR
) -> tuple[set[tuple[int, int]], int]:
    """The candidate pairs (i < j, similarity >= floor) the check accepts, and how many
    candidates there were."""
    rows, cols = np.nonzero(np.triu(similarity >= floor, k=1))
    pairs = [(int(i), int(j)) for i, j in zip(rows, cols, strict=True)]
    accepted = {(i, j) for i, j in pairs if is_copy(found[i], found[j])}
    return accepted, len(rows)


def raised(
    similarity: FloatArray, pairs: set[tuple[int, int]], to: float = RAISED_TO
) -> FloatArray:
    out = similarity.copy()
    for i, j in pairs:
        out[i, j] = out[j, i] = max(out[i, j], to)
    return out


def _corners(shape: tuple[int, int]) -> FloatArray:
    h, w = shape
    return np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float32)


def _grid(shape: tuple[int, int], n: int = 16) -> FloatArray:
    h, w = shape
    ys, xs = np.mgrid[0:n, 0:n]
    return np.stack([(xs.ravel() + 0.5) * w / n, (ys.ravel() + 0.5) * h / n], 1).astype(np.float32)


def _mapped(points: FloatArray, homography: npt.NDArray[np.float64]) -> FloatArray:
    import cv2

    out: FloatArray = cv2.perspectiveTransform(points[None], homography)[0].astype(np.float32)
    return out


def _inside(points: FloatArray, shape: tuple[int, int]) -> float:
    h, w = shape
    x, y = points[:, 0], points[:, 1]
    return float(np.mean((x >= 0) & (x < w) & (y >= 0) & (y < h)))


@dataclass(frozen=True)
class CheckedTier:
    """One tier scored on the vectors alone and with the check's pairs raised."""

    vectors: TierScore
    checked: TierScore


@dataclass
class CheckReport:
    folder: str
    model: str
    candidates: int  # pairs at or above the floor
    accepted: int  # of them, those the check accepted
    accepted_precision: float  # of those, near-duplicates by the labels
    accepted_recall: float  # of the near-duplicate pairs, those accepted
    ms_per_photo: float
    ms_per_candidate: float
    tiers: list[CheckedTier]


def check_folder(
    folder: Path, model: str, work: Path, thresholds: Mapping[str, float], progress: bool = False
) -> CheckReport:
    """Embed ``folder`` through the writer path, run the check on its candidate pairs and
    score each tier (average linkage) without and with it."""
    import time

    from photocluster.quality.evaluation import embed_folder

    embedded = embed_folder(folder, model, work, progress)
    tiers = embedded.library.thresholds(embedded.model, thresholds)
    started = time.perf_counter()
    limits = ImageLimits()
    found = [
        features(decode_image(i.path.read_bytes(), limits, ENCODER_MIN_SIDE))
        for i in embedded.images
    ]
    featured = time.perf_counter()
    similarity = (embedded.vectors @ embedded.vectors.T).astype(np.float32)
    accepted, candidates = verified_pairs(found, similarity)
    checked = time.perf_counter()
    ids = [i.image_id for i in embedded.images]
    near = embedded.truth["high"]
    true = {
        (i, j) for i, j in accepted if near[ids[i]] is not None and near[ids[i]] == near[ids[j]]
    }
    all_true = sum(
        1 for a, b in itertools.combinations(ids, 2) if near[a] is not None and near[a] == near[b]
    )
    scored = [
        CheckedTier(
            score_tier(name, t, _groups(ids, similarity, t), embedded.truth[name]),
            score_tier(
                name, t, _groups(ids, raised(similarity, accepted), t), embedded.truth[name]
            ),
        )
        for name, t in tiers.items()
    ]
    return CheckReport(
        str(folder),
        embedded.model,
        candidates,
        len(accepted),
        round(len(true) / len(accepted), 4) if accepted else 1.0,
        round(len(true) / all_true, 4) if all_true else 1.0,
        round(1000 * (featured - started) / max(1, len(ids)), 2),
        round(1000 * (checked - featured) / max(1, candidates), 2),
        scored,
    )


def _groups(ids: Sequence[str], similarity: FloatArray, threshold: float) -> list[list[str]]:
    """Average linkage (UPGMA) on the full matrix, cut at ``threshold``."""
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform

    if len(ids) < 2:
        return [list(ids)]
    distance = 1.0 - np.clip(similarity.astype(np.float64), -1.0, 1.0)
    np.fill_diagonal(distance, 0.0)
    tree = linkage(squareform(distance, checks=False), "average")
    labels = fcluster(tree, 1.0 - threshold + 1e-9, "distance")
    groups: dict[int, list[str]] = {}
    for image_id, label in zip(ids, labels, strict=True):
        groups.setdefault(int(label), []).append(image_id)
    return list(groups.values())


def format_check(report: CheckReport) -> str:
    lines = [
        f"# The geometric check on {report.folder} ({report.model}, average linkage)",
        "",
        f"{report.candidates} candidate pairs (similarity >= {CANDIDATE_FLOOR}); the check "
        f"accepted {report.accepted}: precision {report.accepted_precision:.3f}, "
        f"{report.accepted_recall:.3f} of the near-duplicate pairs. "
        f"{report.ms_per_photo:.1f} ms per photo, {report.ms_per_candidate:.2f} ms per pair.",
        "",
        "| tier | threshold | vectors P / R / F1 | + check P / R / F1 |",
        "|---|---|---|---|",
    ]
    for row in report.tiers:
        v, c = row.vectors, row.checked
        lines.append(
            f"| {v.name} | {v.threshold:.2f} | {v.precision:.3f} / {v.recall:.3f} / {v.f1:.3f} "
            f"| {c.precision:.3f} / {c.recall:.3f} / {c.f1:.3f} |"
        )
    return "\n".join(lines)
