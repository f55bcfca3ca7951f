"""``make bench``'s pipeline benchmark runs (on a few photos: what it measures, not how
fast): the burst's rate, nothing lost, the CPU by process and by stage from the worker's
EMF records, the paced latency, on the baked runtime and on torch."""

from __future__ import annotations

from pathlib import Path

import pytest
from bench.bench_pipeline import main

from bench import pipeline_photos
from photocluster.quality import photos

pytestmark = pytest.mark.skipif(
    bool(photos.missing_packages()),
    reason=f"the photographs' packages are missing: {photos.missing_packages()} "
    "(make system-tools)",
)


def test_the_pipeline_benchmark_measures_rate_cost_and_latency(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    argv = ["--photos", "4", "--paced", "2", "--shapes", "mixed", "--runtimes", "baked", "torch"]
    baked, torch = main(argv)
    assert torch.runtime == "torch" and baked.runtime in ("onnx-int8", "onnx", "torch")
    for run in (baked, torch):
        assert run.photos == 4 and run.lost == 0 and run.rate > 0
        assert set(run.cpu_ms) == {"api", "worker", "embedder"} and run.stack_ms > 0
        for stage in ("download", "decode", "features", "embedder", "store"):
            assert run.stages[stage] > 0, stage
        assert len(run.latencies) == 2 and run.paced_rate == pytest.approx(0.8 * run.rate)
        assert set(run.beside_ms) == {"aws", "client"} and 0 < run.stack_share < 1
    out = capsys.readouterr().out
    assert "mixed, " in out and "photos/s" in out and "CPU-ms a photo, by stage" in out
    assert "vs torch" in out and "the embedder's own" in out and "p99" in out
    assert "USD per 1,000 photos" in out
    assert "beside the stack" in out and "the stack could have at most" in out


def test_the_photos_are_phone_sized_jpegs_of_each_shape_and_seeded(tmp_path: Path) -> None:
    for shape in pipeline_photos.SHAPES:
        made = pipeline_photos.make(shape, 3, seed=1, folder=tmp_path / shape)
        again = pipeline_photos.make(shape, 3, seed=1, folder=tmp_path / f"{shape}-again")
        assert [p.read_bytes() for p in made] == [p.read_bytes() for p in again]
        from PIL import Image

        for path in made:
            with Image.open(path) as image:
                assert image.format == "JPEG" and 1000 <= max(image.size) <= 4000
    with pytest.raises(ValueError, match="shape"):
        pipeline_photos.make("flattering", 1, seed=0, folder=tmp_path)
