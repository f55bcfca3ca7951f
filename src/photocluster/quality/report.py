"""What an evaluation shows a person: the quality table, and a page of the worst errors."""

from __future__ import annotations

import base64
import html
import io
import itertools
from collections.abc import Mapping
from pathlib import Path

from photocluster.config import TIER_NAMES
from photocluster.quality.evalset import LabelledImage
from photocluster.quality.evaluation import EVAL_USER, Embedded, EvalReport, FamilyRecall
from photocluster.quality.sweep import calibrate


def format_report(report: EvalReport) -> str:
    labels = "each tier against its own labels" if report.graded else "one group per folder"
    lines = [
        f"# Quality: {report.n_images} images ({report.n_groups} groups, "
        f"{report.n_singletons} singletons), model {report.model}, {labels}",
        "",
        "| linkage | tier | threshold | precision | recall | F1 | groups | largest |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for linkage, scores in report.tiers.items():
        for s in scores:
            lines.append(
                f"| {linkage} | {s.name} | {s.threshold:.2f} | {s.precision:.3f} | "
                f"{s.recall:.3f} | {s.f1:.3f} | {s.groups} | {s.largest} |"
            )
    for linkage, sweeps in report.sweep.items():
        suggestion = calibrate(sweeps)
        lines.append(
            f"\nThresholds this set suggests ({linkage} linkage; calibrate on other sources): "
            + ", ".join(f"{k} {v:.2f}" for k, v in suggestion.items())
        )
    if report.graded:
        lines += ["", *format_families(report)]
    return "\n".join(lines)


def format_families(report: EvalReport) -> list[str]:
    """Recall per edit family and kind of image: which edits each tier misses."""
    linkages = list(report.families)
    lines = [
        "Recall of the pairs holding an image of each edit family or kind "
        "(pairs in brackets; '-': not a true pair at that tier):",
        "",
        "| family | " + " | ".join(f"{k} {t}" for k in linkages for t in TIER_NAMES) + " |",
        "|---|" + "---|" * (len(linkages) * len(TIER_NAMES)),
    ]
    table: dict[str, dict[tuple[str, str], FamilyRecall]] = {}
    for linkage, rows in report.families.items():
        for row in rows:
            table.setdefault(row.family, {})[(linkage, row.tier)] = row
    for family, cells in sorted(table.items()):
        shown = [
            f"{cells[(k, t)].recall:.2f} ({cells[(k, t)].true_pairs})" if (k, t) in cells else "-"
            for k in linkages
            for t in TIER_NAMES
        ]
        lines.append(f"| {family} | " + " | ".join(shown) + " |")
    return lines


def _thumbnail(path: Path) -> str:
    from PIL import Image

    with Image.open(path) as opened:
        image = opened.convert("RGB")
    image.thumbnail((160, 120))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


ScoredPair = tuple[float, LabelledImage, LabelledImage]

_PAGE_STYLE = (
    "body{font:14px system-ui;margin:24px}.pair{display:inline-block;margin:8px;"
    "padding:6px;border:1px solid #ccc;border-radius:6px}.pair img{height:96px;margin:2px}"
    ".pair p{margin:4px 0 0;font-size:12px;max-width:330px}"
)


def error_page(
    embedded: Embedded,
    thresholds: Mapping[str, float],
    linkage: str,
    tier: str = "high",
    limit: int = 20,
) -> str:
    """HTML: the worst false merges (most similar wrongly grouped pairs) and misses (least
    similar pairs of a true group left apart) at one tier, as thumbnails."""
    result = embedded.library.cut(EVAL_USER, dict(thresholds), linkage)
    chosen = next(t for t in result.tiers if t.name == tier)
    merges, misses = _errors(embedded, chosen.groups, tier)
    return (
        "<!doctype html><meta charset=utf-8><title>photocluster eval errors</title>"
        f"<style>{_PAGE_STYLE}</style>"
        f"<h1>{html.escape(embedded.model)}: {tier} tier at {chosen.threshold}, {linkage} linkage"
        f"</h1><h2>Worst false merges ({len(merges)})</h2>{_pair_rows(merges[:limit])}"
        f"<h2>Worst misses ({len(misses)})</h2>{_pair_rows(misses[:limit])}"
    )


def _errors(
    embedded: Embedded, groups: list[list[str]], tier: str
) -> tuple[list[ScoredPair], list[ScoredPair]]:
    """False merges, most similar first, and misses, least similar first."""
    predicted_group = {i: g for g, group in enumerate(groups) for i in group}
    index = {item.image_id: n for n, item in enumerate(embedded.images)}
    sims = embedded.vectors @ embedded.vectors.T
    merges, misses = [], []
    for a, b in itertools.combinations(embedded.images, 2):
        together = a.image_id in predicted_group and predicted_group.get(
            a.image_id
        ) == predicted_group.get(b.image_id)
        same = a.label(tier) is not None and a.label(tier) == b.label(tier)
        score = float(sims[index[a.image_id], index[b.image_id]])
        if together and not same:
            merges.append((score, a, b))
        elif same and not together:
            misses.append((score, a, b))
    merges.sort(key=lambda x: -x[0])
    misses.sort(key=lambda x: x[0])
    return merges, misses


def _pair_rows(items: list[ScoredPair]) -> str:
    if not items:
        return "<p>None.</p>"
    return "".join(
        f"<div class=pair><img src='{_thumbnail(a.path)}'><img src='{_thumbnail(b.path)}'>"
        f"<p>{score:.3f}: {html.escape(a.image_id)} ({html.escape(_what(a))}) / "
        f"{html.escape(b.image_id)} ({html.escape(_what(b))})</p></div>"
        for score, a, b in items
    )


def _what(item: LabelledImage) -> str:
    """Its near-duplicate group and how it was made, e.g. ``coffee/1a, burst``."""
    made = ", ".join(item.families) or item.kind
    return ", ".join(p for p in (item.label("high") or item.group or "-", made) if p)
