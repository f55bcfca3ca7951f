"""The whole stack on this machine: demo, up."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from photocluster.cli.common import SubParsers, command
from photocluster.config import Settings

if TYPE_CHECKING:
    from photocluster.local.demo import Options


def _options(args: argparse.Namespace) -> Options:
    from photocluster.local.demo import Options

    return Options(
        workdir=Path(args.workdir),
        aws_port=args.aws_port,
        api_port=args.api_port,
        embedder_port=args.embedder_port,
        aws_endpoint=args.aws_endpoint,
        timeout_s=args.timeout,
        samples=getattr(args, "samples", True),
        host=getattr(args, "host", "127.0.0.1"),
        public_url=getattr(args, "public_url", None),
        cors_origins=tuple(getattr(args, "cors_origins", None) or ()),
    )


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    """The whole pipeline on this machine: upload samples, print groups, stop."""
    from photocluster.local.demo import demo

    return demo(_options(args))


def cmd_up(args: argparse.Namespace, settings: Settings) -> int:
    """The same stack as the demo, kept running until Ctrl-C."""
    from photocluster.local.demo import up

    return up(_options(args))


def _add_local(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workdir", default=".demo", help="logs, samples, local EFS")
    parser.add_argument("--aws-port", type=int, default=4566)
    parser.add_argument("--api-port", type=int, default=8000)
    parser.add_argument("--embedder-port", type=int, default=8080)
    parser.add_argument("--aws-endpoint", help="use this running emulator instead of moto")
    parser.add_argument("--timeout", type=float, default=300.0)


def register(sub: SubParsers) -> None:
    _add_local(command(sub, "demo", cmd_demo, "run the whole pipeline locally on sample photos"))
    p = command(sub, "up", cmd_up, "run the local stack until Ctrl-C")
    _add_local(p)
    p.add_argument("--no-samples", dest="samples", action="store_false")
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="where the API and the S3 emulator listen: 0.0.0.0 to test from a phone or "
        "another machine on the network (default: this machine only)",
    )
    p.add_argument(
        "--public-url",
        metavar="URL",
        help="how a phone reaches this machine, e.g. http://192.168.1.20: upload URLs and "
        "the printed commands use it (default with --host 0.0.0.0: this machine's LAN address)",
    )
    p.add_argument(
        "--cors-origin",
        dest="cors_origins",
        action="append",
        metavar="ORIGIN",
        help="a web app's origin (e.g. http://localhost:5173) that may call the API and PUT "
        "uploads; repeat for more",
    )
