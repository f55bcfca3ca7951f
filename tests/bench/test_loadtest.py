"""``make loadtest`` runs end to end (small and short: what it reports, not how fast)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_load_test_reports_both_phases_without_errors(tmp_path: Path) -> None:
    out = tmp_path / "loadtest.json"
    args = f"--sizes 200 --clients 4 --duration 2 --writers 1 --workers 1 --dim 32 --json {out}"
    argv = ["make", "--no-print-directory", "-C", str(REPO), "loadtest", f"LOADTEST_ARGS={args}"]
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "within 2x: " in done.stdout and "the abusive client" in done.stdout
    (size,) = json.loads(out.read_text())["sizes"]
    assert size["n"] == 200
    quiet, abusive = size["phases"]
    assert (quiet["phase"], abusive["phase"]) == ("quiet", "abusive")
    for phase in (quiet, abusive):
        assert phase["requests"] > 0 and phase["errors"] == 0, phase
        assert phase["req_per_s"] > 0 and 0 < phase["p50_ms"] <= phase["p99_ms"]
        assert phase["writes"] > 0 and phase["writer_errors"] == 0, phase
    assert quiet["abusive"] == {}
    kinds = abusive["abusive"]
    assert kinds["clusters below floor"]["count"] > 0
    assert sum(kind["count"] for kind in kinds.values()) >= 2
    assert size["p99_ratio"] == pytest.approx(abusive["p99_ms"] / quiet["p99_ms"])
