"""The production encoder: a pretrained Vision Transformer through Hugging Face transformers.

``AutoModel`` + ``AutoImageProcessor`` load a hub id or a local folder (weights baked into
the image at build time; tests save a tiny ViT with ``save_pretrained``). Pooling:

* ``cls`` (default): the final class token (after the model's last layer norm). DINO-family
  models train this token with an image-level self-distillation loss across crops, scale
  and colour jitter, the invariances a near-duplicate finder needs.
* ``mean``: the mean of the patch tokens (class and register tokens excluded).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from PIL import Image
from transformers import AutoImageProcessor, AutoModel
from transformers.utils import logging as hf_logging

from photocluster.embedder.base import Pooling, model_id_of

hf_logging.set_verbosity_error()
hf_logging.disable_progress_bar()


class TransformersEncoder:
    """A transformers vision model pooled to one L2-normalised vector per image."""

    def __init__(
        self,
        source: str,
        pooling: Pooling = "cls",
        device: str = "cpu",
        threads: int | None = None,
        batch_size: int = 16,
    ) -> None:
        if pooling not in ("cls", "mean"):
            raise ValueError(f"pooling must be 'cls' or 'mean', got {pooling!r}")
        if threads:
            torch.set_num_threads(threads)
        self.model_id = model_id_of(source)
        self.pooling = pooling
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.processor: Any = AutoImageProcessor.from_pretrained(source)
        self.model: Any = AutoModel.from_pretrained(source).to(self.device).eval()
        config = self.model.config
        self.dim = int(config.hidden_size)
        self._skip = 1 + int(getattr(config, "num_register_tokens", 0) or 0)

    @torch.inference_mode()
    def embed(self, images: Sequence[Image.Image]) -> npt.NDArray[np.float32]:
        out = np.zeros((len(images), self.dim), dtype=np.float32)
        for start in range(0, len(images), self.batch_size):
            chunk = list(images[start : start + self.batch_size])
            inputs = self.processor(images=chunk, return_tensors="pt")
            pixels = inputs["pixel_values"].to(self.device)
            hidden = self.model(pixel_values=pixels).last_hidden_state
            cls = self.pooling == "cls"
            pooled = hidden[:, 0] if cls else hidden[:, self._skip :].mean(dim=1)
            pooled = torch.nn.functional.normalize(pooled.float(), dim=-1)
            out[start : start + len(chunk)] = pooled.cpu().numpy()
        return out
