"""The store under real processes: concurrent writers and a writer killed mid-append."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np

from photocluster.clustering.graph import build_graph
from photocluster.clustering.tiers import cluster_graph
from photocluster.config import Settings
from photocluster.library import Library
from photocluster.store import HEADER_SIZE, Store, record_dtype

WRITERS = 8
TOTAL_IDS = 10_000
DIM = 64
BATCH = 50


def _writer(root: str, worker: int) -> None:
    settings = Settings(store_root=Path(root), model="m")
    library = Library.from_settings(settings)  # the writer Lambda's code path: store + graph
    rng = np.random.default_rng(worker)
    mine = [f"w{worker}-{i}" for i in range(TOTAL_IDS // WRITERS)]
    for start in range(0, len(mine), BATCH):
        ids = mine[start : start + BATCH]
        keys = [f"uploads/shared-user/{i}" for i in ids]
        library.write("shared-user", "m", ids, rng.standard_normal((len(ids), DIM)), keys=keys)


def test_concurrent_writers_lose_nothing_and_duplicate_nothing(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_writer, args=(str(tmp_path), w)) for w in range(WRITERS)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(timeout=300)
        assert process.exitcode == 0

    store = Store(tmp_path)
    snap = store.read("shared-user")
    ids = snap.id_list()
    expected = {f"w{w}-{i}" for w in range(WRITERS) for i in range(TOTAL_IDS // WRITERS)}
    assert len(ids) == TOTAL_IDS
    assert len(set(ids)) == TOTAL_IDS
    assert set(ids) == expected
    assert snap.n_records == TOTAL_IDS  # no duplicate record either
    # Every image's record made it too, whole (the records share the store's lock).
    library = Library.from_settings(Settings(store_root=tmp_path, model="m"))
    records = library.records.current("shared-user")
    assert set(records) == expected
    assert all(
        r.status == "ready" and r.key == f"uploads/shared-user/{i}" for i, r in records.items()
    )

    # The graph the writers maintained incrementally equals one built from scratch.
    graph = library.graphs.fresh("shared-user", edges=True)
    assert graph is not None and graph.n == TOTAL_IDS
    rebuilt = build_graph(snap.ids, snap.vectors, graph.params)
    tiers = {"low": 0.6, "medium": 0.75, "high": 0.9}
    assert [t.groups for t in cluster_graph(graph, tiers)] == [
        t.groups for t in cluster_graph(rebuilt, tiers)
    ]


_BIG_WRITER = textwrap.dedent(
    """
    import sys
    import numpy as np
    from pathlib import Path
    from photocluster.store import Store
    store = Store(Path(sys.argv[1]), fsync=False)
    rng = np.random.default_rng(0)
    n = 200_000
    print("ready", flush=True)
    store.upsert("victim", "m", [f"big{i}" for i in range(n)], rng.standard_normal((n, 128)))
    print("finished", flush=True)
    """
)


def test_a_writer_killed_mid_batch_leaves_none_of_it_and_the_next_write_cuts_it_off(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path, fsync=False)
    rng = np.random.default_rng(1)
    store.upsert("victim", "m", ["before-1", "before-2"], rng.standard_normal((2, 128)))
    path = store.paths("victim").data
    size = record_dtype(128, "float32").itemsize
    start_size = path.stat().st_size

    process = subprocess.Popen(
        [sys.executable, "-c", _BIG_WRITER, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready"
    deadline = time.monotonic() + 120
    while path.stat().st_size < start_size + 20 * 1024 * 1024:  # well into the append
        assert process.poll() is None, "the writer finished before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.001)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL

    assert path.stat().st_size > start_size + 20 * 1024 * 1024  # tens of MB of the batch
    reader = Store(tmp_path, fsync=False)
    snap = reader.read("victim")  # readable, and none of the uncommitted batch shows
    assert snap.id_list() == ["before-1", "before-2"]

    reader.upsert("victim", "m", ["after"], rng.standard_normal((1, 128)))
    repaired = reader.read("victim")
    assert repaired.id_list() == ["before-1", "before-2", "after"]
    assert path.stat().st_size == HEADER_SIZE + 3 * size  # the batch's bytes are gone
