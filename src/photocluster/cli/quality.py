"""Commands of the quality harness: make-eval-set, eval, eval-peers, calibrate."""

from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from photocluster.cli.common import SubParsers, UsageError, add_thresholds, command
from photocluster.config import (
    DEFAULT_LINKAGE,
    ENCODER_RUNTIMES,
    LINKAGES,
    OFFLINE_MODEL,
    EncoderRuntime,
    Linkage,
    Settings,
    check_thresholds,
)

#: Where ``make peers`` puts the peers' venv (fastdup and imagededup: their pins clash with ours).
PEERS_PYTHON = ".tools/peers/bin/python"

if TYPE_CHECKING:
    from photocluster.quality.evaluation import LoadEncoder
    from photocluster.quality.metrics import TierScore


def cmd_make_eval_set(args: argparse.Namespace, settings: Settings) -> int:
    """Build the graded evaluation set (README, Quality) from pictures inside installed
    packages: one split of the sources, labelled at every tier."""
    from photocluster.quality import evalset, scenes

    samples = scenes.build_graded(args.seed, args.split, subjects=args.subjects)
    if not samples:
        raise UsageError(f"no sources in split {args.split!r}")
    out = evalset.write(samples, Path(args.out), args.seed, args.split)
    made = scenes.counts(samples)
    print(
        f"wrote {len(samples)} images of {made['subjects']} subjects ({args.split} sources: "
        f"{made['edit']} edits, {made['burst']} burst frames, {made['other-shot']} other "
        f"shots, {made['other-time']} other times, {made['singleton']} singletons) to {out}"
    )
    return 0


def _given_thresholds(args: argparse.Namespace) -> dict[str, float]:
    """The tiers given on the command line, checked before any image is embedded."""
    tiers = (("low", args.low), ("medium", args.medium), ("high", args.high))
    thresholds = {name: value for name, value in tiers if value is not None}
    return check_thresholds(thresholds) if thresholds else thresholds


def cmd_eval(args: argparse.Namespace, settings: Settings) -> int:
    """Score clustering quality on a labelled folder; print the table (or JSON)."""
    from photocluster.quality.evaluation import evaluate
    from photocluster.quality.report import error_page, format_report

    thresholds = _given_thresholds(args)
    linkages = list(LINKAGES) if args.linkage == "all" else [args.linkage]
    try:
        with tempfile.TemporaryDirectory(prefix="photocluster-eval-") as work:
            report, embedded = evaluate(
                Path(args.dir),
                _loader(args.model or OFFLINE_MODEL, args.runtime or settings.encoder_runtime),
                Path(work),
                thresholds,
                linkages,
                progress=not args.json,
                copy_check=settings.copy_check,
            )
            if args.html:
                chosen = embedded.library.tiers(embedded.model).asked(thresholds)
                Path(args.html).write_text(error_page(embedded, chosen, linkages[0]))
    except FileNotFoundError as exc:
        raise UsageError(str(exc)) from exc
    print(report.to_json() if args.json else format_report(report))
    return 0


def cmd_eval_peers(args: argparse.Namespace, settings: Settings) -> int:
    """Score the peers (fastdup, imagededup PHash) on a labelled folder; print their rows."""
    from photocluster.quality import peers
    from photocluster.quality.evalset import read_set

    if args.k < 1:
        raise UsageError(f"--k {args.k}: fastdup needs at least one neighbour per image")
    try:
        images = read_set(Path(args.dir))
        if args.from_pairs:
            data = peers.read_pairs(Path(args.from_pairs))
        else:
            data = peers.run_peers(images, Path(args.python), args.k)
        if args.save_pairs:
            Path(args.save_pairs).write_text(json.dumps(data))
        rows = peers.score_peers(data, images)
    except (FileNotFoundError, peers.PeerOutputError) as exc:
        raise UsageError(str(exc)) from exc
    print(peers.format_peers(rows, args.dir))
    return 0


def cmd_eval_verify(args: argparse.Namespace, settings: Settings) -> int:
    """Measure the geometric check alone (full matrix, every candidate): each tier of a
    labelled folder with and without its copies and scenes (average linkage)."""
    import dataclasses

    from photocluster.quality.check_report import check_folder, format_check

    thresholds = _given_thresholds(args)
    try:
        with tempfile.TemporaryDirectory(prefix="photocluster-verify-") as work:
            report = check_folder(
                Path(args.dir),
                _loader(args.model or OFFLINE_MODEL),
                Path(work),
                thresholds,
                not args.json,
                settings.embed_image_side,
            )
    except FileNotFoundError as exc:
        raise UsageError(str(exc)) from exc
    print(json.dumps(dataclasses.asdict(report), indent=1) if args.json else format_check(report))
    return 0


def cmd_calibrate(args: argparse.Namespace, settings: Settings) -> int:
    """Suggest tier thresholds from the pooled sweeps of labelled folders (each tier against
    its own labels)."""
    from photocluster.quality.sweep import calibrate, describe, pool_tiers

    model, sweeps = _sweeps(args.dirs, args.model or OFFLINE_MODEL, args.linkage)
    pooled = pool_tiers(sweeps)
    suggestion = calibrate(pooled)
    summary = {"model": model, "linkage": args.linkage, "sets": args.dirs}
    print(
        json.dumps(
            {**summary, "suggested": suggestion, "evidence": describe(pooled, suggestion)}, indent=1
        )
    )
    return 0


def _sweeps(
    folders: list[str], model: str, linkage: Linkage
) -> tuple[str, list[dict[str, list[TierScore]]]]:
    """The encoder's recorded id, and each labelled folder's sweeps per tier."""
    from photocluster.quality.evaluation import evaluate

    sweeps = []
    load = _loader(model)  # one encoder for every folder
    try:
        for folder in folders:
            with tempfile.TemporaryDirectory(prefix="photocluster-cal-") as work:
                report, _ = evaluate(
                    Path(folder),
                    load,
                    Path(work),
                    linkages=[linkage],
                    progress=False,
                    copy_check=False,  # as bake-model calibrates: the vectors' tiers
                )
            sweeps.append(report.sweep[linkage])
    except FileNotFoundError as exc:
        raise UsageError(str(exc)) from exc
    return report.model, sweeps


def _loader(model: str, runtime: EncoderRuntime | None = None) -> LoadEncoder:
    """Loads ``model`` (torch unless a runtime is named) once, when first asked."""
    from photocluster.embedder.loader import load_encoder

    return functools.cache(functools.partial(load_encoder, model, runtime=runtime or "torch"))


def register(sub: SubParsers) -> None:
    """The quality commands, where the quality tools are installed (the service images,
    which run the CLI's other commands in compose, leave them out: the `quality` extra)."""
    if importlib.util.find_spec("photocluster.quality") is None:
        return
    _register_sets(sub)
    _register_evaluations(sub)
    p = command(
        sub,
        "calibrate",
        cmd_calibrate,
        "sweep labelled folders: the tiers a calibration would hold",
    )
    p.add_argument("dirs", nargs="+")
    p.add_argument("--model")
    p.add_argument("--linkage", choices=LINKAGES, default=DEFAULT_LINKAGE)


def _register_sets(sub: SubParsers) -> None:
    from photocluster.quality import SPLITS

    p = command(sub, "make-eval-set", cmd_make_eval_set, "build the labelled evaluation set")
    p.add_argument("out")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--split",
        choices=SPLITS,
        default="evaluation",
        help="the sources: held out for evaluation (default), for calibration, or all",
    )
    p.add_argument("--subjects", type=int, help="at most this many subjects (quick runs)")


def _register_evaluations(sub: SubParsers) -> None:
    p = command(sub, "eval", cmd_eval, "pairwise precision/recall of the tiers on a folder")
    p.add_argument("dir", help="one sub-folder per group, plus singletons/")
    p.add_argument("--model", help=f"encoder (default: {OFFLINE_MODEL}, works offline)")
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

    p = command(sub, "eval-peers", cmd_eval_peers, "the peers' precision/recall on a folder")
    p.add_argument("dir", help="a set made by make-eval-set")
    p.add_argument("--python", default=PEERS_PYTHON, help=f"the peers' python ({PEERS_PYTHON})")
    p.add_argument("--k", type=int, default=10, help="fastdup's neighbours per image (default 10)")
    p.add_argument("--save-pairs", help="keep every pair the peers scored in this JSON file")
    p.add_argument("--from-pairs", help="score a --save-pairs file instead of running the peers")

    p = command(
        sub, "eval-verify", cmd_eval_verify, "measure the geometric check (ORB + homography)"
    )
    p.add_argument("dir", help="a set made by make-eval-set")
    p.add_argument("--model", help=f"encoder (default: {OFFLINE_MODEL}, works offline)")
    add_thresholds(p, linkage=False)
    p.add_argument("--json", action="store_true")
