"""Tier thresholds from threshold sweeps, each tier against its own labels (README, Quality).

A tier's threshold is the loosest one from which the tier's precision stays at or above its
floor for every stricter threshold: it keeps the most recall the precision target allows,
and a single lucky threshold in a noisy sweep cannot pull it down. The floors sit a margin
above the product's targets (high 0.97, medium 0.95, low 0.85), because a few false pairs
move precision in steps on sets of this size.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from photocluster.calibrations import Calibration
from photocluster.config import DEFAULT_LINKAGE, TIER_NAMES, Linkage, TierThresholds
from photocluster.quality.metrics import TierScore

if TYPE_CHECKING:
    from photocluster.quality.evaluation import LoadEncoder

#: Precision each tier must keep on the calibration sets: the targets plus a margin.
PRECISION_FLOORS = {"low": 0.87, "medium": 0.96, "high": 0.98}
#: Fewest predicted pairs whose precision counts against a threshold.
MIN_PAIRS = 25
#: How far below the low tier the write-time graph keeps pairs.
FLOOR_MARGIN = 0.05

Sweeps = Mapping[str, Sequence[TierScore]]  # per tier: scores by increasing threshold


def loosest_precise(sweep: Sequence[TierScore], floor: float) -> TierScore:
    """The loosest threshold whose precision, and every stricter one's, is >= ``floor``
    (the strictest threshold if none is). Precision over fewer than ``MIN_PAIRS``
    predicted pairs is noise (one pair moves it by 4%) and is not held against a threshold."""
    ordered = sorted(sweep, key=lambda s: s.threshold)
    chosen = ordered[-1]
    for score in reversed(ordered):
        if score.precision < floor and score.predicted_pairs >= MIN_PAIRS:
            break
        if score.precision >= floor:
            chosen = score
    return chosen


def calibrate(sweeps: Sweeps) -> dict[str, float]:
    """Suggested thresholds, one per tier, each from its own sweep; then nudged apart so
    that low < medium < high."""
    chosen = {t: loosest_precise(sweeps[t], PRECISION_FLOORS[t]).threshold for t in TIER_NAMES}
    chosen["medium"] = min(chosen["medium"], round(chosen["high"] - 0.01, 2))
    chosen["low"] = min(chosen["low"], round(chosen["medium"] - 0.01, 2))
    return {name: round(value, 2) for name, value in chosen.items()}


def pool(sweeps: Sequence[Sequence[TierScore]]) -> list[TierScore]:
    """Sweeps of several sets combined by adding their pair counts threshold by threshold."""
    pooled = []
    for rows in zip(*sweeps, strict=True):
        predicted = sum(r.predicted_pairs for r in rows)
        correct = sum(r.correct_pairs for r in rows)
        true = sum(r.true_pairs for r in rows)
        precision = correct / predicted if predicted else 1.0
        recall = correct / true if true else 1.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        pooled.append(
            TierScore(
                rows[0].name,
                rows[0].threshold,
                round(precision, 4),
                round(recall, 4),
                round(f1, 4),
                sum(r.groups for r in rows),
                max(r.largest for r in rows),
                predicted,
                correct,
                true,
            )
        )
    return pooled


def pool_tiers(sets: Sequence[Sweeps]) -> dict[str, list[TierScore]]:
    """Per tier, the sweeps of several sets pooled."""
    return {tier: pool([s[tier] for s in sets]) for tier in TIER_NAMES}


def describe(pooled: Sweeps, thresholds: Mapping[str, float]) -> str:
    """The evidence line: each tier's threshold with its pooled precision and recall."""
    parts = []
    for tier in TIER_NAMES:
        at = next(s for s in pooled[tier] if s.threshold == thresholds[tier])
        parts.append(f"{tier} {at.threshold:.2f} P={at.precision:.3f} R={at.recall:.3f}")
    return "; ".join(parts)


def calibrate_model(
    load: LoadEncoder,
    seeds: Sequence[int] = (0, 1, 2),
    progress: bool = False,
    linkage: Linkage = DEFAULT_LINKAGE,
    subjects: int | None = None,
) -> Calibration:
    """The tiers of the encoder ``load`` gives, calibrated on the graded sets of
    ``seeds`` from the calibration sources only: what ``bake-model`` writes beside the
    weights. ``subjects`` caps the sources per set (quick runs)."""
    import tempfile
    from pathlib import Path

    from photocluster.quality import evalset, scenes
    from photocluster.quality.evaluation import evaluate

    sets = []
    with tempfile.TemporaryDirectory(prefix="photocluster-calibrate-") as tmp:
        for seed in seeds:
            samples = scenes.build_graded(seed, "calibration", subjects=subjects)
            folder = evalset.write(samples, Path(tmp) / f"set-{seed}", seed, "calibration")
            report, _ = evaluate(
                folder,
                load,
                Path(tmp) / f"work-{seed}",
                linkages=[linkage],
                progress=progress,
                copy_check=False,  # the tiers are the vectors'; copies are raised above them
            )
            sets.append(report.sweep[linkage])
    pooled = pool_tiers(sets)
    suggested = calibrate(pooled)
    return Calibration(
        thresholds=TierThresholds(**suggested),
        index_floor=round(max(0.05, suggested["low"] - FLOOR_MARGIN), 2),
        evidence=(
            f"graded sets of the calibration sources, seeds {', '.join(map(str, seeds))}, "
            f"{linkage} linkage, pooled: {describe(pooled, suggested)}"
        ),
    )
