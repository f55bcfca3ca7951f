"""``make bench``'s other benchmarks run as ``python -m bench NAME`` runs them, on small
sizes: each prints its table, with figures, not a traceback (the API benchmark stopped at
create_app for weeks once behind-API-Gateway mode required an issuer and an audience, and
no test ran it). The encoder benchmark (about 5 minutes: every runtime's cold start) is
left to ``make bench``."""

from __future__ import annotations

import re

import pytest

from tests.helpers.procs import run_bench

# fmt_s picks the unit from the figure, so a faster machine prints another one
TIME = re.compile(r"\b\d+(\.\d+)? (s|ms|us) ")


def bench(*argv: str) -> str:
    done = run_bench(*argv)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def rows_of(table: str, *starts: str) -> list[str]:
    return [line.strip() for line in table.splitlines() if line.strip().startswith(starts)]


def test_the_api_benchmark_times_the_app_the_lambda_handler_and_the_cold_import() -> None:
    out = bench("api", "--sizes", "300", "--repeats", "3", "--imports", "2")
    rows = rows_of(out, "N=300 ", "cold import")
    assert len(rows) == 7, out
    assert any("through the Lambda handler" in row and TIME.search(row) for row in rows), out
    assert any(row.startswith("cold import") and TIME.search(row) for row in rows), out


def test_the_core_benchmark_times_clustering_and_writes() -> None:
    out = bench("core", "--sizes", "300", "--repeats", "3")
    assert rows_of(out, "store upsert", "writer (store + graph)"), out
    assert "images/s" in out


@pytest.mark.slow
def test_the_ingest_benchmark_times_each_step_of_a_photo() -> None:
    out = bench("ingest")
    for step in ("download 12 MP JPEG from S3", "single image, total", "prepare + ORB"):
        assert rows_of(out, step), out
