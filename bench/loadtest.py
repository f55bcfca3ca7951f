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
is reported, not failed.

    python -m bench.loadtest --sizes 2000,20000 --clients 32 --duration 30 --writers 4
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from bench.data import library as synthetic_library
from photocluster.api.auth import make_token
from photocluster.config import Settings
from photocluster.library import Library
from photocluster.local.stack import Stack, free_port

SECRET = "loadtest-secret-of-at-least-32-characters"  # noqa: S105 - local HS256 only
#: The store's model id, and the API's (PHOTOCLUSTER_MODEL): uncalibrated, so the tiers
#: are 0.60/0.75/0.90 and the graph's floor 0.5.
MODEL = "bench"
BELOW_FLOOR = 0.05
TIMEOUT_S = 60.0
ABUSIVE_GRACE_S = 30.0


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


def settings_for(root: Path, fsync: bool = True) -> Settings:
    """The settings the API, the writers and the seeding share (fsync off to seed faster)."""
    return Settings(store_root=root, model=MODEL, store_fsync=fsync, jwt_secret=SECRET)


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


# ---------------------------------------------------------------------- the writers


@dataclass
class WriterStats:
    writes: int = 0
    errors: int = 0
    first_error: str = ""
    write_s: list[float] = field(default_factory=list)


def writer_loop(
    root: Path, user: str, n: int, batch: int, index: int, stop: Event, out: Any
) -> None:
    """One writer process: upsert ``batch`` re-embedded photos at a time until ``stop``;
    puts ``None`` on ``out`` once ready, its stats when stopped."""
    data = np.load(root / f"vectors-{n}.npz")
    ids, vectors = data["ids"], data["vectors"]
    library = Library.from_settings(settings_for(root))
    rng = np.random.default_rng(1000 + index)
    stats = WriterStats()
    out.put(None)
    while not stop.is_set():
        pick = rng.choice(n, batch, replace=False)
        moved = vectors[pick] + 0.05 * rng.standard_normal(vectors[pick].shape) / np.sqrt(
            vectors.shape[1]
        )
        moved /= np.linalg.norm(moved, axis=1, keepdims=True)
        started = time.perf_counter()
        try:
            library.write(user, MODEL, [str(i) for i in ids[pick]], moved.astype(np.float32))
        except Exception as exc:  # counted and reported, the loop goes on
            stats.errors += 1
            stats.first_error = stats.first_error or f"{type(exc).__name__}: {exc}"
            continue
        stats.writes += 1
        stats.write_s.append(time.perf_counter() - started)
    out.put(asdict(stats))


@contextmanager
def writers(root: Path, user: str, n: int, options: Options) -> Iterator[WriterStats]:
    """Writer processes running (all started) for the duration of the block; their totals
    on exit."""
    context = multiprocessing.get_context("spawn")
    stop, out = context.Event(), context.Queue()
    processes = [
        context.Process(target=writer_loop, args=(root, user, n, options.write_batch, i, stop, out))
        for i in range(options.writers)
    ]
    for process in processes:
        process.start()
    for _ in processes:
        out.get(timeout=120)
    total = WriterStats()
    try:
        yield total
    finally:
        stop.set()
        for _ in processes:
            one = out.get(timeout=120)
            total.writes += one["writes"]
            total.errors += one["errors"]
            total.first_error = total.first_error or one["first_error"]
            total.write_s += one["write_s"]
        for process in processes:
            process.join(timeout=30)


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


# ---------------------------------------------------------------------- the clients


@dataclass
class Tally:
    """Latencies and outcomes of one group of requests."""

    latencies_s: list[float] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)
    last_end: float = 0.0

    def add(self, seconds: float, outcome: str) -> None:
        self.latencies_s.append(seconds)
        self.outcomes[outcome] += 1
        self.last_end = time.monotonic()

    @property
    def errors(self) -> int:
        return sum(count for outcome, count in self.outcomes.items() if outcome != "200")


async def timed_get(client: httpx.AsyncClient, path: str, tally: Tally) -> None:
    started = time.perf_counter()
    try:
        response = await client.get(path)
        outcome = str(response.status_code)
    except httpx.HTTPError as exc:
        outcome = type(exc).__name__
    tally.add(time.perf_counter() - started, outcome)


async def normal_client(
    client: httpx.AsyncClient, path: str, deadline: float, tally: Tally
) -> None:
    while time.monotonic() < deadline:
        await timed_get(client, path, tally)


def abusive_requests(user: str, image_id: str) -> dict[str, str]:
    """What the abusive client sends, by kind (looped in this order)."""
    base = f"/v1/users/{user}"
    low = BELOW_FLOOR
    return {
        "clusters below floor": f"{base}/clusters?low={low}&medium={2 * low}&high={3 * low}",
        "pairs below floor, limit 1000": f"{base}/pairs?min_score={low}&limit=1000",
        "pairs limit 1000": f"{base}/pairs?min_score=0.5&limit=1000",
        "similar k=500": f"{base}/images/{image_id}/similar?k=500",
        "clusters min_size=1 (every photo)": f"{base}/clusters?min_size=1",
        "query 10 KB (min_size x 1000)": f"{base}/clusters?" + "&".join(["min_size=2"] * 1000),
        # httpx refuses URLs over 64 KiB
        "query 60 KB (unknown parameter)": f"{base}/clusters?pad=" + "x" * 60_000,
    }


async def abusive_client(
    client: httpx.AsyncClient, requests: dict[str, str], deadline: float, tallies: dict[str, Tally]
) -> None:
    while time.monotonic() < deadline:
        for kind, path in requests.items():
            if time.monotonic() >= deadline:
                return
            await timed_get(client, path, tallies.setdefault(kind, Tally()))


# ---------------------------------------------------------------------- one phase


@dataclass
class Phase:
    name: str
    normal: Tally
    elapsed_s: float
    writes: WriterStats
    abusive: dict[str, Tally] = field(default_factory=dict)


def new_client(url: str, token: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=url,
        headers={"Authorization": f"Bearer {token}"},
        timeout=TIMEOUT_S,
        limits=httpx.Limits(max_connections=1),
    )


async def warm_up(url: str, token: str, path: str, workers: int) -> None:
    """A few concurrent requests first, so that every worker has loaded the library."""
    async with new_client(url, token) as client:
        await client.get(path)
    clients = [new_client(url, token) for _ in range(2 * workers)]
    try:
        await asyncio.gather(*(c.get(path) for c in clients for _ in range(2)))
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))


async def drive(url: str, token: str, user: str, options: Options, abusive: bool) -> Phase:
    path = f"/v1/users/{user}/clusters"
    await warm_up(url, token, path, options.workers)
    clients = [new_client(url, token) for _ in range(options.clients + 1)]
    normal = Tally()
    tallies: dict[str, Tally] = {}
    started = time.monotonic()
    deadline = started + options.duration
    tasks = [asyncio.create_task(normal_client(c, path, deadline, normal)) for c in clients[1:]]
    abuser = None
    if abusive:
        requests = abusive_requests(user, "img-000000")
        abuser = asyncio.create_task(abusive_client(clients[0], requests, deadline, tallies))
    try:
        await asyncio.gather(*tasks)
        if abuser is not None:
            await finish_abuser(abuser, deadline, tallies)
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))
    elapsed = (normal.last_end or time.monotonic()) - started
    name = "abusive" if abusive else "quiet"
    return Phase(name, normal, elapsed, WriterStats(), tallies)


async def finish_abuser(
    task: asyncio.Task[None], deadline: float, tallies: dict[str, Tally]
) -> None:
    """Let the abusive client's last request end, up to a grace period past the deadline."""
    remaining = deadline + ABUSIVE_GRACE_S - time.monotonic()
    try:
        await asyncio.wait_for(task, timeout=max(0.1, remaining))
    except TimeoutError:
        tallies.setdefault("(cut at the end of the phase)", Tally()).add(0.0, "cancelled")


def run_phase(url: str, root: Path, user: str, n: int, options: Options, abusive: bool) -> Phase:
    token = make_token(SECRET, user, ttl_s=3600)
    with writers(root, user, n, options) as writes:
        phase = asyncio.run(drive(url, token, user, options, abusive))
    phase.writes = writes
    return phase


# ---------------------------------------------------------------------- the report


def ms(samples: list[float], q: float) -> float:
    return float(np.percentile(samples, q)) * 1e3 if samples else float("nan")


def phase_summary(phase: Phase) -> dict[str, Any]:
    normal, writes = phase.normal, phase.writes
    return {
        "phase": phase.name,
        "requests": len(normal.latencies_s),
        "req_per_s": len(normal.latencies_s) / phase.elapsed_s if phase.elapsed_s else 0.0,
        "p50_ms": ms(normal.latencies_s, 50),
        "p99_ms": ms(normal.latencies_s, 99),
        "max_ms": ms(normal.latencies_s, 100),
        "errors": normal.errors,
        "error_kinds": {k: v for k, v in normal.outcomes.items() if k != "200"},
        "writes": writes.writes,
        "writes_per_s": writes.writes / phase.elapsed_s if phase.elapsed_s else 0.0,
        "write_p50_ms": ms(writes.write_s, 50),
        "writer_errors": writes.errors,
        "writer_first_error": writes.first_error,
        "abusive": {
            kind: {
                "count": len(t.latencies_s),
                "statuses": dict(t.outcomes),
                "p50_ms": ms(t.latencies_s, 50),
                "max_ms": ms(t.latencies_s, 100),
            }
            for kind, t in phase.abusive.items()
        },
    }


def print_rows(title: str, header: tuple[str, ...], lines: Sequence[tuple[str, ...]]) -> None:
    """A table in bench.common's layout: a title, left-aligned columns, a rule."""
    widths = [max(len(x) for x in col) for col in zip(header, *lines, strict=True)]
    print(f"\n## {title}")
    for line in [header, tuple("-" * w for w in widths), *lines]:
        print("  ".join(x.ljust(w) for x, w in zip(line, widths, strict=True)).rstrip())


def phase_line(s: dict[str, Any]) -> tuple[str, ...]:
    errors = str(s["errors"]) + (f" {s['error_kinds']}" if s["errors"] else "")
    writer_errors = f" ({s['writer_errors']} errors)" if s["writer_errors"] else ""
    return (
        s["phase"], str(s["requests"]), f"{s['req_per_s']:.1f}", f"{s['p50_ms']:.1f} ms",
        f"{s['p99_ms']:.1f} ms", f"{s['max_ms']:.1f} ms", errors,
        f"{s['writes_per_s']:.1f}{writer_errors}",
    )  # fmt: skip


def report(n: int, options: Options, quiet: dict[str, Any], abusive: dict[str, Any]) -> None:
    header = ("phase", "requests", "req/s", "p50", "p99", "max", "errors", "writes/s")
    lines = [phase_line(quiet), phase_line(abusive)]
    print_rows(
        f"N={n}: {options.clients} clients x {options.duration:g} s on GET clusters, "
        f"{options.writers} writers x {options.write_batch} vectors, {options.workers} workers",
        header,
        lines,
    )
    ratio = abusive["p99_ms"] / quiet["p99_ms"]
    print(f"p99 abusive / quiet: {ratio:.2f}  within 2x: {'yes' if ratio <= 2 else 'no'}")
    kinds = [
        (kind, str(a["count"]), json.dumps(a["statuses"]), f"{a['p50_ms']:.1f} ms",
         f"{a['max_ms']:.1f} ms")
        for kind, a in abusive["abusive"].items()
    ]  # fmt: skip
    print_rows(f"N={n}: the abusive client", ("request", "sent", "statuses", "p50", "max"), kinds)
    for s in (quiet, abusive):
        if s["writer_first_error"]:
            print(f"writer error ({s['phase']}): {s['writer_first_error']}")


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
            report(n, options, quiet, abusive)
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
