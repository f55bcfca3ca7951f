"""The encoder interface: load once, embed a batch of images into unit vectors.

Implementations: :mod:`~photocluster.embedder.vit` (transformers ViT, production) and
:mod:`~photocluster.embedder.efficientnet` (offline EfficientNet-Lite0), both torch; and
:mod:`~photocluster.embedder.onnx_encoder` (either one's ONNX export, onnxruntime).
This module imports neither: callers (the inference server, the evaluation harness) know
this interface, and :mod:`~photocluster.embedder.loader` picks an implementation.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, Protocol

import numpy as np
import numpy.typing as npt
from PIL import Image

#: Written next to saved weights to name the model independently of the folder it sits in.
MODEL_META_FILE = "photocluster.json"

Pooling = Literal["cls", "mean"]


class Encoder(Protocol):
    """Turns RGB images into L2-normalised float32 vectors."""

    model_id: str
    dim: int

    def embed(self, images: Sequence[Image.Image]) -> npt.NDArray[np.float32]:
        """One unit vector per image, shape (len(images), dim)."""
        ...


def model_id_of(source: str | Path) -> str:
    """The model id recorded for vectors of ``source``: the id saved beside local weights
    (``photocluster.json``), else the hub id or path as given."""
    meta = Path(source) / MODEL_META_FILE
    if meta.is_file():
        return str(json.loads(meta.read_text())["model_id"])
    return str(source)
