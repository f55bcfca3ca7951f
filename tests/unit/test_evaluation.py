"""The evaluation harness computes the right numbers (constructed cases, known answers)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from photocluster import cli
from photocluster.config import get_settings
from photocluster.quality import edits, evalset, scenes
from photocluster.quality.evalset import LabelledImage
from photocluster.quality.evaluation import family_recall
from photocluster.quality.metrics import TierScore, pairwise_scores
from photocluster.quality.sweep import calibrate, loosest_precise, pool


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


def sweep_of(rows: list[tuple[float, float, float]], predicted: int = 100) -> list[TierScore]:
    return [TierScore("t", t, p, r, 2 * p * r / (p + r), 0, 0, predicted, 0, 0) for t, p, r in rows]


def test_a_tier_takes_the_loosest_threshold_from_which_precision_holds() -> None:
    sweep = sweep_of(
        [
            (0.50, 0.70, 1.00),
            (0.55, 0.99, 0.99),  # a lucky threshold: precision falls again just above it
            (0.60, 0.95, 0.98),
            (0.65, 0.985, 0.95),
            (0.70, 1.00, 0.90),
            (0.75, 1.00, 0.80),
        ]
    )
    assert loosest_precise(sweep, 0.98).threshold == 0.65
    assert loosest_precise(sweep, 0.90).threshold == 0.55
    assert loosest_precise(sweep, 1.01).threshold == 0.75  # never met: the strictest
    # over a handful of predicted pairs, one false pair is noise, not a reason to go stricter
    noisy = sweep_of([(0.80, 0.99, 0.9)]) + sweep_of([(0.85, 0.8, 0.1), (0.9, 1.0, 0.05)], 5)
    assert loosest_precise(noisy, 0.98).threshold == 0.80


def test_each_tier_is_calibrated_against_its_own_labels_and_tiers_stay_apart() -> None:
    low = sweep_of([(0.40, 0.80, 1.0), (0.45, 0.88, 1.0), (0.50, 0.9, 1.0), (0.55, 0.95, 0.9)])
    medium = sweep_of([(0.40, 0.5, 1.0), (0.45, 0.9, 1.0), (0.50, 0.97, 0.9), (0.55, 1, 0.8)])
    high = sweep_of([(0.40, 0.3, 1.0), (0.45, 0.8, 1.0), (0.50, 0.99, 0.9), (0.55, 1, 0.8)])
    # medium and high both reach their floors at 0.50: medium moves one step below high
    assert calibrate({"low": low, "medium": medium, "high": high}) == {
        "low": 0.45,
        "medium": 0.49,
        "high": 0.50,
    }


def test_pooling_adds_pair_counts() -> None:
    a = [TierScore("t", 0.5, 0.5, 1.0, 0.0, 1, 2, 4, 2, 2)]
    b = [TierScore("t", 0.5, 1.0, 0.5, 0.0, 1, 2, 2, 2, 4)]
    (pooled,) = pool([a, b])
    assert (pooled.predicted_pairs, pooled.correct_pairs, pooled.true_pairs) == (6, 4, 6)
    assert pooled.precision == pytest.approx(4 / 6, abs=1e-4)
    assert pooled.recall == pytest.approx(4 / 6, abs=1e-4)


def test_the_graded_set_is_reproducible_and_labelled_at_every_tier(tmp_path: Path) -> None:
    one = evalset.write(scenes.build_graded(7, subjects=2), tmp_path / "a", 7, "evaluation")
    two = evalset.write(scenes.build_graded(7, subjects=2), tmp_path / "b", 7, "evaluation")
    files = sorted(p.relative_to(one) for p in one.rglob("*.jpg"))
    assert files and all((one / f).read_bytes() == (two / f).read_bytes() for f in files)
    images = evalset.read_set(one)
    grouped = [i for i in images if i.group is not None]
    # nesting: near-duplicates share a scene, a scene shares a subject
    for a in grouped:
        for b in grouped:
            if a.label("high") is not None and a.label("high") == b.label("high"):
                assert a.label("medium") == b.label("medium")
            if a.label("medium") == b.label("medium"):
                assert a.label("low") == b.label("low")
    kinds = {i.kind for i in images}
    assert {"original", "edit", "burst", "other-shot", "other-time"} <= kinds
    other_time = next(i for i in images if i.kind == "other-time")
    assert other_time.label("high") is None and other_time.label("low") is not None
    shot = next(i for i in images if i.kind == "other-shot")
    original = next(i for i in images if i.kind == "original" and i.group == shot.group)
    assert shot.label("medium") == original.label("medium")
    assert shot.label("high") != original.label("high")


def test_another_time_shows_the_place_not_the_shots_pixels_again() -> None:
    from PIL import Image, ImageDraw

    # detail only in the bottom-right corner, which the two shots do not show
    picture = Image.new("RGB", (400, 300), (90, 140, 200))
    ImageDraw.Draw(picture).rectangle((260, 170, 400, 300), fill=(250, 250, 250))
    ImageDraw.Draw(picture).line((260, 170, 400, 300), fill=(0, 0, 0), width=9)
    shot, other_shot = (0, 0, 250, 200), (60, 20, 300, 160)
    box = scenes._elsewhere(picture, scenes.OTHER_TIME_AREA, (shot, other_shot))
    area = (box[2] - box[0]) * (box[3] - box[1])
    assert abs(area / (400 * 300) - scenes.OTHER_TIME_AREA) < 0.01
    assert (
        max(scenes._shared(box, b) for b in (shot, other_shot)) <= area * scenes.OTHER_TIME_SHARED
    )
    assert box[0] <= 330 <= box[2] and box[1] <= 235 <= box[3]  # the detail, not flat sky
    # when every place overlaps more than allowed, the least overlapping ones still qualify
    fallback = scenes._elsewhere(picture, 0.25, ((0, 0, 400, 300),))
    assert (fallback[2] - fallback[0]) * (fallback[3] - fallback[1]) == area


def test_no_source_is_in_both_splits() -> None:
    calibration = {s.source for s in scenes.build_graded(0, "calibration", subjects=3)}
    evaluation = {s.source for s in scenes.build_graded(0, "evaluation", subjects=3)}
    assert calibration and evaluation and not calibration & evaluation


@pytest.mark.parametrize("family", sorted(edits.FAMILIES))
def test_every_edit_family_makes_an_rgb_picture_from_any_size(family: str) -> None:
    import random

    from PIL import Image

    for size in ((640, 427), (300, 500), (64, 64)):
        picture = Image.new("RGB", size, (90, 140, 200))
        edited = edits.FAMILIES[family](picture, random.Random(size[0]))
        assert edited.mode == "RGB" and min(edited.size) >= 16


def test_family_recall_counts_the_true_pairs_each_family_is_in() -> None:
    def image(name: str, duplicate: str | None, families: tuple[str, ...]) -> LabelledImage:
        labels = {"low": "s", "medium": "s/1", "high": duplicate}
        return LabelledImage(Path(name), name, "s", labels, "edit", families)

    images = [image("a", "d", ()), image("b", "d", ("crop",)), image("c", "d", ("blur",))]
    images.append(image("x", None, ("other-time",)))
    rows = {(r.family, r.tier): r for r in family_recall(images, {"high": [["a", "b"]]})}
    assert (rows["crop", "high"].true_pairs, rows["crop", "high"].found_pairs) == (2, 1)
    assert (rows["blur", "high"].true_pairs, rows["blur", "high"].found_pairs) == (2, 0)
    assert ("other-time", "high") not in rows  # not a near-duplicate of anything


def test_small_harness_run_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    get_settings.cache_clear()
    assert cli.main(["make-eval-set", str(tmp_path / "set"), "--subjects", "2"]) == 0
    assert "2 subjects" in capsys.readouterr().out
    assert (
        cli.main(["eval", str(tmp_path / "set"), "--json", "--html", str(tmp_path / "errors.html")])
        == 0
    )
    report = json.loads(capsys.readouterr().out)
    assert report["graded"] and report["n_groups"] == 2
    assert set(report["tiers"]) == {"complete", "single", "average"}  # --linkage all
    images = evalset.read_set(tmp_path / "set")
    for linkage in ("complete", "single", "average"):
        tiers = report["tiers"][linkage]
        assert [t["name"] for t in tiers] == ["low", "medium", "high"]
        for tier in tiers:
            truth = evalset.truth_at(images, tier["name"])
            assert tier["true_pairs"] == pairwise_scores([], truth)[5]
            expected = (
                tier["correct_pairs"] / tier["predicted_pairs"] if tier["predicted_pairs"] else 1.0
            )
            assert tier["precision"] == pytest.approx(expected, abs=1e-4)
        # the tiers' positives nest: each looser tier has more true pairs
        assert tiers[0]["true_pairs"] > tiers[1]["true_pairs"] > tiers[2]["true_pairs"] > 0
        assert {row["family"] for row in report["families"][linkage]} >= {"burst", "other-shot"}
        # the sweep the README reads a best F1 from: every tier, thresholds ascending
        for tier, sweep in report["sweep"][linkage].items():
            assert tier in {"low", "medium", "high"} and len(sweep) > 10
            cuts = [row["threshold"] for row in sweep]
            assert cuts == sorted(cuts) and all(0 <= row["f1"] <= 1 for row in sweep)
    assert "Worst false merges" in (tmp_path / "errors.html").read_text()
    for linkage in ("average", "complete"):
        assert cli.main(["calibrate", str(tmp_path / "set"), "--linkage", linkage]) == 0
        printed = json.loads(capsys.readouterr().out)
        assert printed["linkage"] == linkage and "high" in printed["evidence"]
        suggested = printed["suggested"]
        assert 0 < suggested["low"] < suggested["medium"] < suggested["high"] <= 1


def test_eval_of_a_missing_folder_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    get_settings.cache_clear()
    assert cli.main(["eval", "/nonexistent-eval-dir"]) == 2
    assert "no such folder" in capsys.readouterr().err
