"""`make bench-scale` as a person types it, on libraries of 300 photos: a table row for every
route of every shape, positive figures, and the JSON with every route (issue 28)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from bench.bench_scale import BASELINES, ROUTES

REPO = Path(__file__).resolve().parents[2]
SHAPES = ("typical", "big-topics")
N = 300

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, Any]]:
    out = tmp_path_factory.mktemp("bench-scale")
    args = f"--sizes {N} --shapes {','.join(SHAPES)} --repeats 2 --json {out / 'scale.json'}"
    done = subprocess.run(
        ["make", "--no-print-directory", "bench-scale", f"BENCH_SCALE_ARGS={args}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout, json.loads((out / "scale.json").read_text())


def rows(printed: str, shape: str) -> dict[str, list[str]]:
    """The rows of one shape's table: case -> its other columns."""
    table = printed.split(f"## {shape}:")[1].split("\n## ")[0].split("\n----")[1]
    lines = [line for line in table.splitlines()[1:] if line.strip()]
    return {cells[0]: cells[1:] for cells in (re.split(r"\s{2,}", line) for line in lines)}


def seconds(text: str) -> float:
    value, unit = text.split()
    return float(value) * {"us": 1e-6, "ms": 1e-3, "s": 1.0}[unit]


def test_the_table_has_first_and_warm_rows_for_every_route_of_every_shape(
    run: tuple[str, dict[str, Any]],
) -> None:
    printed, _ = run
    for shape in SHAPES:
        cases = rows(printed, shape)
        assert f"N={N} import-embeddings (whole process)" in cases
        for route in ROUTES:
            assert f"N={N} {route}: first call, new process" in cases
            assert f"N={N} {route}: warm, 2 calls" in cases
        assert f"N={N} writer: 1 new photo, new process (runs: 1)" in cases


def test_every_printed_time_and_peak_rss_is_positive(run: tuple[str, dict[str, Any]]) -> None:
    printed, _ = run
    for shape in SHAPES:
        for case, cells in rows(printed, shape).items():
            assert seconds(cells[0]) > 0, case
            rss = [cell for cell in cells if cell.endswith(" MB")]
            assert rss and all(float(cell.split()[0]) > 0 for cell in rss), case


def test_the_json_has_every_route_and_baseline_of_every_shape(
    run: tuple[str, dict[str, Any]],
) -> None:
    _, results = run
    assert set(results["shapes"]) == set(SHAPES)
    for shape in SHAPES:
        figures = results["shapes"][shape]["sizes"][str(N)]
        assert set(figures["routes"]) == set(ROUTES)
        assert set(figures["baselines"]) == set(BASELINES)
        for route in figures["routes"].values():
            assert route["first"]["latency_s"] > 0 and route["first"]["maxrss"] > 0
            assert 0 < route["warm"]["median_s"] <= route["warm"]["p95_s"]
            assert route["first"]["rchar"] > 0  # the first call reads the user's files
        assert figures["import"]["wall_s"] > 0 and figures["import"]["cli"]["n_images"] == N
        assert {"1 library", "1 new user", "10 library", "10 new user"} == set(figures["writer"])
