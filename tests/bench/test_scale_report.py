"""``make bench-scale``'s table marks each figure against issue 28's targets."""

from __future__ import annotations

from typing import Any

from bench.bench_scale import BASELINES, ROUTES
from bench.scale_report import table

MB = 10**6


def measured(warm_s: float, first_s: float, rss: int, writer_s: float) -> dict[str, Any]:
    """One library's figures, every route alike; a brand-new user writes in 0.1 s."""
    call = {"latency_s": first_s, "rchar": 1000, "faults": 10, "maxrss": rss}
    route = {
        "first": call | {"import_and_app_s": 0.5},
        "warm": {
            "median_s": warm_s,
            "p95_s": warm_s,
            "rchar": 0,
            "faults": 0,
            "maxrss": rss,
            "runs": 3,
        },
    }
    writes = {
        "median_s": writer_s,
        "p95_s": writer_s,
        "rchar": 0,
        "maxrss": rss,
        "process_s": 1.0,
        "runs": 3,
    }
    fresh = writes | {"median_s": 0.1}
    return {
        "import": {"wall_s": 60.0, "maxrss": 900 * MB, "rchar": 600 * MB},
        "routes": dict.fromkeys(ROUTES, route),
        "baselines": {name: {"skipped": "too big"} for name in BASELINES},
        "writer": {
            "1 library": writes,
            "1 new user": fresh,
            "10 library": writes,
            "10 new user": fresh,
        },
    }


def targets(lines: list[Any], case: str) -> str:
    return next(line.target for line in lines if line.case == case)


def test_figures_within_the_targets_at_100k_are_marked_met() -> None:
    lines = table({100_000: measured(0.02, 0.2, 300 * MB, 0.3)})
    assert targets(lines, "N=100,000 GET stats: warm, 3 calls") == "<= 50 ms: met; <= 400 MB: met"
    assert (
        targets(lines, "N=100,000 import-embeddings (whole process)")
        == "<= 120 s: met; <= 1 GB: met"
    )
    assert "+0.3 s: met" in targets(lines, "N=100,000 writer: 1 new photo, new process (runs: 3)")


def test_figures_past_the_targets_at_100k_are_marked_miss() -> None:
    lines = table({100_000: measured(0.08, 0.5, 600 * MB, 0.5)})
    assert (
        targets(lines, "N=100,000 GET clusters: warm, 3 calls") == "<= 50 ms: MISS; <= 400 MB: MISS"
    )
    first = targets(lines, "N=100,000 GET clusters: first call, new process")
    assert first == "<= 300 ms: MISS; <= 400 MB: MISS"
    assert "+0.3 s: MISS" in targets(lines, "N=100,000 writer: 1 new photo, new process (runs: 3)")


def test_only_get_clusters_has_a_target_at_2000_and_none_elsewhere() -> None:
    lines = table({2000: measured(0.004, 0.2, 300 * MB, 0.3), 20_000: measured(1, 1, 10**10, 9)})
    assert targets(lines, "N=2,000 GET clusters: warm, 3 calls") == "<= 5 ms: met"
    assert [line.case for line in lines if line.target] == ["N=2,000 GET clusters: warm, 3 calls"]


def test_a_delete_is_held_to_the_writers_targets() -> None:
    lines = table({100_000: measured(0.2, 0.25, 450 * MB, 0.3)})
    warm = targets(lines, "N=100,000 DELETE images/{id}: warm, 3 calls")
    assert warm == "<= 0.3 s: met; <= 512 MB: met"
    assert targets(lines, "N=100,000 GET pairs: warm, 3 calls") == "<= 50 ms: MISS; <= 400 MB: MISS"
