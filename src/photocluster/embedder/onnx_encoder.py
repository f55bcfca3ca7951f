"""The optimized runtime: a baked encoder's ONNX export run by onnxruntime (no torch).

``photocluster bake-model`` writes, beside the weights, ``encoder.onnx`` (fp32),
``encoder.int8.onnx`` (int8) and :data:`ONNX_SPEC_FILE`, which says what the graph
outputs and how images are preprocessed (:mod:`~photocluster.embedder.preprocessing`).
This module needs only onnxruntime, numpy and PIL, so an image that serves ONNX can leave
torch and transformers out.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
from PIL import Image

from photocluster.config import EncoderRuntime
from photocluster.embedder.base import Pooling
from photocluster.embedder.layout import fuse, layout_vectors
from photocluster.embedder.preprocessing import Preprocessing

#: The ONNX encoder's description, written by bake-model next to the model's metadata.
ONNX_SPEC_FILE = "encoder-onnx.json"
#: The graph file of each ONNX runtime, inside the baked folder.
ONNX_FILES: dict[EncoderRuntime, str] = {"onnx": "encoder.onnx", "onnx-int8": "encoder.int8.onnx"}
INPUT_NAME = "pixel_values"


@dataclass(frozen=True)
class OnnxSpec:
    """What the exported graph computes, and what it needs as input."""

    model_id: str
    dim: int
    #: ``features``: one pooled vector per image; ``tokens``: (n, tokens, dim), pooled here.
    output: Literal["features", "tokens"]
    #: Leading non-patch tokens of a ``tokens`` output (class + register tokens).
    prefix_tokens: int
    preprocessing: Preprocessing
    #: How the int8 graph was quantised (reported by the server and the benchmark).
    quantisation: str
    #: Weight of the layout descriptor fused after the graph's vector (0: none; ``dim``
    #: counts both parts).
    layout_weight: float = 0.0

    def write(self, folder: Path) -> None:
        data = {
            "model_id": self.model_id,
            "dim": self.dim,
            "output": self.output,
            "prefix_tokens": self.prefix_tokens,
            "preprocessing": self.preprocessing.to_json(),
            "quantisation": self.quantisation,
            "layout_weight": self.layout_weight,
            "files": ONNX_FILES,
        }
        (folder / ONNX_SPEC_FILE).write_text(json.dumps(data, indent=1))

    @classmethod
    def read(cls, folder: Path) -> OnnxSpec:
        path = folder / ONNX_SPEC_FILE
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} is missing: the ONNX runtimes need a folder written by "
                "`photocluster bake-model` (or PHOTOCLUSTER_ENCODER_RUNTIME=torch)"
            )
        data = json.loads(path.read_text())
        return cls(
            model_id=str(data["model_id"]),
            dim=int(data["dim"]),
            output=data["output"],
            prefix_tokens=int(data["prefix_tokens"]),
            preprocessing=Preprocessing.from_json(data["preprocessing"]),
            quantisation=str(data["quantisation"]),
            layout_weight=float(data.get("layout_weight", 0.0)),
        )


def session_options(threads: int) -> ort.SessionOptions:
    """One request at a time on ``threads`` cores: all parallelism inside the operators."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Idle pool threads spinning after a run take the few vCPUs from the request's own
    # decoding and serialising (and, in the benchmark, from torch).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


class OnnxEncoder:
    """A baked encoder's ONNX graph behind the :class:`~photocluster.embedder.base.Encoder`
    interface."""

    def __init__(
        self,
        folder: Path,
        runtime: EncoderRuntime,
        threads: int,
        pooling: Pooling = "cls",
        batch_size: int = 16,
    ) -> None:
        if runtime not in ONNX_FILES:
            raise ValueError(f"{runtime!r} is not an ONNX runtime ({', '.join(ONNX_FILES)})")
        if pooling not in ("cls", "mean"):
            raise ValueError(f"pooling must be 'cls' or 'mean', got {pooling!r}")
        self.spec = OnnxSpec.read(folder)
        self.model_id = self.spec.model_id
        self.dim = self.spec.dim
        self.runtime = runtime
        self.pooling = pooling
        self.batch_size = batch_size
        self.session = ort.InferenceSession(
            str(folder / ONNX_FILES[runtime]),
            session_options(threads),
            providers=["CPUExecutionProvider"],
        )

    def embed(self, images: Sequence[Image.Image]) -> npt.NDArray[np.float32]:
        out = np.zeros((len(images), self.dim), dtype=np.float32)
        for start in range(0, len(images), self.batch_size):
            chunk = images[start : start + self.batch_size]
            pixels = self.spec.preprocessing.pixels(chunk)
            (output,) = self.session.run(None, {INPUT_NAME: pixels})
            unit = _unit_rows(self._pooled(output))
            if self.spec.layout_weight:
                unit = fuse(unit, layout_vectors(chunk), self.spec.layout_weight)
            out[start : start + len(chunk)] = unit
        return out

    def _pooled(self, output: npt.NDArray[Any]) -> npt.NDArray[np.float32]:
        if self.spec.output == "features":
            return np.asarray(output, dtype=np.float32)
        if self.pooling == "cls":
            return np.asarray(output[:, 0], dtype=np.float32)
        return np.asarray(output[:, self.spec.prefix_tokens :].mean(axis=1), dtype=np.float32)


def _unit_rows(vectors: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    # As torch.nn.functional.normalize: a zero vector stays zero instead of becoming NaN.
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.asarray(vectors / np.maximum(norms, 1e-12), dtype=np.float32)
