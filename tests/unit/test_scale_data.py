"""The scale benchmark's library generator: its shape, its cosines, its seed."""

from __future__ import annotations

import numpy as np
import pytest
from bench.scale_data import DIM, ScaleLibrary, generate, measure_cosines


@pytest.fixture(scope="module")
def typical() -> ScaleLibrary:
    return generate(3000, "typical")


def test_vectors_are_unit_float32_of_the_default_models_dimension(typical: ScaleLibrary) -> None:
    from photocluster.config import OFFLINE_MODEL
    from photocluster.embedder.efficientnet import vector_dim

    assert vector_dim(OFFLINE_MODEL) == DIM
    assert typical.vectors.shape == (3000, DIM) and typical.vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(typical.vectors, axis=1), 1.0, atol=1e-5)


def test_ids_are_numbered_like_img_000123(typical: ScaleLibrary) -> None:
    assert typical.ids[:2] == ["img-000000", "img-000001"] and typical.ids[-1] == "img-002999"


def test_the_same_seed_gives_the_same_library_and_another_seed_another() -> None:
    first, again, other = generate(500, seed=4), generate(500, seed=4), generate(500, seed=5)
    np.testing.assert_array_equal(first.vectors, again.vectors)
    np.testing.assert_array_equal(first.topic, again.topic)
    assert not np.array_equal(first.vectors, other.vectors)


def test_burst_members_score_above_0_9(typical: ScaleLibrary) -> None:
    burst, vectors = typical.burst, typical.vectors
    consecutive = (burst[:-1] == burst[1:]) & (burst[:-1] >= 0)
    scores = np.einsum("ij,ij->i", vectors[:-1][consecutive], vectors[1:][consecutive])
    assert consecutive.sum() > 100 and scores.min() > 0.9
    assert measure_cosines(typical)["same burst"][0] > 0.9


def test_shots_of_one_topic_score_about_0_45_and_other_topics_below_the_floor(
    typical: ScaleLibrary,
) -> None:
    cosines = measure_cosines(typical)
    p5, median, p95 = cosines["same topic, different shots"]
    assert 0.42 <= median <= 0.48 and p5 > 0.35 and p95 < 0.52
    assert cosines["different topics"][2] < 0.2  # the model's graph floor is 0.33


@pytest.mark.parametrize(
    ("shape", "largest", "in_bursts"),
    [
        ("typical", (1000, 1600), 0.2),
        ("big-topics", (3000, 4000), 0.2),
        ("bursty", (1000, 1600), 0.6),
    ],
)
def test_each_shape_has_its_big_topics_and_burst_share(
    shape: str, largest: tuple[int, int], in_bursts: float
) -> None:
    library = generate(20_000, shape, dim=8)
    sizes = np.bincount(library.topic)
    assert largest[0] <= sizes.max() <= largest[1]
    assert 45 <= np.median(sizes) <= 55  # ordinary topics of about 50
    assert (library.burst >= 0).mean() == pytest.approx(in_bursts, abs=0.02)
