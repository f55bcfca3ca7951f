"""Tier thresholds suggested from threshold sweeps (``make calibrate``)."""

from __future__ import annotations

from collections.abc import Sequence

from photocluster.quality.metrics import TierScore


def calibrate(sweep: Sequence[TierScore]) -> dict[str, float]:
    """Suggested tiers from a complete-linkage sweep (README, Quality):

    * high (near-duplicates): the strictest threshold with precision >= 0.95 and recall
      >= 0.85: the product's goal (precision >= 0.95 at recall >= 0.80) with a 0.05 recall
      margin, because ~80 true pairs per set move recall in steps of ~1.3%;
    * medium (same scene): the middle of the best-F1 plateau;
    * low (loosely similar): the loosest threshold whose precision is still >= 0.85;
    then nudged so that low < medium < high.
    """
    ordered = sorted(sweep, key=lambda s: s.threshold)
    meeting = [s.threshold for s in ordered if s.precision >= 0.95 and s.recall >= 0.85]
    best_f1 = max(s.f1 for s in ordered)
    plateau = [s.threshold for s in ordered if s.f1 >= best_f1 - 0.002]
    high = max(meeting) if meeting else plateau[-1]
    medium = plateau[len(plateau) // 2]
    loose = [s.threshold for s in ordered if s.precision >= 0.85]
    low = min(loose) if loose else ordered[0].threshold
    medium = min(medium, round(high - 0.01, 2))
    low = min(low, round(medium - 0.01, 2))
    return {"low": round(low, 2), "medium": round(medium, 2), "high": round(high, 2)}


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
