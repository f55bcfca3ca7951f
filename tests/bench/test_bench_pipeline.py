"""``make bench``'s pipeline benchmark runs (on 3 photos: what it measures, not how fast)."""

from __future__ import annotations

from pathlib import Path

from bench.bench_pipeline import rows


def test_the_pipeline_benchmark_measures_upload_to_ready(tmp_path: Path) -> None:
    one_by_one, burst = rows(tmp_path, n=3, burst_n=3)
    assert one_by_one.ours is not None and burst.ours is not None
    assert one_by_one.ours.runs == burst.ours.runs == 3
    assert 0 < one_by_one.ours.median_s <= one_by_one.ours.p95_s
    assert "photos/s" in burst.note and "lost: 0 of 3" in burst.note
