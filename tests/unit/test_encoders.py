"""Encoders behind one interface: a tiny saved ViT (mechanics) and EfficientNet-Lite0
(real ImageNet weights, so also meaning)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageEnhance, ImageOps
from skimage import data as skdata

from photocluster.config import OFFLINE_LAYOUT_WEIGHTS, OFFLINE_MODEL
from photocluster.embedder.base import MODEL_META_FILE
from photocluster.embedder.layout import LAYOUT_DIM, layout_vectors
from photocluster.embedder.loader import load_encoder, resolve_model_source
from tests.conftest import TINY_VIT_ID
from tests.helpers.images import picture

ESPRESSO = 967
CAT_CLASSES = {281, 282, 283, 284, 285}  # tabby, tiger cat, Persian, Siamese, Egyptian cat


@pytest.fixture(scope="module")
def vit(tiny_vit_dir: Path):  # type: ignore[no-untyped-def]
    return load_encoder(str(tiny_vit_dir))


@pytest.fixture(scope="module")
def effnet():  # type: ignore[no-untyped-def]
    return load_encoder(OFFLINE_MODEL)


def images(n: int) -> list[Image.Image]:
    return [picture(seed, size=(40 + 7 * seed, 30 + 5 * seed)) for seed in range(n)]


def test_vit_loads_through_the_production_path(vit) -> None:  # type: ignore[no-untyped-def]
    assert vit.model_id == TINY_VIT_ID and vit.dim == 32


def test_vit_vectors_have_the_right_shape_and_unit_norm(vit) -> None:  # type: ignore[no-untyped-def]
    vectors = vit.embed(images(3))
    assert vectors.shape == (3, 32) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_vit_batch_of_8_equals_8_single_calls(vit) -> None:  # type: ignore[no-untyped-def]
    batch = vit.embed(images(8))
    singles = np.concatenate([vit.embed([image]) for image in images(8)])
    np.testing.assert_allclose(batch, singles, atol=1e-5)


def test_vit_is_deterministic(vit) -> None:  # type: ignore[no-untyped-def]
    np.testing.assert_array_equal(vit.embed(images(4)), vit.embed(images(4)))


def test_vit_batches_larger_than_its_chunk(tiny_vit_dir: Path) -> None:
    encoder = load_encoder(str(tiny_vit_dir), batch_size=3)
    big = encoder.embed(images(7))
    np.testing.assert_allclose(big, load_encoder(str(tiny_vit_dir)).embed(images(7)), atol=1e-5)


def test_vit_mean_pooling(tiny_vit_dir: Path) -> None:
    vectors = load_encoder(str(tiny_vit_dir), pooling="mean").embed(images(2))
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_unknown_pooling_is_refused(tiny_vit_dir: Path) -> None:
    with pytest.raises(ValueError, match="pooling"):
        load_encoder(str(tiny_vit_dir), pooling="max")  # type: ignore[arg-type]


def test_missing_model_fails_clearly(tmp_path: Path) -> None:
    with pytest.raises(OSError):  # noqa: PT011 - transformers' own message names the path
        load_encoder(str(tmp_path / "no-such-model"))


def test_sagemaker_model_dir_wins_when_it_holds_a_model(tiny_vit_dir: Path, tmp_path: Path) -> None:
    assert resolve_model_source("some/hub-id", tiny_vit_dir) == str(tiny_vit_dir)
    assert resolve_model_source("some/hub-id", tmp_path) == "some/hub-id"
    (tmp_path / MODEL_META_FILE).write_text(json.dumps({"model_id": OFFLINE_MODEL}))
    assert resolve_model_source("some/hub-id", tmp_path) == str(tmp_path)


def test_efficientnet_loads_strict_and_classifies_sample_photos(effnet) -> None:  # type: ignore[no-untyped-def]
    coffee = Image.fromarray(skdata.coffee())
    cat = Image.fromarray(skdata.chelsea())
    top_coffee, top_cat = effnet.classify([coffee, cat])
    assert top_coffee[0] == ESPRESSO
    assert top_cat[0] in CAT_CLASSES


def test_efficientnet_vectors(effnet) -> None:  # type: ignore[no-untyped-def]
    vectors = effnet.embed(images(3))
    assert effnet.model_id == OFFLINE_MODEL and vectors.shape == (3, 1280 + LAYOUT_DIM)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_offline_default_fuses_the_pooled_features_with_the_layout(effnet) -> None:  # type: ignore[no-untyped-def]
    features_only = load_encoder("efficientnet-lite0")
    assert (features_only.model_id, features_only.dim) == ("efficientnet-lite0", 1280)
    pictures = images(2)
    features = features_only.embed(pictures)
    layout = layout_vectors(pictures)
    fused = effnet.embed(pictures)
    weight = OFFLINE_LAYOUT_WEIGHTS[OFFLINE_MODEL]
    expected = (1 - weight) * features[0] @ features[1] + weight * layout[0] @ layout[1]
    assert fused[0] @ fused[1] == pytest.approx(expected, abs=1e-5)


def test_an_unknown_offline_model_is_refused() -> None:
    from photocluster.embedder.efficientnet import vector_dim

    with pytest.raises(ValueError, match="not an offline model"):
        vector_dim("efficientnet-lite7")


def test_efficientnet_near_duplicates_score_above_other_photos(effnet) -> None:  # type: ignore[no-untyped-def]
    coffee = Image.fromarray(skdata.coffee())
    variants = [
        ImageOps.mirror(coffee),
        coffee.crop((40, 30, 560, 380)),
        ImageEnhance.Color(coffee).enhance(1.5),
        coffee.resize((300, 200)),
    ]
    others = [
        Image.fromarray(skdata.chelsea()),
        Image.fromarray(skdata.astronaut()),
        Image.fromarray(skdata.rocket()),
    ]
    vectors = effnet.embed([coffee, *variants, *others])
    sims = vectors[1:] @ vectors[0]
    assert sims[: len(variants)].min() > sims[len(variants) :].max() + 0.1


def test_bake_model_saves_weights_that_load_offline(tiny_vit_dir: Path, tmp_path: Path) -> None:
    from photocluster.embedder.loader import bake_model

    dest = tmp_path / "baked"
    assert bake_model(str(tiny_vit_dir), dest) == TINY_VIT_ID
    encoder = load_encoder(resolve_model_source("ignored/hub-id", dest))
    assert encoder.model_id == TINY_VIT_ID
    np.testing.assert_allclose(
        encoder.embed(images(2)), load_encoder(str(tiny_vit_dir)).embed(images(2)), atol=1e-6
    )


def test_baked_offline_model_loads_efficientnet_from_its_folder(baked_effnet: Path) -> None:
    assert resolve_model_source("ignored/hub-id", baked_effnet) == str(baked_effnet)
    assert load_encoder(str(baked_effnet)).model_id == OFFLINE_MODEL
