"""Scoring the peers: groups from their pairs, per-tier truth, the table (no peers venv)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from photocluster import cli
from photocluster.config import get_settings
from photocluster.quality import evalset
from photocluster.quality.evalset import LabelledImage, read_set
from photocluster.quality.peers import (
    PeerOutputError,
    format_peers,
    groups_at,
    score_peers,
    truth_by_tier,
)


def six_images(root: Path) -> list[LabelledImage]:
    """i0..i3: one subject; i0+i1 and i2+i3 two scenes; only i0+i1 near-duplicates."""
    high = ["d", "d", None, None, None, None]
    medium = ["s1", "s1", "s2", "s2", None, None]
    low = ["a", "a", "a", "a", None, None]
    return [
        LabelledImage(
            root / f"i{n}.jpg", f"i{n}", low[n], {"low": low[n], "medium": medium[n], "high": h}
        )
        for n, h in enumerate(high)
    ]


def pairs_file(images: list[Any], *runs: dict[str, Any]) -> dict[str, Any]:
    return {"images": [str(item.path.resolve()) for item in images], "runs": list(runs)}


SIMILARITY_RUN = {
    "peer": "tool 1.0",
    "setting": "k=10",
    "measure": "similarity",
    "pairs": [[0, 1, 0.95], [2, 3, 0.85], [1, 2, 0.70], [4, 5, 0.50]],
    "sweep": True,
    "default": None,
}
DISTANCE_RUN = {
    "peer": "hash 2.0",
    "setting": "Hamming distance",
    "measure": "distance",
    "pairs": [[0, 1, 3], [2, 3, 12], [1, 2, 20]],
    "sweep": True,
    "default": 10,
}


def rows_by(rows: list[Any]) -> dict[tuple[str, str, str], Any]:
    return {(r.peer, r.chosen, r.score.name): r.score for r in rows}


def test_truth_falls_back_to_the_group_for_every_tier() -> None:
    images = [LabelledImage(Path("a.jpg"), "a", "g"), LabelledImage(Path("b.jpg"), "b", None)]
    assert truth_by_tier(images) == {t: {"a": "g", "b": None} for t in ("low", "medium", "high")}


def test_truth_uses_each_tiers_own_labels(tmp_path: Path) -> None:
    truth = truth_by_tier(six_images(tmp_path))
    assert truth["high"]["i2"] is None and truth["medium"]["i2"] == "s2"
    assert truth["low"]["i2"] == "a"


def test_groups_are_components_of_the_pairs_that_pass(tmp_path: Path) -> None:
    data = pairs_file(six_images(tmp_path), SIMILARITY_RUN)
    from photocluster.quality.peers import _parse_run

    run = _parse_run(data["runs"][0], 6)
    assert groups_at(run, 0.96, 6) == []
    assert groups_at(run, 0.75, 6) == [[0, 1], [2, 3]]
    assert sorted(groups_at(run, 0.5, 6)) == [[0, 1, 2, 3], [4, 5]]


def test_a_distance_passes_at_or_below_the_cut(tmp_path: Path) -> None:
    from photocluster.quality.peers import _parse_run

    run = _parse_run(DISTANCE_RUN, 6)
    assert groups_at(run, 3, 6) == [[0, 1]]
    assert groups_at(run, 2, 6) == []


def test_best_f1_is_found_per_tier_against_that_tiers_labels(tmp_path: Path) -> None:
    images = six_images(tmp_path)
    scores = rows_by(score_peers(pairs_file(images, SIMILARITY_RUN), images))
    # the first threshold of each tier's perfect plateau
    assert scores["tool 1.0", "best F1", "high"].threshold == 0.86
    assert scores["tool 1.0", "best F1", "medium"].threshold == 0.71
    assert scores["tool 1.0", "best F1", "low"].threshold == 0.51
    assert all(s.f1 == 1.0 for s in scores.values())
    assert not any(chosen == "defaults" for _, chosen, _ in scores)


def test_defaults_score_the_tools_own_groups_when_it_gives_them(tmp_path: Path) -> None:
    images = six_images(tmp_path)
    own = {**SIMILARITY_RUN, "sweep": False, "default": 0.96, "groups": [[0, 1, 2]]}
    scores = rows_by(score_peers(pairs_file(images, own), images))
    assert set(scores) == {("tool 1.0", "defaults", t) for t in ("low", "medium", "high")}
    # {i0, i1, i2}: 3 predicted pairs; high: 1 right of 1; low: 3 right of 6
    assert (
        scores["tool 1.0", "defaults", "high"].precision,
        scores["tool 1.0", "defaults", "high"].recall,
    ) == (pytest.approx(1 / 3, abs=1e-4), 1.0)
    assert scores["tool 1.0", "defaults", "low"].recall == 0.5


def test_defaults_without_groups_cut_the_pairs_at_the_default(tmp_path: Path) -> None:
    images = six_images(tmp_path)
    scores = rows_by(score_peers(pairs_file(images, DISTANCE_RUN), images))
    at_default = scores["hash 2.0", "defaults", "medium"]
    assert at_default.threshold == 10 and at_default.precision == 1.0
    assert at_default.recall == 0.5  # (i0, i1) found, (i2, i3) at distance 12 missed
    assert scores["hash 2.0", "best F1", "medium"].threshold == 12


def test_the_table_has_evals_columns_and_says_which_way_the_cut_goes(tmp_path: Path) -> None:
    images = six_images(tmp_path)
    rows = score_peers(pairs_file(images, SIMILARITY_RUN, DISTANCE_RUN), images)
    table = format_peers(rows, "set").splitlines()
    assert table[2] == "| peer | tier | threshold | precision | recall | F1 | groups | largest |"
    assert "| tool 1.0, k=10, best F1 | high | >= 0.86 | 1.000 | 1.000 | 1.000 | 1 | 2 |" in table
    row = "| hash 2.0, Hamming distance, defaults | high | <= 10 | 1.000 | 1.000 | 1.000 | 1 | 2 |"
    assert row in table


def test_pairs_for_another_set_are_refused(tmp_path: Path) -> None:
    images = six_images(tmp_path)
    data = pairs_file(images[:5], SIMILARITY_RUN)
    with pytest.raises(PeerOutputError, match="another set"):
        score_peers(data, images)


@pytest.mark.parametrize("data", [[], {"runs": []}, {"images": [], "runs": {}}])
def test_what_is_not_a_runner_output_is_refused(tmp_path: Path, data: Any) -> None:
    with pytest.raises(PeerOutputError, match="not a peers_runner output"):
        score_peers(data, six_images(tmp_path))


@pytest.mark.parametrize(
    "broken",
    [
        {"measure": "cosine"},
        {"pairs": [[0, 9, 0.9]]},
        {"pairs": [[0, 1]]},
        {"groups": [[0, 6]]},
    ],
)
def test_a_malformed_run_is_refused(tmp_path: Path, broken: dict[str, Any]) -> None:
    images = six_images(tmp_path)
    with pytest.raises(PeerOutputError, match="malformed"):
        score_peers(pairs_file(images, {**SIMILARITY_RUN, **broken}), images)


@pytest.fixture
def small_set(tmp_path: Path) -> Path:
    return evalset.write(evalset.build(5, groups=2, per_group=3, singletons=1), tmp_path / "s", 5)


def test_eval_peers_scores_a_saved_pairs_file(
    small_set: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    images = read_set(small_set)
    members = ([n for n, i in enumerate(images) if i.group == g] for g in ("astronaut", "coffee"))
    first, second = members
    run = {**SIMILARITY_RUN, "pairs": [[first[0], first[1], 0.9], [second[0], second[2], 0.8]]}
    saved = tmp_path / "pairs.json"
    saved.write_text(json.dumps(pairs_file(images, run)))
    get_settings.cache_clear()
    assert cli.main(["eval-peers", str(small_set), "--from-pairs", str(saved)]) == 0
    table = capsys.readouterr().out
    # 2 groups of 3: 6 true pairs, 2 found at 0.80
    assert "| tool 1.0, k=10, best F1 | low | >= 0.30 | 1.000 | 0.333 | 0.500 | 2 | 2 |" in table


def test_eval_peers_without_the_peers_venv_says_how_to_make_it(
    small_set: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    get_settings.cache_clear()
    code = cli.main(["eval-peers", str(small_set), "--python", str(tmp_path / "no" / "python")])
    assert code == 2
    assert "make peers" in capsys.readouterr().err


def test_eval_peers_refuses_a_file_that_is_not_json(
    small_set: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "junk.json").write_text("{not json")
    get_settings.cache_clear()
    code = cli.main(["eval-peers", str(small_set), "--from-pairs", str(tmp_path / "junk.json")])
    assert code == 2
    assert "not JSON" in capsys.readouterr().err


def test_a_runner_that_fails_is_reported_with_what_it_said(
    small_set: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # this venv's python runs the runner for real, but has no fastdup to import
    get_settings.cache_clear()
    assert cli.main(["eval-peers", str(small_set), "--python", sys.executable]) == 2
    error = capsys.readouterr().err
    assert "the peers runner failed (exit 1)" in error and "fastdup" in error


def test_eval_peers_refuses_k_below_one(
    small_set: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    get_settings.cache_clear()
    assert cli.main(["eval-peers", str(small_set), "--k", "0"]) == 2
    assert "--k 0" in capsys.readouterr().err
