"""The README's quality targets run as a person types them (`make eval`, `make calibrate`,
`make eval-peers`), on capped sets so they fit in the suite."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PEERS_PYTHON = REPO / ".tools/peers/bin/python"


def make(target: str, out: Path) -> str:
    done = subprocess.run(
        ["make", "--no-print-directory", target, f"EVAL_OUT={out}", "EVAL_SUBJECTS=2"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_make_eval_prints_every_tier_against_its_own_labels(tmp_path: Path) -> None:
    printed = make("eval", tmp_path)
    assert "images of 2 subjects (evaluation sources:" in printed
    assert "model efficientnet-lite0-layout, each tier against its own labels" in printed
    for linkage in ("complete", "single", "average"):
        for tier in ("low", "medium", "high"):
            assert f"| {linkage} | {tier} |" in printed
    assert "| burst |" in printed and "| other-time |" in printed  # recall per family
    assert "Worst false merges" in (tmp_path / "eval-errors.html").read_text()


def test_make_eval_verify_scores_every_tier_with_and_without_the_check(tmp_path: Path) -> None:
    printed = make("eval-verify", tmp_path)
    counts = re.search(
        r"(\d+) candidate pairs .*; the check accepted (\d+) as copies: precision .*; "
        r"and (\d+) as one scene",
        printed,
    )
    assert counts and int(counts[2]) + int(counts[3]) <= int(counts[1])
    rows = [line.split("|") for line in printed.splitlines() if line.startswith("| ")]
    rows = [r for r in rows if r[2].strip()[:1].isdigit()]  # not the header
    assert [r[1].strip() for r in rows] == ["low", "medium", "high"]
    for row in rows:
        for cell in row[3:5]:
            assert all(0 <= float(x) <= 1 for x in cell.split("/"))
    report = json.loads(
        subprocess.run(
            [
                str(REPO / ".venv/bin/photocluster"),
                "eval-verify",
                str(tmp_path / "evalset-3"),
                "--json",
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=900,
            env={**os.environ, "HF_HUB_OFFLINE": "1"},
        ).stdout
    )
    assert report["accepted"] == int(counts[2]) and report["scenes"] == int(counts[3])
    assert len(report["tiers"]) == 3
    assert 0 <= report["accepted_precision"] <= 1 and 0 <= report["accepted_recall"] <= 1


def test_make_calibrate_suggests_increasing_tiers_from_the_calibration_sources(
    tmp_path: Path,
) -> None:
    printed = make("calibrate", tmp_path)
    summary = json.loads(printed[printed.index("{") :])
    assert summary["model"] == "efficientnet-lite0-layout" and summary["linkage"] == "average"
    tiers = summary["suggested"]
    assert 0 < tiers["low"] < tiers["medium"] < tiers["high"] <= 1
    manifest = json.loads((tmp_path / "evalset-0" / "manifest.json").read_text())
    assert manifest["split"] == "calibration" and manifest["version"] == 2


@pytest.mark.skipif(
    not PEERS_PYTHON.exists(),
    reason="no peers venv at .tools/peers: `make peers` creates it (not part of make test)",
)
def test_make_eval_peers_prints_the_peers_rows(tmp_path: Path) -> None:
    printed = make("eval-peers", tmp_path)
    assert "| fastdup 2.54, k=10, best F1 | high |" in printed
    assert "| imagededup 0.3.3.post2 PHash, Hamming distance, best F1 | high |" in printed
