"""Peers on our evaluation set: fastdup and imagededup's PHash, scored like our tiers.

The peers run in their own venv (``make peers``), through :mod:`peers_runner`, which
writes every pair each peer scored. Here the groups at a threshold are the connected
components of the pairs that pass it (fastdup's own notion of a group), scored per tier
with :mod:`photocluster.quality.metrics` against that tier's labels. For each peer: its
best F1 per tier over a sweep of thresholds, and its result at the tool's defaults.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from photocluster.clustering.linkage import components
from photocluster.quality.evalset import LabelledImage, truth_at
from photocluster.quality.metrics import TierScore, score_tier

TIERS = ("low", "medium", "high")
RUNNER = Path(__file__).with_name("peers_runner.py")
#: Thresholds tried per kind of score: cosine similarity, Hamming distance of 64-bit hashes.
SWEEPS: dict[str, tuple[float, ...]] = {
    "similarity": tuple(round(0.30 + 0.01 * i, 2) for i in range(70)),  # 0.30 .. 0.99
    "distance": tuple(float(d) for d in range(33)),  # 0 .. 32 bits
}

Truth = dict[str, dict[str, str | None]]


class PeerOutputError(ValueError):
    """A pairs file that is not what ``peers_runner`` writes, or is for another set."""


@dataclass(frozen=True)
class PeerRun:
    """One peer at one setting: its scored pairs (positions in the set) and its defaults."""

    peer: str
    setting: str
    measure: str  # "similarity": higher is closer; "distance": lower is closer
    pairs: npt.NDArray[np.int64]  # (m, 2)
    scores: npt.NDArray[np.float64]  # (m,)
    sweep: bool  # whether a best F1 over thresholds means anything for this run
    default: float | None
    groups: list[list[int]] | None = None  # the tool's own groups at its defaults


@dataclass(frozen=True)
class PeerRow:
    """A table row: which run, how its threshold was chosen, and the tier's score."""

    peer: str
    setting: str
    measure: str
    chosen: str  # "best F1" or "defaults"
    score: TierScore


def truth_by_tier(images: Sequence[LabelledImage]) -> Truth:
    """Each tier's label of each image (the one group label where the set has no tiers)."""
    return {tier: truth_at(images, tier) for tier in TIERS}


def groups_at(run: PeerRun, threshold: float, n: int) -> list[list[int]]:
    """Connected components (two or more images) of the pairs that pass ``threshold``."""
    passing = run.scores >= threshold if run.measure == "similarity" else run.scores <= threshold
    kept = run.pairs[passing]
    labels = components(n, kept[:, 0], kept[:, 1])
    grouped = np.unique(kept)  # images in no passing pair are groups of one: left out
    grouped = grouped[np.argsort(labels[grouped], kind="stable")]
    splits = np.flatnonzero(np.diff(labels[grouped])) + 1
    return [group.tolist() for group in np.split(grouped, splits) if len(group)]


def _named(groups: list[list[int]], image_ids: Sequence[str]) -> list[list[str]]:
    return [[image_ids[p] for p in group] for group in groups]


def score_run(run: PeerRun, image_ids: Sequence[str], truth: Truth) -> list[PeerRow]:
    """The best-F1 row per tier over the sweep, then the rows at the tool's defaults."""
    n = len(image_ids)
    thresholds = SWEEPS[run.measure] if run.sweep else ()
    sweep = [(t, _named(groups_at(run, t, n), image_ids)) for t in thresholds]
    rows = []
    for tier in TIERS if sweep else ():
        scores = [score_tier(tier, t, groups, truth[tier]) for t, groups in sweep]
        best = max(scores, key=lambda s: (s.f1, s.precision))
        rows.append(PeerRow(run.peer, run.setting, run.measure, "best F1", best))
    if run.default is not None:
        groups = run.groups if run.groups is not None else groups_at(run, run.default, n)
        named = _named(groups, image_ids)
        rows += [
            PeerRow(run.peer, run.setting, run.measure, "defaults", score_tier(*tier))
            for tier in ((t, run.default, named, truth[t]) for t in TIERS)
        ]
    return rows


def score_peers(data: dict[str, Any], images: Sequence[LabelledImage]) -> list[PeerRow]:
    """Every run of a ``peers_runner`` output, scored on the set it ran on."""
    image_ids = _image_ids_in_runner_order(data, images)
    truth = truth_by_tier(images)
    runs = [_parse_run(run, len(image_ids)) for run in data["runs"]]
    return [row for run in runs for row in score_run(run, image_ids, truth)]


def _image_ids_in_runner_order(data: dict[str, Any], images: Sequence[LabelledImage]) -> list[str]:
    by_path = {str(item.path.resolve()): item.image_id for item in images}
    keys = ("images", "runs")
    if not isinstance(data, dict) or not all(isinstance(data.get(k), list) for k in keys):
        raise PeerOutputError("not a peers_runner output: no 'images' and 'runs' lists")
    unknown = [p for p in data["images"] if p not in by_path]
    if unknown or len(data["images"]) != len(by_path):
        raise PeerOutputError(
            f"the pairs are for another set ({len(unknown)} images not in this folder, "
            f"{len(data['images'])} images there, {len(by_path)} here)"
        )
    return [by_path[p] for p in data["images"]]


def _parse_run(run: dict[str, Any], n: int) -> PeerRun:
    try:
        table = np.asarray(run["pairs"], dtype=np.float64).reshape(-1, 3)
        pairs = table[:, :2].astype(np.int64)
        groups = run.get("groups")
        members = [p for g in groups for p in g] if groups is not None else []
        indices = np.concatenate([pairs.ravel(), np.asarray(members, dtype=np.int64)])
        if run["measure"] not in SWEEPS or np.any((indices < 0) | (indices >= n)):
            raise ValueError("an unknown measure, or an image outside the set")
        return PeerRun(
            str(run["peer"]),
            str(run["setting"]),
            run["measure"],
            pairs,
            table[:, 2],
            bool(run["sweep"]),
            None if run["default"] is None else float(run["default"]),
            groups,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise PeerOutputError(f"a run of the pairs file is malformed: {exc}") from exc


def read_pairs(path: Path) -> dict[str, Any]:
    """A ``peers_runner`` output, read as JSON (checked when scored)."""
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise PeerOutputError(f"{path}: not JSON ({exc})") from exc
    return data


def run_peers(images: Sequence[LabelledImage], python: Path, k: int) -> dict[str, Any]:
    """Run ``peers_runner`` with the peers venv's ``python`` on the set's images. Its chatter
    (fastdup's progress bars) is kept back unless it fails."""
    if not python.is_file():
        raise FileNotFoundError(f"{python}: no peers venv there (make peers creates it)")
    with tempfile.TemporaryDirectory(prefix="photocluster-peers-") as work:
        listing, out = Path(work, "images.json"), Path(work, "pairs.json")
        listing.write_text(json.dumps([str(item.path.resolve()) for item in images]))
        command = [str(python), str(RUNNER), str(listing), str(out), work, "--k", str(k)]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            said = (done.stdout + done.stderr).strip().splitlines()[-5:]
            raise PeerOutputError(
                f"the peers runner failed (exit {done.returncode}): " + " / ".join(said)
            )
        return read_pairs(out)


def format_peers(rows: Sequence[PeerRow], folder: str) -> str:
    """The peers' rows in the shape of ``photocluster eval``'s table."""
    lines = [
        f"# Peers on {folder}: pairwise precision/recall per tier",
        "",
        "| peer | tier | threshold | precision | recall | F1 | groups | largest |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        s = row.score
        cut = f">= {s.threshold:.2f}" if row.measure == "similarity" else f"<= {s.threshold:.0f}"
        lines.append(
            f"| {row.peer}, {row.setting}, {row.chosen} | {s.name} | {cut} | {s.precision:.3f} | "
            f"{s.recall:.3f} | {s.f1:.3f} | {s.groups} | {s.largest} |"
        )
    return "\n".join(lines)
