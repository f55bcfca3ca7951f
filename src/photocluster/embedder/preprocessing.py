"""Images to the encoders' input tensor with PIL and numpy only (no torch, no transformers).

Each image is resized and cropped on its own (PIL's resampling), straight into one uint8
batch array; rescaling and normalisation then run once over the whole batch as a single
multiply-add. Two conventions are described by :class:`Preprocessing`:

* EfficientNet-Lite0's (:data:`EFFICIENTNET_LITE0`): shorter side to 256 (rounded),
  centre crop 224, scaled to [-1, 1];
* a transformers image processor's (:func:`from_processor_config`, read from the saved
  ``preprocessor_config.json``): the slow (PIL) processors' resize, crop, rescale and
  normalise, so a baked ViT needs no transformers at run time.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image

PROCESSOR_CONFIG_FILE = "preprocessor_config.json"


@dataclass(frozen=True)
class Preprocessing:
    """How one encoder turns an RGB image into its (3, height, width) float input."""

    #: The shorter side's length, or (height, width) to resize to exactly.
    size: int | tuple[int, int]
    #: (height, width) of the centre crop after resizing; None: no crop.
    crop: tuple[int, int] | None
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    resample: int = Image.Resampling.BICUBIC
    rescale: float = 1 / 255
    #: transformers truncates the longer side (int); EfficientNet-Lite0's pipeline rounds.
    round_longer_side: bool = False
    #: PIL's reducing_gap (faster downscaling of large images); None: exact resampling.
    reducing_gap: float | None = None

    @property
    def output_size(self) -> tuple[int, int]:
        """(height, width) of the tensor handed to the network."""
        if self.crop is not None:
            return self.crop
        if isinstance(self.size, int):
            raise ValueError("a shorter-side resize without a crop has no fixed output size")
        return self.size

    def resized_size(self, width: int, height: int) -> tuple[int, int]:
        """(width, height) of an image after the resize step."""
        if not isinstance(self.size, int):
            return self.size[1], self.size[0]
        scale = self.size / min(width, height)
        longer: Any = round if self.round_longer_side else int
        crop_h, crop_w = self.crop or (0, 0)
        if width <= height:
            return max(crop_w, self.size), max(crop_h, longer(height * scale))
        return max(crop_w, longer(width * scale)), max(crop_h, self.size)

    def uint8_batch(self, images: Sequence[Image.Image]) -> npt.NDArray[np.uint8]:
        """Resized and cropped RGB pixels, (n, height, width, 3)."""
        out_h, out_w = self.output_size
        batch = np.empty((len(images), out_h, out_w, 3), dtype=np.uint8)
        for index, image in enumerate(images):
            rgb = image if image.mode == "RGB" else image.convert("RGB")
            size = self.resized_size(rgb.width, rgb.height)
            if size != rgb.size:
                rgb = rgb.resize(size, self.resample, reducing_gap=self.reducing_gap)
            left, top = (rgb.width - out_w) // 2, (rgb.height - out_h) // 2
            if (left, top, rgb.width, rgb.height) != (0, 0, out_w, out_h):
                rgb = rgb.crop((left, top, left + out_w, top + out_h))
            batch[index] = np.asarray(rgb)
        return batch

    def pixels(self, images: Sequence[Image.Image]) -> npt.NDArray[np.float32]:
        """The network's input, (n, 3, height, width) float32, contiguous."""
        std = np.asarray(self.std, dtype=np.float32)
        scale = np.float32(self.rescale) / std
        offset = -np.asarray(self.mean, dtype=np.float32) / std
        normalised = self.uint8_batch(images).astype(np.float32) * scale + offset
        return np.ascontiguousarray(normalised.transpose(0, 3, 1, 2))

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Preprocessing:
        size = data["size"]
        crop = data["crop"]
        return cls(
            size=size if isinstance(size, int) else (int(size[0]), int(size[1])),
            crop=None if crop is None else (int(crop[0]), int(crop[1])),
            mean=tuple(data["mean"]),
            std=tuple(data["std"]),
            resample=int(data["resample"]),
            rescale=float(data["rescale"]),
            round_longer_side=bool(data["round_longer_side"]),
            reducing_gap=data["reducing_gap"],
        )


EFFICIENTNET_LITE0 = Preprocessing(
    size=256,
    crop=(224, 224),
    mean=(0.5, 0.5, 0.5),
    std=(0.5, 0.5, 0.5),
    resample=Image.Resampling.BICUBIC,
    round_longer_side=True,
    reducing_gap=2.0,
)


def from_processor_config(folder: Path) -> Preprocessing:
    """The preprocessing a saved transformers image processor (ViT, DINOv2's Bit) applies."""
    config = json.loads((folder / PROCESSOR_CONFIG_FILE).read_text())
    size_config = config.get("size") or {}
    if not config.get("do_resize", True):
        raise ValueError(f"{folder}: processors that do not resize are not supported")
    if "shortest_edge" in size_config:
        size: int | tuple[int, int] = int(size_config["shortest_edge"])
    else:
        size = (int(size_config["height"]), int(size_config["width"]))
    crop = None
    if config.get("do_center_crop"):
        crop_config = config["crop_size"]
        crop = (int(crop_config["height"]), int(crop_config["width"]))
    normalise = config.get("do_normalize", True)
    return Preprocessing(
        size=size,
        crop=crop,
        mean=tuple(config["image_mean"]) if normalise else (0.0, 0.0, 0.0),
        std=tuple(config["image_std"]) if normalise else (1.0, 1.0, 1.0),
        resample=int(config.get("resample", Image.Resampling.BILINEAR)),
        rescale=float(config.get("rescale_factor", 1 / 255))
        if config.get("do_rescale", True)
        else 1.0,
    )
