"""Store load, clustering and top-k at N = 1,000 / 2,000 / 20,000, d = 768.

Baselines (measured here, in the same run):
* cluster: what the product started from: the whole matrix through
  ``sklearn.metrics.pairwise.cosine_similarity``, then thresholding (connected components
  of the pairs above each tier's threshold).
* load: the seed's layout, one ``.npy`` file per image read in a loop.
* top-k: ``cosine_similarity(x, X)`` then a full argsort.

Targets (issue 2): N=2,000 load + cluster <= 5 ms and >= 5x the baseline; N=20,000 <= 50 ms;
store upserts >= 5,000/s for one writer.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
from scipy.sparse.csgraph import connected_components
from sklearn.metrics.pairwise import cosine_similarity

from bench.common import Row, Timing, measure, print_table
from bench.data import library as synthetic_library
from photocluster.clustering.tiers import cluster as cluster_on_demand
from photocluster.config import Settings
from photocluster.library import Library
from photocluster.store import Store

TIERS = {"low": 0.6, "medium": 0.75, "high": 0.9}


def baseline_cluster(vectors: np.ndarray) -> list[np.ndarray]:
    sims = cosine_similarity(vectors)
    return [connected_components(sims >= t, directed=False)[1] for t in TIERS.values()]


@dataclass
class Case:
    """One library size's user, and what the steps that time it share."""

    n: int
    user: str
    ids: list[str]
    vectors: npt.NDArray[np.float32]
    settings: Settings
    writer: Library
    repeats: int
    reader: list[Library] = field(default_factory=list)  # the cold reader, new a repeat

    def fresh(self) -> Library:  # a new process's view: nothing cached in memory
        return Library.from_settings(self.settings)

    def reset(self) -> None:
        self.reader[:] = [self.fresh()]


def bench_size(n: int, root: Path, repeats: int) -> list[Row]:
    """Load, cluster, top-k and a write at ``n`` photos, each against its baseline."""
    case, build_s = seeded(n, root, repeats)
    rows = [load_row(case, seed_layout(case, root))]
    base_store = Store(root, fsync=False, cache_bytes=0)
    clustered, warm_reader = cluster_rows(case, base_store)
    rows += clustered
    rows += topk_rows(case, warm_reader, base_store)
    rows.append(write_row(case, build_s))
    return rows


def seeded(n: int, root: Path, repeats: int) -> tuple[Case, float]:
    """A user of ``n`` photos stored, and the seconds its graph took from scratch."""
    ids, vectors = synthetic_library(n)
    settings = Settings(
        store_root=root,
        model="bench",
        store_fsync=False,
        low=TIERS["low"],
        medium=TIERS["medium"],
        high=TIERS["high"],
    )
    writer = Library.from_settings(settings)
    user = f"user{n}"
    writer.store.upsert(user, "bench", ids, vectors)
    t0 = time.perf_counter()
    writer.reindex(user)
    build_s = time.perf_counter() - t0
    return Case(n, user, ids, vectors, settings, writer, repeats), build_s


def seed_layout(case: Case, root: Path) -> list[Path]:
    """The baseline's layout: one ``.npy`` file per image."""
    seed_dir = root / f"seed{case.n}"
    seed_dir.mkdir()
    for image_id, vector in zip(case.ids, case.vectors, strict=True):
        np.save(seed_dir / f"{image_id}.npy", vector)
    return sorted(seed_dir.iterdir())


def load_row(case: Case, seed_files: list[Path]) -> Row:
    repeats = case.repeats
    load = measure(lambda: case.reader[0].store.read(case.user), repeats, setup=case.reset)
    seed_load = measure(lambda: np.stack([np.load(p) for p in seed_files]), max(3, repeats // 3))
    return Row(
        f"N={case.n} load (one file, structured read)",
        load,
        seed_load,
        "baseline: one .npy per image",
    )


def cluster_rows(case: Case, base_store: Store) -> tuple[list[Row], Library]:
    """Clustering cold, warm and on demand, against the baseline; the warm reader."""
    n, user, repeats = case.n, case.user, case.repeats
    ours = measure(lambda: case.reader[0].clusters(user), repeats, setup=case.reset)
    base_repeats = 3 if n > 5000 else repeats
    base = measure(lambda: baseline_cluster(base_store.read(user).vectors), base_repeats)
    rows = [
        Row(
            f"N={n} load + cluster, 3 tiers (graph)",
            ours,
            base,
            "baseline: load + cosine_similarity + threshold",
        )
    ]
    warm_reader = case.fresh()
    warm = measure(lambda: warm_reader.clusters(user), repeats)
    rows.append(Row(f"N={n} cluster, warm container", warm, base))
    if n <= 2000:
        exact = measure(
            lambda: cluster_on_demand(case.ids, case.vectors, TIERS), max(3, repeats // 3)
        )
        rows.append(
            Row(
                f"N={n} cluster on demand (no graph)",
                exact,
                base,
                "exact fallback when the graph is stale",
            )
        )
    return rows, warm_reader


def topk_rows(case: Case, warm_reader: Library, base_store: Store) -> list[Row]:
    """Top-10 similar with the vectors cached and cold, against the baseline."""
    n, user, ids, vectors, repeats = case.n, case.user, case.ids, case.vectors, case.repeats
    query = vectors[n // 2]
    topk = measure(lambda: warm_reader.similar(user, ids[n // 2], k=10), repeats)
    base_topk = measure(
        lambda: np.argsort(-cosine_similarity(query[None], vectors)[0])[:11], repeats
    )
    cold_topk = measure(
        lambda: case.reader[0].similar(user, ids[n // 2], k=10), repeats, setup=case.reset
    )
    base_cold = measure(
        lambda: np.argsort(-cosine_similarity(query[None], base_store.read(user).vectors)[0])[:11],
        max(3, repeats // 3),
    )
    return [
        Row(
            f"N={n} top-10 similar (vectors cached)",
            topk,
            base_topk,
            "baseline: cosine_similarity + argsort",
        ),
        Row(
            f"N={n} top-10 similar (cold: load + query)",
            cold_topk,
            base_cold,
            "baseline: load + cosine_similarity + argsort",
        ),
    ]


def write_row(case: Case, build_s: float) -> Row:
    """A writer's batch of 10 new photos (store + graph update)."""
    _, extra = synthetic_library(10, seed=case.n + 1)
    counter = iter(range(10**9))

    def write_batch() -> None:
        batch = next(counter)
        case.writer.write(case.user, "bench", [f"new-{batch}-{i}" for i in range(10)], extra)

    return Row(
        f"N={case.n} writer: batch of 10 (store + graph update)",
        measure(write_batch, max(5, case.repeats // 2)),
        None,
        f"graph from scratch: {build_s:.2f} s",
    )


def bench_upserts(root: Path) -> list[Row]:
    """One writer appending 10,000 images, in batches, fsync on (as in production)."""
    rows = []
    _, vectors = synthetic_library(10_000, seed=99)
    for batch, fsync, with_graph in ((10, True, False), (100, True, False), (10, True, True)):
        settings = Settings(
            store_root=root / f"up{batch}{with_graph}", model="bench", store_fsync=fsync
        )
        lib = Library.from_settings(settings)
        start = time.perf_counter()
        for lo in range(0, len(vectors), batch):
            ids = [f"i{j}" for j in range(lo, lo + batch)]
            if with_graph:
                lib.write("u", "bench", ids, vectors[lo : lo + batch])
            else:
                lib.store.upsert("u", "bench", ids, vectors[lo : lo + batch])
        rate = len(vectors) / (time.perf_counter() - start)
        what = "writer (store + graph)" if with_graph else "store upsert"
        rows.append(
            Row(
                f"{what}, batches of {batch}, fsync",
                None,
                value=f"{rate:,.0f} images/s",
                note="0 -> 10,000 images in one user's file",
            )
        )
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,2000,20000")
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        rows: list[Row] = []
        for n in [int(x) for x in args.sizes.split(",")]:
            rows += bench_size(n, root, args.repeats if n <= 2000 else max(5, args.repeats // 3))
        print_table("store, clustering, top-k (d=768, float32)", rows)
        print_table("writer throughput", bench_upserts(root))


if __name__ == "__main__":
    main()


__all__ = ["Timing", "main"]
