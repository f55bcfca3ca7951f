"""The ``photocluster`` command.

Each sub-command imports what it needs when it runs, so ``photocluster clusters`` never
loads torch. Errors the user can fix print one line and exit 2; the store is untouched.
Sub-commands live by area: :mod:`~photocluster.cli.library`,
:mod:`~photocluster.cli.quality`, :mod:`~photocluster.cli.services`,
:mod:`~photocluster.cli.local`, :mod:`~photocluster.cli.deploy`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from photocluster.cli import deploy, library, local, quality, services
from photocluster.cli.common import UsageError
from photocluster.config import get_settings
from photocluster.errors import PhotoclusterError

#: Sub-command modules, in the order ``photocluster --help`` lists them.
AREAS = (library, services, quality, local, deploy)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="photocluster", description=__doc__.split("\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for area in AREAS:
        area.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.handler(args, get_settings()))
    except (UsageError, PhotoclusterError, OSError) as exc:
        print(f"photocluster {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"photocluster {args.command}: interrupted", file=sys.stderr)
        return 130
