"""Bias correction: a convolution with rounded weights and the corrected bias keeps the
fp32 convolution's mean output per channel."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from photocluster.embedder.bias_correction import QMAX_7_BIT, _rounded, correct_biases


def conv_model(weights: npt.NDArray[np.float32], group: int) -> onnx.ModelProto:
    channels = weights.shape[1] * group
    bias = np.linspace(-1, 1, len(weights), dtype=np.float32)
    node = helper.make_node("Conv", ["x", "w", "b"], ["y"], name="conv", group=group)
    graph = helper.make_graph(
        [node],
        "conv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, channels, 6, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(weights, "w"), numpy_helper.from_array(bias, "b")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def channel_means(model: onnx.ModelProto, x: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (y,) = session.run(None, {"x": x})
    return np.asarray(y.astype(np.float64).mean(axis=(0, 2, 3)))


def with_rounded_weights(model: onnx.ModelProto) -> onnx.ModelProto:
    rounded = onnx.ModelProto()
    rounded.CopyFrom(model)
    weights = rounded.graph.initializer[0]
    values = _rounded(numpy_helper.to_array(weights), QMAX_7_BIT).astype(np.float32)
    weights.CopyFrom(numpy_helper.from_array(values, "w"))
    return rounded


@pytest.mark.parametrize(("shape", "group"), [((8, 4, 3, 3), 1), ((4, 1, 3, 3), 4)])
def test_corrected_bias_cancels_the_mean_shift_of_rounded_weights(
    shape: tuple[int, ...], group: int, rng: np.random.Generator
) -> None:
    weights = rng.normal(size=shape).astype(np.float32)
    # Constant over each picture, so every kernel tap sees the channel's mean.
    levels = rng.uniform(0, 6, size=(5, shape[1] * group, 1, 1))
    x = np.broadcast_to(levels, (5, shape[1] * group, 6, 6)).astype(np.float32)
    model = conv_model(weights, group)
    expected = channel_means(model, x)
    uncorrected = np.abs(channel_means(with_rounded_weights(model), x) - expected).max()
    correct_biases(model, {"conv": QMAX_7_BIT}, [{"x": x[:2]}, {"x": x[2:]}])
    corrected = np.abs(channel_means(with_rounded_weights(model), x) - expected).max()
    assert corrected < 1e-4 < uncorrected


def test_unknown_convolutions_are_refused() -> None:
    model = conv_model(np.ones((2, 2, 1, 1), dtype=np.float32), 1)
    with pytest.raises(ValueError, match="no Conv named"):
        correct_biases(model, {"missing": QMAX_7_BIT}, [])
