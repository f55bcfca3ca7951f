"""Commands that run or feed a service: api-serve, token, bake-model, backfill, worker,
bootstrap. Each imports what it needs when it runs (``backfill`` never loads torch)."""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import asdict
from pathlib import Path

from photocluster.cli.common import SubParsers, UsageError, command
from photocluster.config import Settings


def cmd_api_serve(args: argparse.Namespace, settings: Settings) -> int:
    """Serve the cluster API with uvicorn (local runs)."""
    import uvicorn

    from photocluster.api.main import create_app

    uvicorn.run(
        create_app(settings),
        host=args.host or settings.host,
        port=args.port or settings.api_port,
        log_level=settings.log_level.lower(),
    )
    return 0


def cmd_token(args: argparse.Namespace, settings: Settings) -> int:
    """Print an HS256 token for a user (local jwt mode: PHOTOCLUSTER_JWT_SECRET, or the
    secret of a ``photocluster up`` folder)."""
    from photocluster.api.auth import make_token
    from photocluster.ids import validate_user_id

    secret = _secret_of(Path(args.workdir)) if args.workdir else None
    if secret is None and settings.jwt_secret is not None:
        secret = settings.jwt_secret.get_secret_value()
    if secret is None:
        raise UsageError("PHOTOCLUSTER_JWT_SECRET is not set (or give --workdir of `up`)")
    if args.ttl < 1:
        raise UsageError(f"--ttl {args.ttl}: a token must live at least a second")
    if args.ttl > settings.jwt_max_lifetime_s:
        raise UsageError(
            f"--ttl {args.ttl} is longer than the API accepts "
            f"(PHOTOCLUSTER_JWT_MAX_LIFETIME_S={settings.jwt_max_lifetime_s})"
        )
    claims = {"aud": settings.jwt_audience, "iss": settings.jwt_issuer}
    print(
        make_token(
            secret,
            validate_user_id(args.user),
            args.ttl,
            **{name: value for name, value in claims.items() if value},
        )
    )
    return 0


def _secret_of(workdir: Path) -> str:
    """The JWT secret a running ``photocluster up`` wrote to its folder's env.json."""
    env_file = workdir / "env.json"
    try:
        return str(json.loads(env_file.read_text())["PHOTOCLUSTER_JWT_SECRET"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"{env_file}: no secret of `photocluster up` there ({exc})") from exc


def cmd_bake_model(args: argparse.Namespace, settings: Settings) -> int:
    """Save a model's weights into a folder and calibrate its tiers there (used by the
    embedder's Dockerfile)."""
    from photocluster.embedder.bake import calibrate_baked
    from photocluster.embedder.base import model_id_of
    from photocluster.embedder.fidelity import bake_served

    dest = Path(args.dest)
    served = bake_served(args.model, dest)
    model_id = model_id_of(dest)
    calibration = None
    if not args.no_calibrate:
        calibration = calibrate_baked(
            dest, args.calibration_seeds, not args.quiet, args.calibration_subjects
        )
    print(
        json.dumps(
            {
                "model_id": model_id,
                "dest": args.dest,
                "runtime": served.runtime,
                "runtime_reason": served.reason,
                "calibration": calibration.model_dump(mode="json") if calibration else None,
            }
        )
    )
    return 0


def _seeds(text: str) -> list[int]:
    try:
        seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"seeds are integers separated by commas: {text!r}"
        ) from None
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise argparse.ArgumentTypeError(f"give distinct seeds >= 0, e.g. 0,1,2: {text!r}")
    return seeds


def cmd_backfill(args: argparse.Namespace, settings: Settings) -> int:
    """Send existing images to the ingest queue (resumable with --state-file)."""
    import boto3

    from photocluster.ingest.backfill import backfill

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


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    """Poll the ingest queue and run the ingest handler on each batch (local runs)."""
    from photocluster.local.worker import run

    logging.getLogger().setLevel(logging.INFO)
    run(settings, Path(args.ready_file) if args.ready_file else None)
    return 0


def cmd_bootstrap(args: argparse.Namespace, settings: Settings) -> int:
    """Create the bucket, queues and notification against AWS_ENDPOINT_URL (an emulator)."""
    import boto3

    from photocluster.local.aws import bootstrap

    resources = bootstrap(boto3.client("s3"), boto3.client("sqs"), settings)
    print(json.dumps(asdict(resources)))
    return 0


def register(sub: SubParsers) -> None:
    p = command(sub, "backfill", cmd_backfill, "enqueue images already in the bucket for ingest")
    p.add_argument("--bucket", required=True)
    p.add_argument("--prefix", default="uploads/")
    p.add_argument("--user", help="only this user's images")
    p.add_argument("--queue-url", help="ingest queue (default: PHOTOCLUSTER_QUEUE_URL)")
    p.add_argument("--state-file", help="resume from / record progress in this file")
    p.add_argument("--limit", type=int, help="stop after sending this many keys")
    p.add_argument("--quiet", action="store_true", help="no progress bar")

    p = command(sub, "api-serve", cmd_api_serve, "serve the cluster API (uvicorn)")
    p.add_argument("--host")
    p.add_argument("--port", type=int)

    p = command(sub, "token", cmd_token, "print a local HS256 token for a user")
    p.add_argument("--user", required=True)
    p.add_argument("--ttl", type=int, default=3600, help="seconds")
    p.add_argument(
        "--workdir", help="the folder of a running `photocluster up`: sign with its secret"
    )

    p = command(sub, "worker", cmd_worker, "poll the ingest queue (local event source mapping)")
    p.add_argument("--ready-file")

    command(sub, "bootstrap", cmd_bootstrap, "create bucket, queues and notification (emulator)")

    p = command(
        sub, "bake-model", cmd_bake_model, "save a model for offline loading, calibrate its tiers"
    )
    p.add_argument(
        "model", help="hub id, local folder, or an offline model id (efficientnet-lite0-layout)"
    )
    p.add_argument("dest")
    p.add_argument(
        "--calibration-seeds",
        type=_seeds,
        default=[0, 1, 2],
        help="generated sets the tiers are calibrated on (default: 0,1,2)",
    )
    p.add_argument(
        "--calibration-subjects",
        type=int,
        help="calibrate on at most this many subjects per set (quick builds; default: all)",
    )
    p.add_argument(
        "--no-calibrate",
        action="store_true",
        help="skip calibration: the model then runs on the uncalibrated design defaults",
    )
    p.add_argument("--quiet", action="store_true", help="no progress while calibrating")
