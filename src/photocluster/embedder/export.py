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
  slower than fp32), so it is quantised statically (QDQ, uint8 activations, int8 weights
  per channel) with ranges measured on generated sample photos. Plain static int8 moved
  the vectors too far (per-image cosine to fp32 down to 0.84); what brings it within the
  fidelity target: the stem and blocks 0-2 (the 112x112 and 56x56 layers, which lose the
  most) stay fp32, which costs 2-12% of plain int8's images/s (preprocessing included);
  depthwise weights keep 8 bits (their kernel accumulates in 32 bits), the other
  convolutions' 7 (``reduce_range``: AVX2's u8 x s8 multiply-add saturates with 8); biases
  are corrected for the weights' rounding
  (:mod:`~photocluster.embedder.bias_correction`); activation ranges span the 0.01th to
  99.99th percentiles, not the extremes.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
import torch
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_dynamic,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process
from torch.jit._trace import TracerWarning

from photocluster.config import OFFLINE_LAYOUT_WEIGHTS
from photocluster.embedder.bias_correction import QMAX_7_BIT, QMAX_8_BIT, correct_biases
from photocluster.embedder.onnx_encoder import INPUT_NAME, ONNX_FILES, OnnxSpec
from photocluster.embedder.preprocessing import (
    EFFICIENTNET_LITE0,
    Preprocessing,
    from_processor_config,
)

OPSET = 17
DYNAMIC_INT8 = "dynamic: MatMul/Gemm weights int8 per channel (7-bit), activations per batch"
STATIC_INT8 = (
    "static QDQ: stem and blocks 0-2 fp32; weights int8 per channel (depthwise 8-bit, others "
    "7-bit), bias-corrected; activations uint8 (0.01-99.99th percentiles)"
)
#: Photos whose activation ranges set EfficientNet-Lite0's int8 scales (generated, seeded).
QUANTISATION_SAMPLES_SEED = 101
#: EfficientNet-Lite0's layers left in fp32 (ONNX node name prefixes): the stem and blocks
#: 0-2. Quantised alone, several of them each took the worst per-image cosine below 0.99.
FP32_LAYERS = ("/_conv_stem/", "/_blocks.0/", "/_blocks.1/", "/_blocks.2/")
#: Activation ranges span the 0.01th to the 99.99th percentile of the calibration values.
ACTIVATION_PERCENTILE = 99.99


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
    def __init__(self, batches: list[dict[str, npt.NDArray[np.float32]]]) -> None:
        self._batches = iter(batches)

    def get_next(self) -> dict[str, npt.NDArray[np.float32]] | None:
        return next(self._batches, None)


def _quantisation_batches(preprocessing: Preprocessing) -> list[dict[str, npt.NDArray[np.float32]]]:
    from photocluster.quality import evalset

    samples = evalset.build(seed=QUANTISATION_SAMPLES_SEED, per_group=2)
    return [{INPUT_NAME: preprocessing.pixels([sample.image])} for sample in samples]


def _quantise_static(fp32: Path, int8: Path, preprocessing: Preprocessing) -> None:
    prepared = int8.with_suffix(".prepared.onnx")
    quant_pre_process(str(fp32), str(prepared))
    try:
        model = onnx.load(prepared)
        kept_fp32, weight_qmax = _conv_precisions(model)
        batches = _quantisation_batches(preprocessing)
        correct_biases(model, weight_qmax, batches)
        onnx.save(model, prepared)
        eight_bit = {name for name, qmax in weight_qmax.items() if qmax == QMAX_8_BIT}
        weights = [node.input[1] for node in model.graph.node if node.name in eight_bit]
        # The percentile calibrator prints its progress; bake-model's stdout is its JSON.
        with contextlib.redirect_stdout(io.StringIO()):
            _quantise_calibrated(prepared, int8, batches, kept_fp32, weights)
    finally:
        prepared.unlink(missing_ok=True)


def _quantise_calibrated(
    prepared: Path,
    int8: Path,
    batches: list[dict[str, npt.NDArray[np.float32]]],
    kept_fp32: list[str],
    eight_bit_weights: list[str],
) -> None:
    quantize_static(
        prepared,
        int8,
        _SamplePhotos(batches),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        reduce_range=True,
        weight_type=QuantType.QInt8,
        activation_type=QuantType.QUInt8,
        nodes_to_exclude=kept_fp32,
        calibrate_method=CalibrationMethod.Percentile,
        extra_options={
            "CalibPercentile": ACTIVATION_PERCENTILE,
            "TensorQuantOverrides": {
                name: [{"axis": 0, "reduce_range": False}] for name in eight_bit_weights
            },
        },
    )


def _conv_precisions(model: onnx.ModelProto) -> tuple[list[str], dict[str, int]]:
    """The Conv nodes kept in fp32, and each quantised one's largest weight magnitude
    (8-bit for depthwise convolutions, 7-bit for the others)."""
    kept_fp32: list[str] = []
    weight_qmax: dict[str, int] = {}
    for node in model.graph.node:
        if node.op_type != "Conv":
            continue
        if node.name.startswith(FP32_LAYERS):
            kept_fp32.append(node.name)
            continue
        group = next((attribute.i for attribute in node.attribute if attribute.name == "group"), 1)
        weight_qmax[node.name] = QMAX_8_BIT if group > 1 else QMAX_7_BIT
    if not kept_fp32:
        raise ValueError(f"no Conv named {FP32_LAYERS}: the exported names changed")
    return kept_fp32, weight_qmax
