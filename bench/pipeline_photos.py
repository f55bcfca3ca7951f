"""The pipeline benchmark's photos: made from the project's own photographs, seeded.

Phones send 1,000-4,000 px JPEGs; a library holds bursts and other shots of a few topics
beside unrelated photos. Two shapes, so that no one flatters the pipeline:

* ``topics``: 8 photographs, many shots of each (another framing, a zoom, a small turn,
  the light changed): every photo's nearest are related, and the copy check works hardest;
* ``mixed``: every photograph, a few shots of each, some of them edited copies (a caption,
  a screenshot, padding) and some re-sent whole.

Each photo: 1,000-4,000 px on its longer side, JPEG quality 85-95.
"""

from __future__ import annotations

import io
import random
from collections.abc import Callable
from pathlib import Path

from PIL import Image

from photocluster.quality import edits, photos

SHAPES = ("topics", "mixed")
TOPICS = 8


def make(shape: str, n: int, seed: int, folder: Path) -> list[Path]:
    """``n`` photos of ``shape`` written to ``folder`` (kept there: both runs of a shape
    send the same bytes); the paths, in upload order."""
    if shape not in SHAPES:
        raise ValueError(f"shape is one of {', '.join(SHAPES)}, not {shape!r}")
    sources = photos.real_photos()
    if not sources:
        raise FileNotFoundError(
            "no photographs: install the packages of photocluster.quality.photos "
            "(make system-tools)"
        )
    rng = random.Random(f"{shape}-{seed}")
    chosen = rng.sample(sources, min(TOPICS, len(sources))) if shape == "topics" else sources
    pictures = [photos.load(photo, max_side=2560) for photo in chosen]
    folder.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    sent: list[bytes] = []
    for index in range(n):
        if shape == "mixed" and sent and rng.random() < 0.05:
            data = rng.choice(sent)  # the same photo sent again, under another name
        else:
            picture = _shot(rng.choice(pictures), rng, shape)
            data = _jpeg(picture, rng)
            sent.append(data)
        path = folder / f"{shape}-{seed}-{index:04d}.jpg"
        path.write_bytes(data)
        paths.append(path)
    return paths


_EDITS: list[Callable[[Image.Image, random.Random], Image.Image]] = [
    edits.colour,
    edits.rotate,
    edits.noise,
    edits.blur,
]
_COPIES: list[Callable[[Image.Image, random.Random], Image.Image]] = [
    edits.caption,
    edits.screenshot,
    edits.padding,
]


def _shot(picture: Image.Image, rng: random.Random, shape: str) -> Image.Image:
    """Another shot of ``picture``: a framing of 30-95% of it, sometimes edited."""
    shot = edits.crop(picture, rng, areas=(0.3, 0.95))
    if rng.random() < 0.4:
        shot = rng.choice(_EDITS)(shot, rng)
    if shape == "mixed" and rng.random() < 0.15:
        shot = rng.choice(_COPIES)(shot, rng)
    return shot.convert("RGB")


def _jpeg(picture: Image.Image, rng: random.Random) -> bytes:
    """The shot as a phone's JPEG: 1,000-4,000 px on its longer side, quality 85-95."""
    side = rng.randint(1000, 4000)
    scale = side / max(picture.size)
    size = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
    buffer = io.BytesIO()
    picture.resize(size, Image.Resampling.BICUBIC).save(
        buffer, format="JPEG", quality=rng.randint(85, 95)
    )
    return buffer.getvalue()
