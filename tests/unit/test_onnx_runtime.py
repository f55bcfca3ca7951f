"""The optimized runtimes (ONNX fp32 and int8, baked by bake-model) against fp32 torch.

Fidelity is measured on the held-out evaluation set (seed 3): per-image cosine between the
torch vector and the optimized one. The issue's target is min >= 0.99, median >= 0.995.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image

from photocluster.config import OFFLINE_MODEL
from photocluster.embedder.efficientnet import FEATURES_DIM
from photocluster.embedder.loader import available_cpus, load_encoder
from photocluster.embedder.onnx_encoder import ONNX_FILES, ONNX_SPEC_FILE
from photocluster.embedder.preprocessing import from_processor_config
from photocluster.quality import evalset
from tests.conftest import TINY_VIT_ID
from tests.helpers.images import picture


@pytest.fixture(scope="module")
def eval_images() -> list[Image.Image]:
    return [sample.image for sample in evalset.build(seed=3)]


def cosines(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    return np.asarray((a * b).sum(axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1))


def fidelity(
    folder: Path, runtime: str, images: list[Image.Image], dims: int | None = None
) -> tuple[float, float]:
    """(min, median) per-image cosine of ``runtime``'s vectors to fp32 torch's (of their
    first ``dims`` components when given)."""
    reference = load_encoder(str(folder), runtime="torch").embed(images)
    optimized = load_encoder(str(folder), runtime=runtime).embed(images)  # type: ignore[arg-type]
    found = cosines(reference[:, :dims], optimized[:, :dims])
    return float(found.min()), float(np.median(found))


def test_bake_writes_both_onnx_graphs_and_their_spec(baked_vit: Path) -> None:
    spec = json.loads((baked_vit / ONNX_SPEC_FILE).read_text())
    assert spec["model_id"] == TINY_VIT_ID and spec["dim"] == 32 and spec["output"] == "tokens"
    assert all((baked_vit / name).is_file() for name in ONNX_FILES.values())


@pytest.mark.parametrize("runtime", ["onnx", "onnx-int8"])
def test_onnx_vit_vectors_are_unit_and_named_like_torch(baked_vit: Path, runtime: str) -> None:
    encoder = load_encoder(str(baked_vit), runtime=runtime)  # type: ignore[arg-type]
    vectors = encoder.embed([picture(seed) for seed in range(3)])
    assert (encoder.model_id, encoder.dim, vectors.shape) == (TINY_VIT_ID, 32, (3, 32))
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("model", ["vit", "effnet"])
def test_onnx_fp32_equals_torch(
    model: str, baked_vit: Path, baked_effnet: Path, eval_images: list[Image.Image]
) -> None:
    folder = baked_vit if model == "vit" else baked_effnet
    lowest, _ = fidelity(folder, "onnx", eval_images)
    assert lowest >= 0.9999


def test_vit_int8_meets_the_fidelity_target(
    baked_vit: Path, eval_images: list[Image.Image]
) -> None:
    lowest, median = fidelity(baked_vit, "onnx-int8", eval_images)
    assert lowest >= 0.99 and median >= 0.995


def test_efficientnet_int8_meets_the_fidelity_target(
    baked_effnet: Path, eval_images: list[Image.Image]
) -> None:
    lowest, median = fidelity(baked_effnet, "onnx-int8", eval_images)
    assert lowest >= 0.99 and median >= 0.995


def test_efficientnet_int8_network_features_keep_their_measured_fidelity(
    baked_effnet: Path, eval_images: list[Image.Image]
) -> None:
    """The fused vector's layout part is the same numpy in every runtime, so its cosine is
    0.55 x the network's + 0.45 and flatters int8. The network's own features meet the
    target too (README, Benchmarks: min 0.9935, median 0.9979); guarded near that level."""
    lowest, median = fidelity(baked_effnet, "onnx-int8", eval_images, dims=FEATURES_DIM)
    assert lowest >= 0.99 and median >= 0.997


def test_int8_batch_is_close_to_single_calls(baked_vit: Path) -> None:
    """Dynamic int8 scales activations per batch, so a batch differs from single calls,
    but only in the fourth decimal of the cosine."""
    encoder = load_encoder(str(baked_vit), runtime="onnx-int8")
    images = [picture(seed) for seed in range(8)]
    together = encoder.embed(images)
    alone = np.concatenate([encoder.embed([image]) for image in images])
    assert cosines(together, alone).min() >= 0.999


def test_onnx_chunks_larger_batches(baked_effnet: Path) -> None:
    images = [picture(seed, size=(300, 200)) for seed in range(5)]
    chunked = load_encoder(str(baked_effnet), runtime="onnx", batch_size=2).embed(images)
    whole = load_encoder(str(baked_effnet), runtime="onnx").embed(images)
    np.testing.assert_allclose(chunked, whole, atol=1e-5)


def test_baked_efficientnet_records_its_id(baked_effnet: Path) -> None:
    assert load_encoder(str(baked_effnet), runtime="onnx").model_id == OFFLINE_MODEL


def test_onnx_runtime_needs_a_baked_folder(tiny_vit_dir: Path) -> None:
    with pytest.raises(FileNotFoundError, match="bake-model"):
        load_encoder(str(tiny_vit_dir), runtime="onnx")


def test_preprocessing_matches_the_vit_processor(tiny_vit_dir: Path) -> None:
    from transformers import AutoImageProcessor

    images = [picture(seed, size=(40 + 9 * seed, 30 + 4 * seed)) for seed in range(4)]
    expected = AutoImageProcessor.from_pretrained(tiny_vit_dir)(images, return_tensors="np")
    ours = from_processor_config(tiny_vit_dir).pixels(images)
    np.testing.assert_allclose(ours, expected["pixel_values"], atol=1e-5)


def test_preprocessing_matches_a_crop_processor_like_dinov2s(tmp_path: Path) -> None:
    from transformers import BitImageProcessor

    BitImageProcessor(
        size={"shortest_edge": 256},
        crop_size={"height": 224, "width": 224},
        image_mean=[0.485, 0.456, 0.406],
        image_std=[0.229, 0.224, 0.225],
    ).save_pretrained(tmp_path)
    images = [picture(1, size=(640, 480)), picture(2, size=(301, 517))]
    expected = BitImageProcessor.from_pretrained(tmp_path)(images, return_tensors="np")
    ours = from_processor_config(tmp_path).pixels(images)
    np.testing.assert_allclose(ours, expected["pixel_values"], atol=1e-5)


@pytest.mark.parametrize(
    ("cpu_max", "expected"),
    [("150000 100000\n", 1), ("max 100000\n", None), (None, None)],
)
def test_threads_follow_the_cgroup_cpu_quota(
    tmp_path: Path, cpu_max: str | None, expected: int | None
) -> None:
    path = tmp_path / "cpu.max"
    if cpu_max is not None:
        path.write_text(cpu_max)
    granted = len(os.sched_getaffinity(0))
    assert available_cpus(path) == (min(expected, granted) if expected else granted)
