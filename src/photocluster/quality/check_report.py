"""The geometric check (:mod:`~photocluster.clustering.copies`) measured on a labelled
set: ``photocluster eval-verify DIR`` / ``make eval-verify``.

The set is embedded and stored through the writer path, as ``photocluster eval`` does, and
each tier is cut there (average linkage): the vectors alone. Then the check runs on the
candidate pairs (similarity at or above a floor); the pairs it accepts have their
similarity raised (copies, and the copy groups of scene pairs, as the graph raises them),
and average linkage on that full matrix is cut at the same tiers. The
full-matrix linkage equals the graph's on the same similarities (a unit test holds them
together), so the difference between the two columns is the check's alone.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from photocluster.clustering.copies import (
    CANDIDATE_FLOOR,
    raised,
    scene_similarity,
    verified_pairs,
)
from photocluster.clustering.orb import Features, FloatArray, features
from photocluster.images import ImageLimits, embedding_picture
from photocluster.quality.evalset import LabelledImage
from photocluster.quality.evaluation import EVAL_USER, LoadEncoder, embed_folder
from photocluster.quality.metrics import TierScore, pairwise_scores, score_tier


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
    accepted: int  # of them, those the check accepted as copies
    scenes: int  # and those it accepted as one scene
    accepted_precision: float  # of those, near-duplicates by the labels
    accepted_recall: float  # of the near-duplicate pairs, those accepted
    ms_per_photo: float
    ms_per_candidate: float
    tiers: list[CheckedTier]


def check_folder(
    folder: Path,
    load: LoadEncoder,
    work: Path,
    thresholds: Mapping[str, float],
    progress: bool = False,
    side: int = 512,
) -> CheckReport:
    """Embed ``folder`` through the writer path, check its candidate pairs (features as
    ingest computes them: ``side``) and score each tier (average linkage) with and without."""
    embedded = embed_folder(folder, load, work, progress, copy_check=False)
    tiers = embedded.library.tiers(embedded.model).asked(thresholds)
    started = time.perf_counter()
    found = _features(embedded.images, side)
    featured = time.perf_counter()
    similarity = (embedded.vectors @ embedded.vectors.T).astype(np.float32)
    accepted, candidates = verified_pairs(found, similarity)
    checked = time.perf_counter()
    ids = [i.image_id for i in embedded.images]  # accepted copies: groups of two, scored
    precision, recall, *_ = pairwise_scores(
        [[ids[i], ids[j]] for i, j in accepted.copies], embedded.truth["high"]
    )
    stored = embedded.library.cut(EVAL_USER, tiers, "average").tiers
    by_name = {t.name: t.threshold for t in stored}
    scene_to = scene_similarity(by_name["medium"], by_name["high"])
    lifted = raised(similarity, accepted.copies, accepted.scenes, scene_to=scene_to)
    scored = [
        CheckedTier(
            score_tier(t.name, t.threshold, t.groups, embedded.truth[t.name]),
            score_tier(
                t.name,
                t.threshold,
                average_groups(ids, lifted, t.threshold),
                embedded.truth[t.name],
            ),
        )
        for t in stored
    ]
    return CheckReport(
        str(folder),
        embedded.model,
        candidates,
        len(accepted.copies),
        len(accepted.scenes),
        round(precision, 4),
        round(recall, 4),
        round(1000 * (featured - started) / max(1, len(ids)), 2),
        round(1000 * (checked - featured) / max(1, candidates), 2),
        scored,
    )


def _features(images: Sequence[LabelledImage], side: int) -> list[Features]:
    """Each photo's features, of the picture ingest computes them on."""
    limits = ImageLimits()
    return [features(embedding_picture(i.path.read_bytes(), limits, side)) for i in images]


def average_groups(ids: Sequence[str], similarity: FloatArray, threshold: float) -> list[list[str]]:
    """Average linkage (UPGMA) on the full matrix, cut at ``threshold``: the groups of two
    or more, as the library's cut gives them."""
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform

    if len(ids) < 2:
        return []
    distance = 1.0 - np.clip(similarity.astype(np.float64), -1.0, 1.0)
    np.fill_diagonal(distance, 0.0)
    tree = linkage(squareform(distance, checks=False), "average")
    labels = fcluster(tree, 1.0 - threshold + 1e-9, "distance")
    groups: dict[int, list[str]] = {}
    for image_id, label in zip(ids, labels, strict=True):
        groups.setdefault(int(label), []).append(image_id)
    return [group for group in groups.values() if len(group) >= 2]


def format_check(report: CheckReport) -> str:
    lines = [
        f"# The geometric check on {report.folder} ({report.model}, average linkage)",
        "",
        f"{report.candidates} candidate pairs (similarity >= {CANDIDATE_FLOOR}); the check "
        f"accepted {report.accepted} as copies: precision {report.accepted_precision:.3f}, "
        f"{report.accepted_recall:.3f} of the near-duplicate pairs; and {report.scenes} as "
        "one scene. "
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
