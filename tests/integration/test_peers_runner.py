"""The real peers (fastdup, imagededup PHash) on a small generated set, through the runner.

Needs the peers venv that ``make peers`` creates; ``make test`` does not create it (the
scoring side is tested without it in tests/unit/test_peers.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from photocluster.cli.quality import PEERS_PYTHON
from photocluster.quality import evalset
from photocluster.quality.evalset import read_set
from photocluster.quality.peers import run_peers, score_peers

REPO = Path(__file__).resolve().parents[2]
PYTHON = REPO / PEERS_PYTHON

pytestmark = pytest.mark.skipif(
    not PYTHON.is_file(),
    reason=f"no peers venv at {PEERS_PYTHON}: `make peers` creates it (not part of make test)",
)


def test_both_peers_run_offline_and_group_edits_of_one_picture(tmp_path: Path) -> None:
    folder = evalset.write(evalset.build(1, groups=3, per_group=4, singletons=2), tmp_path, 1)
    images = read_set(folder)
    data = run_peers(images, PYTHON, k=5)
    runs = {(run["peer"].split()[0], run["setting"]): run for run in data["runs"]}
    assert set(runs) == {
        ("fastdup", "k=5"),
        ("fastdup", "k=2, ccthreshold 0.96"),
        ("imagededup", "Hamming distance"),
    }
    n = len(images)
    assert len(runs["imagededup", "Hamming distance"]["pairs"]) == n * (n - 1) // 2
    assert len(runs["fastdup", "k=5"]["pairs"]) >= n * 5 // 2  # each image's 5 neighbours
    rows = score_peers(data, images)
    best = {r.peer.split()[0]: r.score for r in rows if r.chosen == "best F1"}
    assert best["fastdup"].f1 > 0.5 and best["fastdup"].precision > 0.9
