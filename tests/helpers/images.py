"""Image bytes for tests, made with Pillow."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def picture(seed: int = 0, size: tuple[int, int] = (96, 64)) -> Image.Image:
    """A smooth random colour picture (compresses like a photo, unlike pure noise)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (4, 6, 3), dtype=np.uint8)
    return Image.fromarray(small).resize(size, Image.Resampling.BICUBIC)


def encode(image: Image.Image, fmt: str = "JPEG", **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def jpeg(seed: int = 0, size: tuple[int, int] = (96, 64)) -> bytes:
    return encode(picture(seed, size), "JPEG", quality=90)


def png(seed: int = 0, size: tuple[int, int] = (96, 64)) -> bytes:
    return encode(picture(seed, size), "PNG")


def webp(seed: int = 0, size: tuple[int, int] = (96, 64)) -> bytes:
    return encode(picture(seed, size), "WEBP")


def truncated_jpeg() -> bytes:
    data = jpeg(1, (400, 300))
    return data[: len(data) // 2]


def huge_png(megapixels: int = 100) -> bytes:
    """A valid PNG of ``megapixels`` million pixels (bilevel, so the file stays small)."""
    side = int((megapixels * 1_000_000) ** 0.5) + 1
    return encode(Image.new("1", (side, side)), "PNG")
