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
