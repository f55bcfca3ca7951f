"""The evaluation harness computes the right numbers (constructed cases, known answers)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from photocluster import cli
from photocluster.config import get_settings
from photocluster.quality import evalset
from photocluster.quality.calibration import calibrate, pool
from photocluster.quality.metrics import TierScore, pairwise_scores


def test_pairwise_scores_on_a_known_case() -> None:
    truth = {"a1": "A", "a2": "A", "a3": "A", "b1": "B", "b2": "B", "s1": None, "s2": None}
    # predicted: {a1,a2,s1} and {b1,b2}: 3 + 1 predicted pairs; correct: (a1,a2), (b1,b2)
    # true pairs: 3 in A + 1 in B = 4
    precision, recall, f1, predicted, correct, true = pairwise_scores(
        [["a1", "a2", "s1"], ["b1", "b2"]], truth
    )
    assert (predicted, correct, true) == (4, 2, 4)
    assert precision == pytest.approx(0.5) and recall == pytest.approx(0.5)
    assert f1 == pytest.approx(0.5)


def test_nothing_grouped_is_vacuously_precise_and_recalls_nothing() -> None:
    precision, recall, _, predicted, _, true = pairwise_scores([], {"a": "A", "b": "A"})
    assert (precision, recall, predicted, true) == (1.0, 0.0, 0, 1)


def test_singletons_never_form_a_true_pair() -> None:
    precision, *_ = pairwise_scores([["s1", "s2"]], {"s1": None, "s2": None})
    assert precision == 0.0


def sweep_of(rows: list[tuple[float, float, float]]) -> list[TierScore]:
    return [TierScore("t", t, p, r, 2 * p * r / (p + r), 0, 0, 0, 0, 0) for t, p, r in rows]


def test_calibration_rules() -> None:
    sweep = sweep_of(
        [
            (0.40, 0.70, 1.00),
            (0.45, 0.86, 1.00),
            (0.50, 0.95, 0.99),
            (0.55, 0.99, 0.98),
            (0.60, 0.99, 0.98),
            (0.65, 1.00, 0.90),
            (0.70, 1.00, 0.86),
            (0.75, 1.00, 0.80),
        ]
    )
    # high: strictest with P >= .95 and R >= .85 -> 0.70; medium: middle of the best-F1
    # plateau (0.55, 0.60) -> 0.60; low: loosest with P >= .85 -> 0.45
    assert calibrate(sweep) == {"low": 0.45, "medium": 0.60, "high": 0.70}


def test_pooling_adds_pair_counts() -> None:
    a = [TierScore("t", 0.5, 0.5, 1.0, 0.0, 1, 2, 4, 2, 2)]
    b = [TierScore("t", 0.5, 1.0, 0.5, 0.0, 1, 2, 2, 2, 4)]
    (pooled,) = pool([a, b])
    assert (pooled.predicted_pairs, pooled.correct_pairs, pooled.true_pairs) == (6, 4, 6)
    assert pooled.precision == pytest.approx(4 / 6, abs=1e-4)
    assert pooled.recall == pytest.approx(4 / 6, abs=1e-4)


def test_the_set_is_reproducible(tmp_path: Path) -> None:
    one = evalset.write(evalset.build(7, groups=2, per_group=3, singletons=1), tmp_path / "a", 7)
    two = evalset.write(evalset.build(7, groups=2, per_group=3, singletons=1), tmp_path / "b", 7)
    files = sorted(p.relative_to(one) for p in one.rglob("*.jpg"))
    assert len(files) == 7
    assert all((one / f).read_bytes() == (two / f).read_bytes() for f in files)


def test_small_harness_run_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    get_settings.cache_clear()
    assert (
        cli.main(
            [
                "make-eval-set",
                str(tmp_path / "set"),
                "--groups",
                "3",
                "--per-group",
                "3",
                "--singletons",
                "2",
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert (
        cli.main(["eval", str(tmp_path / "set"), "--json", "--html", str(tmp_path / "errors.html")])
        == 0
    )
    report = json.loads(capsys.readouterr().out)
    assert report["n_images"] == 11 and report["n_groups"] == 3 and report["n_singletons"] == 2
    assert set(report["tiers"]) == {"complete", "single", "average"}  # --linkage all
    for linkage in ("complete", "single", "average"):
        tiers = report["tiers"][linkage]
        assert [t["name"] for t in tiers] == ["low", "medium", "high"]
        for tier in tiers:
            assert tier["true_pairs"] == 9  # 3 groups of 3
            expected = (
                tier["correct_pairs"] / tier["predicted_pairs"] if tier["predicted_pairs"] else 1.0
            )
            assert tier["precision"] == pytest.approx(expected, abs=1e-4)
            assert tier["recall"] == pytest.approx(tier["correct_pairs"] / 9, abs=1e-4)
    assert "Worst false merges" in (tmp_path / "errors.html").read_text()


def test_eval_of_a_missing_folder_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    get_settings.cache_clear()
    assert cli.main(["eval", "/nonexistent-eval-dir"]) == 2
    assert "no such folder" in capsys.readouterr().err
