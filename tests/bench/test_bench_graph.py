"""The graph benchmark (part of ``make bench``), run as the README offers it: a row per
library, figures that mean something, and the update's groups checked against a
rebuild's."""

from __future__ import annotations

from tests.helpers.procs import run_bench


def test_python_m_bench_graph_times_updates_against_a_rebuild_and_checks_their_groups() -> None:
    flags = ["--sizes", "300,900", "--shapes", "typical,big-topics", "--repeats", "2"]
    done = run_bench("graph", *flags)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [line for line in done.stdout.splitlines() if " new photos " in line]
    assert [row.split(": ")[0] for row in rows] == [
        f"N={n} {shape}" for shape in ("typical", "big-topics") for n in ("300", "900")
    ]
    for row in rows:
        cells = row.split("  ")
        assert any(cell.strip().endswith("x") and float(cell.strip()[:-1]) > 0 for cell in cells)
        assert "groups as a rebuild's: yes" in row
        assert float(row.split("CPU ")[1].split(" ms")[0]) > 0


def test_flags_without_a_benchmark_name_are_refused_not_read_as_names() -> None:
    done = run_bench("--sizes", "300", timeout=60)
    assert done.returncode != 0 and "flags go after one benchmark's name" in done.stderr
