"""`make loadtest`: the cluster API under concurrent load, while writers upsert.

For each library size N (one user per size, seeded through :class:`Library` with the
synthetic library of :mod:`bench.data`), the API runs under uvicorn (``--workers``
processes) on a free loopback port and two phases of ``--duration`` seconds each run:

* **quiet**: ``--clients`` asyncio clients (httpx, one connection each) loop
  ``GET /v1/users/{user}/clusters`` with a valid bearer token, while ``--writers``
  processes upsert batches of ``--write-batch`` vectors into the same user through the
  library, as the writer Lambda does (re-embeddings of stored photos: N stays put, records
  die and the store compacts now and then);
* **abusive**: the same, plus one more client that loops requests the others never send:
  thresholds below the graph's floor (on demand: exact and slow, or a 422 on libraries
  over ``on_demand_max_images``), the largest pages and neighbour lists, an answer listing
  every photo, and very long query strings. Its statuses are counted apart, per kind.

Printed per size: req/s, p50, p99 and errors of the normal clients in both phases, the
ratio of their p99 (abusive / quiet) and whether it stays within 2x, the writers' rate,
and the abusive client's statuses and latencies per kind. The exit status is 1 when a
normal client or a writer saw an error (a non-200 answer or an exception); a ratio over 2
is reported, not failed. The writers are :mod:`bench.loadtest_writers`, the clients
:mod:`bench.loadtest_clients`, the tables :mod:`bench.loadtest_report`.

    python -m bench.loadtest --sizes 2000,20000 --clients 32 --duration 30 --writers 4
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from bench.data import library as synthetic_library
from bench.loadtest_clients import Load, Phase, drive
from bench.loadtest_report import phase_summary, report
from bench.loadtest_writers import MODEL, SECRET, settings_for, writers
from photocluster.api.auth import make_token
from photocluster.library import Library
from photocluster.local.stack import Stack, free_port


@dataclass(frozen=True)
class Options:
    sizes: list[int]
    clients: int
    duration: float
    writers: int
    workers: int
    dim: int
    write_batch: int
    json: Path | None


def parse_args(argv: list[str] | None) -> Options:
    parser = argparse.ArgumentParser(prog="python -m bench.loadtest", description=__doc__)
    parser.add_argument("--sizes", default="2000,20000", help="library sizes, comma-separated")
    parser.add_argument("--clients", type=int, default=32, help="normal clients")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds per phase")
    parser.add_argument("--writers", type=int, default=4, help="writer processes")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--dim", type=int, default=768, help="embedding dimension")
    parser.add_argument("--write-batch", type=int, default=10, help="vectors per upsert")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    if not sizes or min(sizes) < 2 or args.clients < 1 or args.duration <= 0:
        parser.error("need sizes >= 2, clients >= 1 and a positive duration")
    if args.write_batch > min(sizes):
        parser.error("--write-batch must not exceed the smallest size")
    return Options(
        sizes, args.clients, args.duration, args.writers, args.workers, args.dim,
        args.write_batch, args.json,
    )  # fmt: skip


# ---------------------------------------------------------------------- the library


def seed(root: Path, n: int, dim: int) -> str:
    """Store a user with ``n`` photos, in batches as ingest would; save the vectors beside
    the store (``vectors-{n}.npz``) for the writers. Returns the user id."""
    user = f"load-{n}"
    ids, vectors = synthetic_library(n, dim, seed=n)
    library = Library.from_settings(settings_for(root, fsync=False))
    batch = max(500, n // 10)
    for start in range(0, n, batch):
        library.write(user, MODEL, ids[start : start + batch], vectors[start : start + batch])
    np.savez(root / f"vectors-{n}.npz", ids=np.asarray(ids), vectors=vectors)
    return user


# ---------------------------------------------------------------------- the server


@contextmanager
def api_server(workdir: Path, root: Path, workers: int) -> Iterator[str]:
    """uvicorn serving ``photocluster.api:app`` on a free port; stopped on exit."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [
        sys.executable, "-m", "uvicorn", "photocluster.api:app", "--host", "127.0.0.1",
        "--port", str(port), "--workers", str(workers), "--no-access-log",
        "--log-level", "warning",
    ]  # fmt: skip
    env = {
        "PHOTOCLUSTER_STORE_ROOT": str(root),
        "PHOTOCLUSTER_JWT_SECRET": SECRET,
        "PHOTOCLUSTER_AUTH_MODE": "jwt",
        "PHOTOCLUSTER_MODEL": MODEL,
    }
    with Stack(workdir) as stack:
        managed = stack.start("api", argv, env)
        stack.wait_ready(managed, lambda: httpx.get(f"{url}/health").status_code == 200, 120)
        yield url
        stack.check()


# ---------------------------------------------------------------------- one phase


def run_phase(url: str, root: Path, user: str, n: int, options: Options, abusive: bool) -> Phase:
    token = make_token(SECRET, user, ttl_s=3600)
    load = Load(options.clients, options.duration, options.workers)
    with writers(root, user, n, options.write_batch, options.writers) as writes:
        phase = asyncio.run(drive(url, token, user, load, abusive))
    phase.writes = writes
    return phase


def setup(options: Options) -> str:
    """What presses on the API in each phase, as the report's title says it."""
    return (
        f"{options.clients} clients x {options.duration:g} s on GET clusters, "
        f"{options.writers} writers x {options.write_batch} vectors, {options.workers} workers"
    )


# ---------------------------------------------------------------------- main


def run(options: Options, workdir: Path) -> list[dict[str, Any]]:
    root = workdir / "store"
    root.mkdir()
    users = {}
    for n in options.sizes:
        started = time.perf_counter()
        users[n] = seed(root, n, options.dim)
        print(f"seeded N={n} (dim {options.dim}) in {time.perf_counter() - started:.1f} s")
    results = []
    with api_server(workdir, root, options.workers) as url:
        for n in options.sizes:
            quiet = phase_summary(run_phase(url, root, users[n], n, options, abusive=False))
            abusive = phase_summary(run_phase(url, root, users[n], n, options, abusive=True))
            report(n, setup(options), quiet, abusive)
            ratio = abusive["p99_ms"] / quiet["p99_ms"]
            results.append(
                {"n": n, "phases": [quiet, abusive], "p99_ratio": ratio, "within_2x": ratio <= 2}
            )
    return results


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    print(
        f"# photocluster load test: sizes {options.sizes}, {options.clients} clients, "
        f"{options.duration:g} s per phase, {options.writers} writers, "
        f"{options.workers} uvicorn workers, dim {options.dim}"
    )
    with tempfile.TemporaryDirectory(prefix="photocluster-loadtest-") as tmp:
        results = run(options, Path(tmp))
    if options.json:
        summary = {"options": {**asdict(options), "json": str(options.json)}, "sizes": results}
        options.json.write_text(json.dumps(summary, indent=2))
    failed = sum(p["errors"] + p["writer_errors"] for r in results for p in r["phases"])
    if failed:
        print(f"\nFAILED: {failed} errors among the normal clients and the writers")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
