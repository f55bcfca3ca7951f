"""The layout descriptor fused into the offline encoder's vectors: it keeps what an edit
keeps (JPEG, colour) and tells another framing of the scene apart."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageEnhance, ImageOps
from skimage import data as skdata

from photocluster.embedder.layout import LAYOUT_DIM, fuse, layout_vectors

PHOTOS = ("coffee", "astronaut", "chelsea")


def photo(name: str) -> Image.Image:
    return Image.fromarray(getattr(skdata, name)()).convert("RGB")


def reencoded(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def similarity(a: Image.Image, b: Image.Image) -> float:
    first, second = layout_vectors([a, b])
    return float(first @ second)


def test_descriptors_are_unit_vectors_of_signs() -> None:
    vectors = layout_vectors([photo(name) for name in PHOTOS])
    assert vectors.shape == (len(PHOTOS), LAYOUT_DIM) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(np.abs(vectors), 1 / np.sqrt(LAYOUT_DIM), rtol=1e-6)


@pytest.mark.parametrize("name", PHOTOS)
def test_heavy_jpeg_and_colour_changes_keep_the_layout(name: str) -> None:
    image = photo(name)
    assert similarity(image, reencoded(image, quality=10)) >= 0.9
    assert similarity(image, ImageOps.grayscale(image).convert("RGB")) >= 0.9
    assert similarity(image, ImageEnhance.Color(image).enhance(1.8)) >= 0.9


@pytest.mark.parametrize("name", PHOTOS)
def test_a_shifted_viewpoint_changes_the_layout(name: str) -> None:
    image = photo(name)
    width, height = image.size
    shifted = image.crop((width // 5, height // 8, width, height)).resize(image.size)
    assert similarity(image, shifted) <= 0.3


def test_different_photos_have_unrelated_layouts() -> None:
    vectors = layout_vectors([photo(name) for name in PHOTOS])
    off_diagonal = (vectors @ vectors.T)[~np.eye(len(PHOTOS), dtype=bool)]
    assert np.abs(off_diagonal).max() <= 0.3


def test_fused_cosine_is_the_weighted_sum_of_both_cosines() -> None:
    rng = np.random.default_rng(7)
    features = rng.normal(size=(2, 16)).astype(np.float32)
    features /= np.linalg.norm(features, axis=1, keepdims=True)
    layout = layout_vectors([photo("coffee"), photo("astronaut")])
    fused = fuse(features, layout, 0.45)
    np.testing.assert_allclose(np.linalg.norm(fused, axis=1), 1.0, atol=1e-6)
    expected = 0.55 * features[0] @ features[1] + 0.45 * layout[0] @ layout[1]
    assert fused[0] @ fused[1] == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("weight", [0.0, 1.0, -0.1, 1.5])
def test_a_weight_outside_the_open_interval_is_refused(weight: float) -> None:
    with pytest.raises(ValueError, match="layout weight"):
        fuse(np.ones((1, 2), np.float32), np.ones((1, 2), np.float32), weight)
