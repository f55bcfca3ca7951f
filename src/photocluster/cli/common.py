"""What every sub-command module shares: the usage error, the library, threshold flags."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from photocluster.config import LINKAGES, Settings

if TYPE_CHECKING:
    from photocluster.library import Library

Handler = Callable[[argparse.Namespace, Settings], int]
#: What ``add_subparsers`` returns (argparse does not name the type publicly).
SubParsers = Any


class UsageError(Exception):
    """A problem with the command's input, reported as one line."""


def library(settings: Settings) -> Library:
    """The library as configured (imported here: most commands never need it)."""
    from photocluster.library import Library

    return Library.from_settings(settings)


def add_thresholds(parser: argparse.ArgumentParser, linkage: bool = True) -> None:
    """``--low``, ``--medium``, ``--high`` (default: the model's) and ``--linkage``."""
    for tier in ("low", "medium", "high"):
        parser.add_argument(
            f"--{tier}",
            type=float,
            default=None,
            help=f"{tier} tier threshold in (0, 1] (default: the model's)",
        )
    if linkage:
        parser.add_argument(
            "--linkage", choices=LINKAGES, default=None, help="default PHOTOCLUSTER_LINKAGE"
        )


def command(sub: SubParsers, name: str, handler: Handler, summary: str) -> argparse.ArgumentParser:
    """A sub-command that runs ``handler``; ``summary`` is its line in ``--help``."""
    parser: argparse.ArgumentParser = sub.add_parser(name, help=summary)
    parser.set_defaults(handler=handler)
    return parser
