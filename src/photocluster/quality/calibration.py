"""Tier thresholds suggested from threshold sweeps (``make calibrate``)."""

from __future__ import annotations

from collections.abc import Sequence

from photocluster.config import Calibration, EncoderRuntime, TierThresholds
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


def calibrate_model(
    model: str,
    runtime: EncoderRuntime = "torch",
    seeds: Sequence[int] = (0, 1, 2),
    progress: bool = False,
) -> Calibration:
    """The tiers of ``model`` (a name or a baked folder), calibrated on the generated sets of
    ``seeds``: what ``bake-model`` writes beside the weights."""
    import tempfile
    from pathlib import Path

    from photocluster.quality import evalset
    from photocluster.quality.evaluation import evaluate

    sweeps = []
    with tempfile.TemporaryDirectory(prefix="photocluster-calibrate-") as tmp:
        for seed in seeds:
            folder = evalset.write(evalset.build(seed), Path(tmp) / f"set-{seed}", seed)
            report, _ = evaluate(
                folder,
                model,
                Path(tmp) / f"work-{seed}",
                linkages=["complete"],
                progress=progress,
                runtime=runtime,
            )
            sweeps.append(report.sweep["complete"])
    pooled = pool(sweeps)
    suggested = calibrate(pooled)
    at = {s.threshold: s for s in pooled}
    evidence = "; ".join(
        f"{name} {t:.2f} P={at[t].precision:.3f} R={at[t].recall:.3f}"
        for name, t in suggested.items()
    )
    return Calibration(
        thresholds=TierThresholds(**suggested),
        index_floor=round(max(0.05, suggested["low"] - 0.05), 2),
        evidence=f"generated sets, seeds {', '.join(map(str, seeds))} pooled: {evidence}",
    )
