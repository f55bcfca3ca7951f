"""Bias correction for int8 convolution weights, applied to the fp32 graph before quantising.

Rounding a convolution's weights ``W`` to ``W + dW`` moves the mean of its output by
``dW . E[x]`` (Nagel et al., 2019, "Data-Free Quantization Through Weight Equalization and
Bias Correction"). Inputs after ReLU6 are never negative, so these shifts do not average
out and add up layer after layer. Subtracting them from the biases beforehand cancels them;
``E[x]`` (per input channel) is measured with the fp32 graph on the calibration photos, and
``dW`` is the rounding onnxruntime's quantiser will apply (symmetric, per output channel).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt
import onnx
import onnxruntime as ort
from onnx import helper, numpy_helper

#: Largest weight magnitude onnxruntime's int8 per-channel weights take: ``reduce_range``
#: (7-bit, [-64, 64]) and full symmetric int8 ([-127, 127]).
QMAX_7_BIT = 64
QMAX_8_BIT = 127


def correct_biases(
    model: onnx.ModelProto,
    qmax: Mapping[str, int],
    batches: Sequence[Mapping[str, npt.NDArray[np.float32]]],
) -> None:
    """Shift, in place, the bias of each Conv named in ``qmax`` (node name -> the largest
    quantised weight magnitude it will get) by its weights' rounding error times the mean
    input that ``batches`` (the graph's inputs) produce."""
    nodes = {node.name: node for node in model.graph.node if node.name in qmax}
    if missing := set(qmax) - set(nodes):
        raise ValueError(f"no Conv named {sorted(missing)}")
    initializers = {init.name: init for init in model.graph.initializer}
    means = _input_means(model, [nodes[name].input[0] for name in qmax], batches)
    for name, limit in qmax.items():
        node = nodes[name]
        if len(node.input) < 3:
            raise ValueError(f"{name} has no bias to correct")
        weights = numpy_helper.to_array(initializers[node.input[1]])
        bias = initializers[node.input[2]]
        shift = _output_shift(_rounded(weights, limit) - weights, means[node.input[0]])
        corrected = numpy_helper.to_array(bias) - shift
        bias.CopyFrom(numpy_helper.from_array(corrected.astype(np.float32), bias.name))


def _input_means(
    model: onnx.ModelProto,
    tensors: list[str],
    batches: Sequence[Mapping[str, npt.NDArray[np.float32]]],
) -> dict[str, npt.NDArray[np.float64]]:
    """Mean of each (n, channels, h, w) tensor per channel over every image and position."""
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    wanted = sorted(set(tensors))
    probe.graph.output.extend(
        helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None) for name in wanted
    )
    session = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    totals: dict[str, npt.NDArray[np.float64]] = {}
    images = 0
    for batch in batches:
        for name, found in zip(wanted, session.run(wanted, dict(batch)), strict=True):
            total = totals.setdefault(name, np.zeros(found.shape[1]))
            total += found.astype(np.float64).mean(axis=(2, 3)).sum(axis=0)
        images += len(next(iter(batch.values())))
    return {name: total / images for name, total in totals.items()}


def _rounded(weights: npt.NDArray[np.float32], qmax: int) -> npt.NDArray[np.float64]:
    """``weights`` as the quantiser stores them: symmetric, one scale per output channel."""
    flat = weights.reshape(len(weights), -1).astype(np.float64)
    scale = np.maximum(np.abs(flat).max(axis=1, keepdims=True) / qmax, np.finfo(np.float32).tiny)
    rounded = np.clip(np.round(flat / scale), -qmax, qmax) * scale
    return np.asarray(rounded.reshape(weights.shape), dtype=np.float64)


def _output_shift(
    error: npt.NDArray[np.float64], mean: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Mean change of each output channel (padding at the borders ignored)."""
    if error.shape[1] == len(mean):
        return np.asarray(np.einsum("oikl,i->o", error, mean))
    if error.shape[1] == 1 and len(error) == len(mean):  # depthwise
        return np.asarray(error.sum(axis=(1, 2, 3)) * mean)
    raise ValueError(f"only plain and depthwise convolutions, not weights {error.shape}")
