"""The writer's graph update as a library grows: 10 new photos into libraries of 1,000,
10,000 and 100,000 photos shaped like real ones (``bench/scale_data.py``: topics of about
50, a few topics of thousands), wall time and CPU a photo; the baseline is building the
same library's graph from scratch (what a writer without the incremental update would do
for every batch), one run, in the same process. The update must give the groups a rebuild
gives: the benchmark checks it on its last batch.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from functools import partial

import numpy as np

from bench import scale_data
from bench.common import Row, Timing, print_table
from photocluster.calibrations import built_in
from photocluster.clustering import linkage
from photocluster.clustering.graph import GraphParams, NeighbourGraph, build_graph, update_graph
from photocluster.config import OFFLINE_MODEL, get_settings
from photocluster.ids import encode_ids
from photocluster.store.vectors import ArrayRows

BATCH = 10
#: Thresholds whose groups the two updates must agree on (the offline model's tiers span them).
CHECKED = (0.4, 0.6, 0.8)


def _timed(update: Callable[[], NeighbourGraph]) -> tuple[float, float, NeighbourGraph]:
    wall, cpu = time.perf_counter(), time.process_time()
    graph = update()
    return time.perf_counter() - wall, time.process_time() - cpu, graph


def _same_groups(a: NeighbourGraph, b: NeighbourGraph) -> bool:
    for threshold in CHECKED:
        for method in ("complete", "average"):
            x, y = a.labels(threshold, method), b.labels(threshold, method)
            if len(set(zip(x.tolist(), y.tolist(), strict=True))) != len(set(x.tolist())):
                return False
            if len(set(x.tolist())) != len(set(y.tolist())):
                return False
    return True


def bench_library(shape: str, n: int, repeats: int, params: GraphParams) -> Row:
    library = scale_data.generate(n, shape, seed=7)
    ids = encode_ids(library.ids)
    build_s, _, graph = _timed(lambda: build_graph(ids, ArrayRows(library.vectors), params))
    largest = int(np.bincount(graph.components).max())
    samples: list[tuple[float, float]] = []
    kept = np.ones(n, dtype=bool)
    for run in range(repeats):
        new = scale_data.new_photos(library, BATCH, seed=100 + run)
        vectors = ArrayRows(np.concatenate([library.vectors, new]))
        grown = encode_ids(library.ids + [f"new-{run}-{i}" for i in range(BATCH)])
        wall, cpu, updated = _timed(partial(update_graph, graph, grown, vectors, kept, BATCH))
        samples.append((wall, cpu))
    same = _same_groups(updated, build_graph(grown, vectors, params))
    cpu_ms = statistics.median(c for _, c in samples) / BATCH * 1e3
    return Row(
        f"N={n:,} {shape}: {BATCH} new photos",
        _timing([w for w, _ in samples]),
        Timing(build_s, build_s, 1),
        note=(
            f"CPU {cpu_ms:.1f} ms a photo; largest component {largest:,};"
            f" groups as a rebuild's: {'yes' if same else 'NO'}"
        ),
    )


def _timing(samples: list[float]) -> Timing:
    return Timing(statistics.median(samples), float(np.percentile(samples, 95)), len(samples))


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench graph", description=__doc__)
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--shapes", default="typical,big-topics")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--linkage-max", type=int, help="default: the setting's (2,000)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> list[Row]:
    args = parse(argv)
    floor = built_in(OFFLINE_MODEL).index_floor
    limit = args.linkage_max or get_settings().index_linkage_max
    params = GraphParams(floor=floor, linkage_max=limit)
    linkage.preload()
    rows = [
        bench_library(shape, int(n), args.repeats, params)
        for shape in args.shapes.split(",")
        for n in args.sizes.split(",")
    ]
    print_table(
        f"writer: the graph update (d={scale_data.DIM}, floor {floor}, linkage_max"
        f" {params.linkage_max}); baseline: the graph built from scratch, once",
        rows,
    )
    return rows


if __name__ == "__main__":
    main()
