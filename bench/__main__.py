"""`make bench`: run every benchmark (or those named: python -m bench core api ...)."""

from __future__ import annotations

import importlib
import platform
import sys

import numpy as np

ALL = ["core", "api", "ingest", "pipeline", "encoder"]


def main() -> None:
    names = [a for a in sys.argv[1:] if not a.startswith("-")] or ALL
    print(
        f"# photocluster benchmarks on {platform.machine()}, python {platform.python_version()},"
        f" numpy {np.__version__}"
    )
    for name in names:
        importlib.import_module(f"bench.bench_{name}").main([])


if __name__ == "__main__":
    main()
