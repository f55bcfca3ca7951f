"""bake-model's fidelity gate: int8 only where its vectors agree with torch's, else onnx
fp32, else torch, saying why; the served runtime is read back from runtime.json."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from photocluster.embedder import fidelity
from photocluster.embedder.fidelity import Agreement, decide


@pytest.mark.parametrize(
    ("int8", "fp32", "chosen", "words"),
    [
        (Agreement(0.996, 0.999), Agreement(1.0, 1.0), "onnx-int8", "agrees"),
        (Agreement(0.99, 0.995), Agreement(1.0, 1.0), "onnx-int8", "agrees"),  # at the targets
        (Agreement(0.989, 0.999), Agreement(1.0, 1.0), "onnx", "min 0.9890"),
        (Agreement(0.995, 0.9949), Agreement(1.0, 1.0), "onnx", "median 0.9949"),
        (Agreement(0.9, 0.95), Agreement(0.998, 0.9995), "torch", "either"),
        (None, Agreement(1.0, 1.0), "onnx", "no int8 export"),
    ],
)
def test_the_gate_keeps_int8_only_within_its_targets(
    int8: Agreement | None, fp32: Agreement, chosen: str, words: str
) -> None:
    measured = {"onnx": fp32} | ({"onnx-int8": int8} if int8 else {})
    runtime, reason = decide(measured)
    assert runtime == chosen and words in reason


def test_cosines_are_per_picture_and_scale_free() -> None:
    a = np.array([[1, 0], [0, 2]], dtype=np.float32)
    b = np.array([[3, 0], [2, 2]], dtype=np.float32)
    assert np.allclose(fidelity.cosines(a, b), [1.0, np.sqrt(0.5)])


def test_the_served_runtime_is_read_back_and_anything_else_is_none(tmp_path: Path) -> None:
    choice = fidelity.RuntimeChoice(
        "onnx-int8", "measured", {"onnx-int8": Agreement(0.996, 0.999)}, 73, "cpu", ["avx2"]
    )
    (tmp_path / fidelity.RUNTIME_FILE).write_text(choice.to_json())
    assert fidelity.baked_runtime(str(tmp_path)) == "onnx-int8"
    assert json.loads(choice.to_json())["agreement"]["onnx-int8"]["min"] == 0.996
    assert fidelity.baked_runtime("efficientnet-lite0-layout") is None  # not a folder
    (tmp_path / fidelity.RUNTIME_FILE).write_text('{"runtime": "tensorrt"}')
    assert fidelity.baked_runtime(str(tmp_path)) is None
    (tmp_path / fidelity.RUNTIME_FILE).write_text("not json")
    assert fidelity.baked_runtime(str(tmp_path)) is None


def test_the_gate_measures_a_baked_model_and_writes_its_choice(baked_vit: Path) -> None:
    """The tiny ViT's exports measured against its torch weights on a few pictures."""
    from PIL import Image

    pictures = [Image.new("RGB", (64, 48), (40 * i, 255 - 40 * i, 128)) for i in range(4)]
    choice = fidelity.choose_runtime(baked_vit, str(baked_vit), pictures)
    assert choice.pictures == 4 and set(choice.agreement) == {"onnx", "onnx-int8"}
    assert choice.agreement["onnx"].min > 0.999  # fp32 is torch's arithmetic
    assert fidelity.baked_runtime(str(baked_vit)) == choice.runtime
    assert choice.runtime == decide(choice.agreement)[0]
