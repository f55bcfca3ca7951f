"""The ``photocluster`` command.

Each sub-command imports what it needs when it runs, so ``photocluster clusters`` never
loads torch. Errors the user can fix print one line and exit 2; the store is untouched.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from photocluster.config import Settings, get_settings
from photocluster.errors import PhotoclusterError

Handler = Callable[[argparse.Namespace, Settings], int]


class UsageError(Exception):
    """A problem with the command's input, reported as one line."""


def _library(settings: Settings):  # type: ignore[no-untyped-def]
    from photocluster.library import Library

    return Library.from_settings(settings)


def cmd_import_embeddings(args: argparse.Namespace, settings: Settings) -> int:
    """Bulk-import precomputed vectors (``.npz`` with arrays ``ids`` and ``embeddings``)."""
    import zipfile

    import numpy as np

    path = Path(args.file)
    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    if not zipfile.is_zipfile(path):
        raise UsageError(f"{path}: not a readable .npz file (expected numpy.savez output)")
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = {"ids", "embeddings"} - set(data.files)
            if missing:
                raise UsageError(
                    f"{path}: missing array(s) {sorted(missing)}; found {sorted(data.files)}"
                )
            ids, embeddings = data["ids"], data["embeddings"]
    except UsageError:
        raise
    except ValueError as exc:  # object arrays need pickle: refused
        raise UsageError(f"{path}: unreadable arrays ({exc})") from exc
    except OSError as exc:
        raise UsageError(f"{path}: not a readable .npz file ({exc})") from exc
    if ids.dtype.kind not in "US" or ids.ndim != 1:
        raise UsageError(f"{path}: 'ids' must be a 1-D array of strings, got {ids.dtype}")
    if embeddings.ndim != 2 or embeddings.dtype.kind not in "fiu":
        raise UsageError(f"{path}: 'embeddings' must be a 2-D numeric array")
    if len(ids) != len(embeddings):
        raise UsageError(f"{path}: {len(ids)} ids but {len(embeddings)} embeddings")
    id_list = [
        i.decode("ascii", "replace") if isinstance(i, bytes) else str(i) for i in ids.tolist()
    ]
    model = args.model or settings.model
    result = _library(settings).write(args.user, model, id_list, embeddings)
    print(json.dumps({"user_id": args.user, "model": model, **result.to_dict()}))
    return 0


def cmd_clusters(args: argparse.Namespace, settings: Settings) -> int:
    """Print the user's groups per tier as JSON (the API's clusters response)."""
    thresholds = {"low": args.low, "medium": args.medium, "high": args.high}
    result = _library(settings).clusters(args.user, thresholds, args.linkage, args.min_size)
    print(json.dumps(result.to_dict(), indent=2 if args.pretty else None))
    return 0


def cmd_similar(args: argparse.Namespace, settings: Settings) -> int:
    neighbours = _library(settings).similar(args.user, args.image, args.k, args.min_score)
    print(json.dumps({"image_id": args.image, "neighbors": [n.__dict__ for n in neighbours]}))
    return 0


def cmd_stats(args: argparse.Namespace, settings: Settings) -> int:
    print(json.dumps(_library(settings).stats(args.user).__dict__))
    return 0


def cmd_reindex(args: argparse.Namespace, settings: Settings) -> int:
    graph = _library(settings).reindex(args.user)
    print(
        json.dumps(
            {
                "user_id": args.user,
                "n_images": graph.n,
                "edges": len(graph.edge_u),
                "floor": graph.floor,
            }
        )
    )
    return 0


def cmd_bake_model(args: argparse.Namespace, settings: Settings) -> int:
    """Save a model's weights into a folder (used by the embedder's Dockerfile)."""
    from photocluster.encoder import bake_model

    model_id = bake_model(args.model, Path(args.dest))
    print(json.dumps({"model_id": model_id, "dest": args.dest}))
    return 0


def cmd_backfill(args: argparse.Namespace, settings: Settings) -> int:
    """Send existing images to the ingest queue (resumable with --state-file)."""
    from dataclasses import asdict

    import boto3

    from photocluster.backfill import backfill

    queue_url = args.queue_url or settings.queue_url
    if not queue_url:
        raise UsageError("no queue: pass --queue-url or set PHOTOCLUSTER_QUEUE_URL")
    report = backfill(
        boto3.client("s3"),
        boto3.client("sqs"),
        args.bucket,
        queue_url,
        prefix=args.prefix,
        user=args.user,
        state_file=Path(args.state_file) if args.state_file else None,
        limit=args.limit,
        progress=not args.quiet,
    )
    print(json.dumps(asdict(report)))
    return 1 if report.failed else 0


def cmd_api_serve(args: argparse.Namespace, settings: Settings) -> int:
    """Serve the cluster API with uvicorn (local runs)."""
    import uvicorn

    from photocluster.api.app import create_app

    uvicorn.run(
        create_app(settings),
        host=args.host or settings.host,
        port=args.port or settings.api_port,
        log_level=settings.log_level.lower(),
    )
    return 0


def cmd_token(args: argparse.Namespace, settings: Settings) -> int:
    """Print an HS256 token for a user (local jwt mode: PHOTOCLUSTER_JWT_SECRET)."""
    from photocluster.api.auth import make_token
    from photocluster.ids import validate_user_id

    if settings.jwt_secret is None:
        raise UsageError("PHOTOCLUSTER_JWT_SECRET is not set")
    print(make_token(settings.jwt_secret.get_secret_value(), validate_user_id(args.user), args.ttl))
    return 0


def cmd_make_eval_set(args: argparse.Namespace, settings: Settings) -> int:
    """Build the reproducible evaluation set from images inside installed packages."""
    from photocluster import evalset

    try:
        samples = evalset.build(args.seed, args.groups, args.per_group, args.singletons)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    out = evalset.write(samples, Path(args.out), args.seed)
    groups = len({s.group for s in samples if s.group})
    print(
        f"wrote {len(samples)} images ({groups} groups, "
        f"{sum(1 for s in samples if s.group is None)} singletons) to {out}"
    )
    return 0


def cmd_eval(args: argparse.Namespace, settings: Settings) -> int:
    """Score clustering quality on a labelled folder; print the table (or JSON)."""
    import tempfile

    from photocluster.config import OFFLINE_MODEL
    from photocluster.evaluation import error_page, evaluate, format_report

    thresholds = {
        k: v
        for k, v in (("low", args.low), ("medium", args.medium), ("high", args.high))
        if v is not None
    }
    linkages = ["complete", "single"] if args.linkage == "both" else [args.linkage]
    try:
        with tempfile.TemporaryDirectory(prefix="photocluster-eval-") as work:
            report, embedded = evaluate(
                Path(args.dir),
                args.model or OFFLINE_MODEL,
                Path(work),
                thresholds,
                linkages,
                progress=not args.json,
            )
            if args.html:
                tiers = embedded.library.thresholds(embedded.model, thresholds)
                Path(args.html).write_text(error_page(embedded, tiers, linkages[0]))
    except FileNotFoundError as exc:
        raise UsageError(str(exc)) from exc
    print(report.to_json() if args.json else format_report(report))
    return 0


def cmd_calibrate(args: argparse.Namespace, settings: Settings) -> int:
    """Suggest tier thresholds from the pooled sweeps of several labelled folders."""
    import tempfile

    from photocluster.config import OFFLINE_MODEL
    from photocluster.evaluation import calibrate, evaluate, pool

    sweeps = []
    model = args.model or OFFLINE_MODEL
    try:
        for folder in args.dirs:
            with tempfile.TemporaryDirectory(prefix="photocluster-cal-") as work:
                report, _ = evaluate(
                    Path(folder), model, Path(work), linkages=["complete"], progress=False
                )
            sweeps.append(report.sweep["complete"])
    except FileNotFoundError as exc:
        raise UsageError(str(exc)) from exc
    pooled = pool(sweeps)
    suggestion = calibrate(pooled)
    at = {s.threshold: s for s in pooled}
    print(
        json.dumps(
            {
                "model": report.model,
                "sets": args.dirs,
                "suggested": suggestion,
                "pooled_at_suggestion": {
                    name: {"precision": at[t].precision, "recall": at[t].recall, "f1": at[t].f1}
                    for name, t in suggestion.items()
                },
            },
            indent=1,
        )
    )
    return 0


def _local_options(args: argparse.Namespace) -> Any:
    from photocluster.local.demo import Options

    return Options(
        workdir=Path(args.workdir),
        aws_port=args.aws_port,
        api_port=args.api_port,
        embedder_port=args.embedder_port,
        aws_endpoint=args.aws_endpoint,
        timeout_s=args.timeout,
        samples=getattr(args, "samples", True),
    )


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    """The whole pipeline on this machine: upload samples, print groups, stop."""
    from photocluster.local.demo import demo

    return demo(_local_options(args))


def cmd_up(args: argparse.Namespace, settings: Settings) -> int:
    """The same stack as the demo, kept running until Ctrl-C."""
    from photocluster.local.demo import up

    return up(_local_options(args))


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    """Poll the ingest queue and run the ingest handler on each batch (local runs)."""
    from photocluster.local.worker import run

    logging.getLogger().setLevel(logging.INFO)
    run(settings, Path(args.ready_file) if args.ready_file else None)
    return 0


def cmd_bootstrap(args: argparse.Namespace, settings: Settings) -> int:
    """Create the bucket, queues and notification against AWS_ENDPOINT_URL (an emulator)."""
    from dataclasses import asdict

    import boto3

    from photocluster.local.aws import bootstrap

    resources = bootstrap(boto3.client("s3"), boto3.client("sqs"), settings)
    print(json.dumps(asdict(resources)))
    return 0


def _add_local(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workdir", default=".demo", help="logs, samples, local EFS")
    parser.add_argument("--aws-port", type=int, default=4566)
    parser.add_argument("--api-port", type=int, default=8000)
    parser.add_argument("--embedder-port", type=int, default=8080)
    parser.add_argument("--aws-endpoint", help="use this running emulator instead of moto")
    parser.add_argument("--timeout", type=float, default=300.0)


def _add_thresholds(parser: argparse.ArgumentParser) -> None:
    for tier in ("low", "medium", "high"):
        parser.add_argument(
            f"--{tier}",
            type=float,
            default=None,
            help=f"{tier} tier threshold in (0, 1] (default: the model's)",
        )
    parser.add_argument("--linkage", choices=["complete", "single"], default=None)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="photocluster", description=__doc__.split("\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("import-embeddings", help="bulk-import vectors from an .npz file")
    p.add_argument("--user", required=True)
    p.add_argument("--model", help="encoder id the vectors came from (default: configured)")
    p.add_argument("file")
    p.set_defaults(handler=cmd_import_embeddings)

    p = sub.add_parser("clusters", help="print a user's groups per tier as JSON")
    p.add_argument("--user", required=True)
    _add_thresholds(p)
    p.add_argument("--min-size", type=int, default=2)
    p.add_argument("--pretty", action="store_true")
    p.set_defaults(handler=cmd_clusters)

    p = sub.add_parser("similar", help="top-k neighbours of one image")
    p.add_argument("--user", required=True)
    p.add_argument("--image", required=True)
    p.add_argument("-k", type=int, default=10)
    p.add_argument("--min-score", type=float, default=0.0)
    p.set_defaults(handler=cmd_similar)

    p = sub.add_parser("stats", help="a user's store and graph figures")
    p.add_argument("--user", required=True)
    p.set_defaults(handler=cmd_stats)

    p = sub.add_parser("reindex", help="rebuild a user's neighbour graph from the store")
    p.add_argument("--user", required=True)
    p.set_defaults(handler=cmd_reindex)

    p = sub.add_parser("backfill", help="enqueue images already in the bucket for ingest")
    p.add_argument("--bucket", required=True)
    p.add_argument("--prefix", default="uploads/")
    p.add_argument("--user", help="only this user's images")
    p.add_argument("--queue-url", help="ingest queue (default: PHOTOCLUSTER_QUEUE_URL)")
    p.add_argument("--state-file", help="resume from / record progress in this file")
    p.add_argument("--limit", type=int, help="stop after sending this many keys")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=cmd_backfill)

    p = sub.add_parser("api-serve", help="serve the cluster API (uvicorn)")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.set_defaults(handler=cmd_api_serve)

    p = sub.add_parser("token", help="print a local HS256 token for a user")
    p.add_argument("--user", required=True)
    p.add_argument("--ttl", type=int, default=3600, help="seconds")
    p.set_defaults(handler=cmd_token)

    p = sub.add_parser("make-eval-set", help="build the labelled evaluation set (offline)")
    p.add_argument("out")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--groups", type=int, default=16)
    p.add_argument("--per-group", type=int, default=5)
    p.add_argument("--singletons", type=int, default=9)
    p.set_defaults(handler=cmd_make_eval_set)

    p = sub.add_parser("eval", help="pairwise precision/recall of the tiers on a labelled folder")
    p.add_argument("dir", help="one sub-folder per group, plus singletons/")
    p.add_argument("--model", help="encoder (default: efficientnet-lite0, works offline)")
    for tier in ("low", "medium", "high"):
        p.add_argument(f"--{tier}", type=float)
    p.add_argument("--linkage", choices=["complete", "single", "both"], default="both")
    p.add_argument("--json", action="store_true")
    p.add_argument("--html", help="write a page of the worst false merges and misses here")
    p.set_defaults(handler=cmd_eval)

    p = sub.add_parser("calibrate", help="suggest tier thresholds from labelled folders")
    p.add_argument("dirs", nargs="+")
    p.add_argument("--model")
    p.set_defaults(handler=cmd_calibrate)

    p = sub.add_parser("demo", help="run the whole pipeline locally on sample photos")
    _add_local(p)
    p.set_defaults(handler=cmd_demo)

    p = sub.add_parser("up", help="run the local stack until Ctrl-C")
    _add_local(p)
    p.add_argument("--no-samples", dest="samples", action="store_false")
    p.set_defaults(handler=cmd_up)

    p = sub.add_parser("worker", help="poll the ingest queue (local event source mapping)")
    p.add_argument("--ready-file")
    p.set_defaults(handler=cmd_worker)

    p = sub.add_parser("bootstrap", help="create bucket, queues and notification (emulator)")
    p.set_defaults(handler=cmd_bootstrap)

    p = sub.add_parser("bake-model", help="save a model's weights for offline loading")
    p.add_argument("model", help="hub id, local folder, or efficientnet-lite0")
    p.add_argument("dest")
    p.set_defaults(handler=cmd_bake_model)

    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        settings = get_settings()
        return int(args.handler(args, settings))
    except (UsageError, PhotoclusterError) as exc:
        print(f"photocluster {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"photocluster {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
