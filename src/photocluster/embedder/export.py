"""bake-model's second half: the encoder exported to ONNX, in fp32 and in int8.

* fp32: ``torch.onnx.export`` (the TorchScript exporter, ``dynamo=False``: it needs no
  onnxscript), batch size dynamic; onnxruntime fuses what PyTorch runs op by op (batch
  norm into convolutions, attention's matmuls and softmax).
* int8, ViT: dynamic quantisation of the MatMul/Gemm weights (int8, per output channel;
  activations quantised per batch at run time). It needs no calibration images, and
  onnxruntime's MLAS kernels run it on any x86-64 with AVX2 (VNNI or AMX only make it
  faster); ``reduce_range`` keeps 7-bit weights, which avoids the overflow of AVX2's u8 x s8
  multiply-add on CPUs without VNNI.
* int8, EfficientNet-Lite0: a CNN gains nothing from dynamic quantisation (ConvInteger is
  slower than fp32), so it is quantised statically (QDQ, per-channel 7-bit weights, uint8
  activations) with activation ranges measured on generated sample photos.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from onnxruntime.quantization import (
    CalibrationDataReader,
    QuantFormat,
    QuantType,
    quantize_dynamic,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process
from torch.jit._trace import TracerWarning

from photocluster.config import OFFLINE_LAYOUT_WEIGHTS
from photocluster.embedder.onnx_encoder import INPUT_NAME, ONNX_FILES, OnnxSpec
from photocluster.embedder.preprocessing import (
    EFFICIENTNET_LITE0,
    Preprocessing,
    from_processor_config,
)

OPSET = 17
DYNAMIC_INT8 = "dynamic: MatMul/Gemm weights int8 per channel (7-bit), activations per batch"
STATIC_INT8 = "static QDQ: weights int8 per channel (7-bit), activations uint8 (MinMax)"
#: Photos whose activation ranges set EfficientNet-Lite0's int8 scales (generated, seeded).
QUANTISATION_SAMPLES_SEED = 101


class _Features(torch.nn.Module):
    """The graph to export: pixels in, the encoder's output before pooling/normalising."""

    def __init__(self, model: Any, output: str) -> None:
        super().__init__()
        self.model = model
        self.output = output

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        if self.output == "features":
            return self.model.features(pixel_values)  # type: ignore[no-any-return]
        return self.model(pixel_values=pixel_values).last_hidden_state  # type: ignore[no-any-return]


def export_onnx(model: str, folder: Path, model_id: str) -> OnnxSpec:
    """Write ``encoder.onnx``, ``encoder.int8.onnx`` and their spec into the baked ``folder``."""
    network, spec = _network_and_spec(model, folder, model_id)
    fp32 = folder / ONNX_FILES["onnx"]
    int8 = folder / ONNX_FILES["onnx-int8"]
    _export_fp32(_Features(network, spec.output), spec.preprocessing, fp32)
    if spec.output == "features":
        _quantise_static(fp32, int8, spec.preprocessing)
    else:
        quantize_dynamic(
            fp32,
            int8,
            weight_type=QuantType.QInt8,
            per_channel=True,
            reduce_range=True,
            op_types_to_quantize=["MatMul", "Gemm"],
        )
    spec.write(folder)
    return spec


def _network_and_spec(model: str, folder: Path, model_id: str) -> tuple[Any, OnnxSpec]:
    if model in OFFLINE_LAYOUT_WEIGHTS:
        from photocluster.embedder.efficientnet import load_pretrained, vector_dim

        weight = OFFLINE_LAYOUT_WEIGHTS[model]
        spec = OnnxSpec(
            model_id, vector_dim(model), "features", 0, EFFICIENTNET_LITE0, STATIC_INT8, weight
        )
        return load_pretrained(), spec
    from transformers import AutoModel

    network = AutoModel.from_pretrained(folder).eval()
    config = network.config
    prefix = 1 + int(getattr(config, "num_register_tokens", 0) or 0)
    preprocessing = from_processor_config(folder)
    spec = OnnxSpec(
        model_id, int(config.hidden_size), "tokens", prefix, preprocessing, DYNAMIC_INT8
    )
    return network, spec


def _export_fp32(network: torch.nn.Module, preprocessing: Preprocessing, path: Path) -> None:
    height, width = preprocessing.output_size
    example = torch.zeros(2, 3, height, width)
    with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
        # The tracer freezes the models' input-size checks: right, the size is fixed here.
        warnings.simplefilter("ignore", TracerWarning)
        # dynamo=False on purpose (module docstring): its deprecation notices are expected.
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            network.eval(),
            (example,),
            str(path),
            input_names=[INPUT_NAME],
            output_names=["output"],
            dynamic_axes={INPUT_NAME: {0: "batch"}, "output": {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,
        )


class _SamplePhotos(CalibrationDataReader):  # type: ignore[misc]
    def __init__(self, preprocessing: Preprocessing) -> None:
        self._batches = iter(_quantisation_batches(preprocessing))

    def get_next(self) -> dict[str, npt.NDArray[np.float32]] | None:
        return next(self._batches, None)


def _quantisation_batches(
    preprocessing: Preprocessing,
) -> Iterator[dict[str, npt.NDArray[np.float32]]]:
    from photocluster.quality import evalset

    for sample in evalset.build(seed=QUANTISATION_SAMPLES_SEED, per_group=2):
        yield {INPUT_NAME: preprocessing.pixels([sample.image])}


def _quantise_static(fp32: Path, int8: Path, preprocessing: Preprocessing) -> None:
    prepared = int8.with_suffix(".prepared.onnx")
    quant_pre_process(str(fp32), str(prepared))
    try:
        quantize_static(
            prepared,
            int8,
            _SamplePhotos(preprocessing),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            reduce_range=True,
            weight_type=QuantType.QInt8,
            activation_type=QuantType.QUInt8,
        )
    finally:
        prepared.unlink(missing_ok=True)
