"""Commands of the quality harness: make-eval-set, eval, calibrate."""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from photocluster.cli.common import SubParsers, UsageError, add_thresholds, command
from photocluster.config import ENCODER_RUNTIMES, LINKAGES, OFFLINE_MODEL, Settings

if TYPE_CHECKING:
    from photocluster.quality.metrics import TierScore


def cmd_make_eval_set(args: argparse.Namespace, settings: Settings) -> int:
    """Build the reproducible evaluation set from images inside installed packages."""
    from photocluster.quality import evalset

    try:
        samples = evalset.build(args.seed, args.groups, args.per_group, args.singletons)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    out = evalset.write(samples, Path(args.out), args.seed)
    groups = len({s.group for s in samples if s.group})
    singletons = sum(1 for s in samples if s.group is None)
    print(f"wrote {len(samples)} images ({groups} groups, {singletons} singletons) to {out}")
    return 0


def cmd_eval(args: argparse.Namespace, settings: Settings) -> int:
    """Score clustering quality on a labelled folder; print the table (or JSON)."""
    from photocluster.quality.evaluation import evaluate
    from photocluster.quality.report import error_page, format_report

    tiers = (("low", args.low), ("medium", args.medium), ("high", args.high))
    thresholds = {name: value for name, value in tiers if value is not None}
    linkages = list(LINKAGES) if args.linkage == "all" else [args.linkage]
    try:
        with tempfile.TemporaryDirectory(prefix="photocluster-eval-") as work:
            report, embedded = evaluate(
                Path(args.dir),
                args.model or OFFLINE_MODEL,
                Path(work),
                thresholds,
                linkages,
                progress=not args.json,
                runtime=args.runtime or settings.encoder_runtime,
            )
            if args.html:
                chosen = embedded.library.thresholds(embedded.model, thresholds)
                Path(args.html).write_text(error_page(embedded, chosen, linkages[0]))
    except FileNotFoundError as exc:
        raise UsageError(str(exc)) from exc
    print(report.to_json() if args.json else format_report(report))
    return 0


def cmd_calibrate(args: argparse.Namespace, settings: Settings) -> int:
    """Suggest tier thresholds from the pooled sweeps of several labelled folders."""
    from photocluster.quality.calibration import calibrate, pool

    model, sweeps = _sweeps(args.dirs, args.model or OFFLINE_MODEL)
    pooled = pool(sweeps)
    suggestion = calibrate(pooled)
    at = {s.threshold: s for s in pooled}
    scores = {
        name: {"precision": at[t].precision, "recall": at[t].recall, "f1": at[t].f1}
        for name, t in suggestion.items()
    }
    summary = {"model": model, "sets": args.dirs, "suggested": suggestion}
    print(json.dumps({**summary, "pooled_at_suggestion": scores}, indent=1))
    return 0


def _sweeps(folders: list[str], model: str) -> tuple[str, list[list[TierScore]]]:
    """The encoder's recorded id, and a complete-linkage sweep of each labelled folder."""
    from photocluster.quality.evaluation import evaluate

    sweeps = []
    try:
        for folder in folders:
            with tempfile.TemporaryDirectory(prefix="photocluster-cal-") as work:
                report, _ = evaluate(
                    Path(folder), model, Path(work), linkages=["complete"], progress=False
                )
            sweeps.append(report.sweep["complete"])
    except FileNotFoundError as exc:
        raise UsageError(str(exc)) from exc
    return report.model, sweeps


def register(sub: SubParsers) -> None:
    p = command(sub, "make-eval-set", cmd_make_eval_set, "build the labelled evaluation set")
    p.add_argument("out")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--groups", type=int, default=16)
    p.add_argument("--per-group", type=int, default=5)
    p.add_argument("--singletons", type=int, default=9)

    p = command(sub, "eval", cmd_eval, "pairwise precision/recall of the tiers on a folder")
    p.add_argument("dir", help="one sub-folder per group, plus singletons/")
    p.add_argument("--model", help="encoder (default: efficientnet-lite0, works offline)")
    p.add_argument(
        "--runtime",
        choices=ENCODER_RUNTIMES,
        help="torch, onnx or onnx-int8 (ONNX: --model is a bake-model folder); "
        "default PHOTOCLUSTER_ENCODER_RUNTIME",
    )
    add_thresholds(p, linkage=False)
    p.add_argument("--linkage", choices=[*LINKAGES, "all"], default="all")
    p.add_argument("--json", action="store_true")
    p.add_argument("--html", help="write a page of the worst false merges and misses here")

    p = command(sub, "calibrate", cmd_calibrate, "suggest tier thresholds from labelled folders")
    p.add_argument("dirs", nargs="+")
    p.add_argument("--model")
