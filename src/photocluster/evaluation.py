"""How good are the groups? Pairwise precision/recall against labelled photo groups.

``photocluster eval DIR`` embeds every image of an evaluation folder (one sub-folder per
ground-truth group, ``singletons/`` for the rest), stores the vectors with the production
writer path (store + neighbour graph), clusters them with the production query path, and
scores each tier: a *predicted pair* is two images in one predicted group, a *true pair*
two images of one ground-truth group. Precision = correct predicted pairs / predicted
pairs (1.0 when nothing is grouped); recall = correct predicted pairs / true pairs.
"""

from __future__ import annotations

import base64
import html
import io
import itertools
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
from tqdm import tqdm

from photocluster.config import Settings
from photocluster.evalset import LabelledImage, read_set
from photocluster.images import ENCODER_MIN_SIDE, ImageLimits, decode_image
from photocluster.library import Library

EVAL_USER = "eval"
SWEEP = tuple(round(0.30 + 0.01 * i, 2) for i in range(70))  # 0.30 .. 0.99


@dataclass(frozen=True)
class TierScore:
    name: str
    threshold: float
    precision: float
    recall: float
    f1: float
    groups: int
    largest: int
    predicted_pairs: int
    correct_pairs: int
    true_pairs: int


def pairwise_scores(
    groups: Sequence[Sequence[str]], truth: Mapping[str, str | None]
) -> tuple[float, float, float, int, int, int]:
    """(precision, recall, f1, predicted pairs, correct pairs, true pairs)."""
    predicted = correct = 0
    for group in groups:
        predicted += len(group) * (len(group) - 1) // 2
        labels: dict[str, int] = {}
        for image_id in group:
            label = truth.get(image_id)
            if label is not None:
                labels[label] = labels.get(label, 0) + 1
        correct += sum(c * (c - 1) // 2 for c in labels.values())
    sizes: dict[str, int] = {}
    for label in truth.values():
        if label is not None:
            sizes[label] = sizes.get(label, 0) + 1
    true = sum(c * (c - 1) // 2 for c in sizes.values())
    precision = correct / predicted if predicted else 1.0
    recall = correct / true if true else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1, predicted, correct, true


def score_tier(
    name: str, threshold: float, groups: Sequence[Sequence[str]], truth: Mapping[str, str | None]
) -> TierScore:
    precision, recall, f1, predicted, correct, true = pairwise_scores(groups, truth)
    return TierScore(
        name,
        threshold,
        round(precision, 4),
        round(recall, 4),
        round(f1, 4),
        len(groups),
        max((len(g) for g in groups), default=0),
        predicted,
        correct,
        true,
    )


@dataclass
class EvalReport:
    folder: str
    model: str
    n_images: int
    n_groups: int
    n_singletons: int
    tiers: dict[str, list[TierScore]] = field(default_factory=dict)  # per linkage
    sweep: dict[str, list[TierScore]] = field(default_factory=dict)  # per linkage

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)


@dataclass
class Embedded:
    images: list[LabelledImage]
    vectors: npt.NDArray[np.float32]
    model: str
    library: Library
    truth: dict[str, str | None]


def embed_folder(
    folder: Path, model: str, store_root: Path, progress: bool = True, batch: int = 16
) -> Embedded:
    """Embed every image of ``folder`` and store the vectors through the writer path."""
    from photocluster.encoder import load_encoder

    images = read_set(folder)
    encoder = load_encoder(model, batch_size=batch)
    limits = ImageLimits()
    vectors = np.zeros((len(images), encoder.dim), dtype=np.float32)
    with tqdm(
        total=len(images),
        desc=f"embedding ({encoder.model_id})",
        unit=" images",
        disable=not progress,
    ) as bar:
        for start in range(0, len(images), batch):
            chunk = images[start : start + batch]
            pictures = [
                decode_image(item.path.read_bytes(), limits, ENCODER_MIN_SIDE) for item in chunk
            ]
            vectors[start : start + len(chunk)] = encoder.embed(pictures)
            bar.update(len(chunk))
    library = Library.from_settings(
        Settings(store_root=store_root, model=encoder.model_id, store_fsync=False)
    )
    library.write(EVAL_USER, encoder.model_id, [i.image_id for i in images], vectors)
    return Embedded(
        images, vectors, encoder.model_id, library, {i.image_id: i.group for i in images}
    )


def evaluate(
    folder: Path,
    model: str,
    work: Path,
    thresholds: Mapping[str, float] | None = None,
    linkages: Sequence[str] = ("complete", "single"),
    progress: bool = True,
    sweep: bool = True,
) -> tuple[EvalReport, Embedded]:
    """Score the tiers (the model's defaults unless given) and, optionally, a sweep.
    ``work`` holds the evaluation's store while the caller still needs it."""
    embedded = embed_folder(folder, model, work, progress)
    library = embedded.library
    tiers = library.thresholds(embedded.model, thresholds or {})
    groups = {i.group for i in embedded.images if i.group is not None}
    report = EvalReport(
        str(folder),
        embedded.model,
        len(embedded.images),
        len(groups),
        sum(1 for i in embedded.images if i.group is None),
    )
    for linkage in linkages:
        result = library.cut(EVAL_USER, tiers, linkage)
        report.tiers[linkage] = [
            score_tier(t.name, t.threshold, t.groups, embedded.truth) for t in result.tiers
        ]
        if sweep:
            report.sweep[linkage] = [
                score_tier(
                    f"t{t}",
                    t,
                    library.cut(EVAL_USER, {"t": t}, linkage).tiers[0].groups,
                    embedded.truth,
                )
                for t in SWEEP
            ]
    return report, embedded


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


def format_report(report: EvalReport) -> str:
    lines = [
        f"# Quality: {report.n_images} images ({report.n_groups} groups, "
        f"{report.n_singletons} singletons), model {report.model}",
        "",
    ]
    lines.append("| linkage | tier | threshold | precision | recall | F1 | groups | largest |")
    lines.append("|---|---|---|---|---|---|---|---|")
    for linkage, scores in report.tiers.items():
        for s in scores:
            lines.append(
                f"| {linkage} | {s.name} | {s.threshold:.2f} | {s.precision:.3f} | "
                f"{s.recall:.3f} | {s.f1:.3f} | {s.groups} | {s.largest} |"
            )
    if "complete" in report.sweep:
        suggestion = calibrate(report.sweep["complete"])
        lines += [
            "",
            "Thresholds suggested by the sweep (complete linkage): "
            + ", ".join(f"{k} {v:.2f}" for k, v in suggestion.items()),
        ]
    return "\n".join(lines)


def _thumbnail(path: Path) -> str:
    from PIL import Image

    with Image.open(path) as opened:
        image = opened.convert("RGB")
    image.thumbnail((160, 120))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


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
    predicted_group = {i: g for g, group in enumerate(chosen.groups) for i in group}
    index = {item.image_id: n for n, item in enumerate(embedded.images)}
    sims = embedded.vectors @ embedded.vectors.T
    merges, misses = [], []
    for a, b in itertools.combinations(embedded.images, 2):
        together = a.image_id in predicted_group and predicted_group.get(
            a.image_id
        ) == predicted_group.get(b.image_id)
        same = a.group is not None and a.group == b.group
        score = float(sims[index[a.image_id], index[b.image_id]])
        if together and not same:
            merges.append((score, a, b))
        elif same and not together:
            misses.append((score, a, b))
    merges.sort(key=lambda x: -x[0])
    misses.sort(key=lambda x: x[0])

    def rows(items: list[tuple[float, LabelledImage, LabelledImage]]) -> str:
        if not items:
            return "<p>None.</p>"
        out = []
        for score, a, b in items[:limit]:
            out.append(
                f"<div class=pair><img src='{_thumbnail(a.path)}'><img src='{_thumbnail(b.path)}'>"
                f"<p>{score:.3f}: {html.escape(a.image_id)} ({html.escape(a.group or '-')}) / "
                f"{html.escape(b.image_id)} ({html.escape(b.group or '-')})</p></div>"
            )
        return "".join(out)

    return (
        "<!doctype html><meta charset=utf-8><title>photocluster eval errors</title><style>"
        "body{font:14px system-ui;margin:24px}.pair{display:inline-block;margin:8px;"
        "padding:6px;border:1px solid #ccc;border-radius:6px}.pair img{height:96px;margin:2px}"
        ".pair p{margin:4px 0 0;font-size:12px;max-width:330px}</style>"
        f"<h1>{html.escape(embedded.model)}: {tier} tier at {chosen.threshold}, {linkage} linkage"
        f"</h1><h2>Worst false merges ({len(merges)})</h2>{rows(merges)}"
        f"<h2>Worst misses ({len(misses)})</h2>{rows(misses)}"
    )
