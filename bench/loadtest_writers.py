"""The load test's writers: processes that upsert re-embedded photos into the user the
clients read, through the library, as the writer Lambda does (see :mod:`bench.loadtest`).
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

import numpy as np

from photocluster.config import Settings
from photocluster.library import Library

SECRET = "loadtest-secret-of-at-least-32-characters"  # noqa: S105 - local HS256 only
#: The store's model id, and the API's (PHOTOCLUSTER_MODEL): uncalibrated, so the tiers
#: are 0.60/0.75/0.90 and the graph's floor 0.5.
MODEL = "bench"


def settings_for(root: Path, fsync: bool = True) -> Settings:
    """The settings the API, the writers and the seeding share (fsync off to seed faster)."""
    return Settings(store_root=root, model=MODEL, store_fsync=fsync, jwt_secret=SECRET)


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
def writers(root: Path, user: str, n: int, batch: int, count: int) -> Iterator[WriterStats]:
    """``count`` writer processes running (all started) for the duration of the block, each
    upserting ``batch`` photos at a time; their totals on exit."""
    context = multiprocessing.get_context("spawn")
    stop, out = context.Event(), context.Queue()
    processes = [
        context.Process(target=writer_loop, args=(root, user, n, batch, i, stop, out))
        for i in range(count)
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
