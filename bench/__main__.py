"""`make bench`: run every benchmark (or those named: python -m bench core api ...).

`python -m bench NAME --flag ...` runs one benchmark with its own flags (`python -m bench
graph --sizes 1000`). `scale` is not in the default list (it takes minutes: `make
bench-scale`)."""

from __future__ import annotations

import importlib
import platform
import sys

import numpy as np

ALL = ["core", "api", "ingest", "graph", "pipeline", "encoder"]
#: Run only when named first, and given the remaining arguments as their own flags.
ON_REQUEST = {"scale"}


def main() -> None:
    args = sys.argv[1:]
    print(
        f"# photocluster benchmarks on {platform.machine()}, python {platform.python_version()},"
        f" numpy {np.__version__}"
    )
    flagged = len(args) > 1 and args[1].startswith("-")
    if args and (args[0] in ON_REQUEST or flagged):
        importlib.import_module(f"bench.bench_{args[0]}").main(args[1:])
        return
    if any(a.startswith("-") for a in args):
        sys.exit("flags go after one benchmark's name: python -m bench NAME --flag ...")
    names = args or ALL
    for name in names:
        importlib.import_module(f"bench.bench_{name}").main([])


if __name__ == "__main__":
    main()
