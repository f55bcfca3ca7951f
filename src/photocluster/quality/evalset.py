"""Source pictures, a small set of edited photo groups, and labelled folders on disk.

Sources: scikit-image's and scikit-learn's bundled sample images (23 distinct pictures:
portraits, a cat, coffee, a rocket, a stereo pair of a motorcycle, micrographs, textures,
scanned text...). :func:`build` makes the *small edits set*: each group is one source
picture in several versions with mild copy-detection-style edits (crop to 50-90% of the
area, downscale, JPEG quality 20-90, mirror, rotate up to 10 degrees, colour jitter, blur,
overlaid text, letterbox padding). The demo, the benchmarks, the ONNX fidelity checks and
int8 calibration use it; the quality evaluation uses the graded set of
:mod:`~photocluster.quality.scenes` instead. :func:`write` puts either on disk as one folder
per group plus ``singletons/`` (the layout ``photocluster eval`` reads) with a
``manifest.json``; :func:`read_set` reads it back, with the labels of every tier.
"""

from __future__ import annotations

import io
import json
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from PIL import Image

from photocluster.quality import edits

SINGLETONS_DIR = "singletons"
MANIFEST = "manifest.json"

#: Sources turned into groups, then the ones used as singletons (order matters for seeds).
GROUP_SOURCES = (
    "astronaut",
    "coffee",
    "chelsea",
    "rocket",
    "hubble_deep_field",
    "immunohistochemistry",
    "retina",
    "colorwheel",
    "camera",
    "coins",
    "moon",
    "clock",
    "motorcycle",
    "china",
    "flower",
    "cell",
)
SINGLETON_SOURCES = (
    "logo",
    "page",
    "text",
    "brick",
    "grass",
    "gravel",
    "microaneurysms",
    "horse",
    "checkerboard",
)


def source_pictures(name: str) -> list[Image.Image]:
    """The picture(s) of one source: two for the stereo pair, one otherwise."""
    from skimage import data

    if name == "motorcycle":
        left, right, _ = data.stereo_motorcycle()  # type: ignore[no-untyped-call]
        return [Image.fromarray(left), Image.fromarray(right)]
    if name in ("china", "flower"):
        from sklearn.datasets import load_sample_image

        return [Image.fromarray(load_sample_image(f"{name}.jpg"))]
    array = getattr(data, name)()
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    image = Image.fromarray(array)
    if image.mode == "RGBA":
        background = Image.new("RGB", image.size, (255, 255, 255))
        background.paste(image, mask=image.getchannel("A"))
        image = background
    return [image.convert("RGB")]


# ---------------------------------------------------------------------------- edits


def rotate(image: Image.Image, rng: random.Random) -> Image.Image:
    return image.rotate(rng.uniform(-10, 10), resample=Image.Resampling.BICUBIC)


def letterbox(image: Image.Image, rng: random.Random) -> Image.Image:
    target = rng.choice((16 / 9, 1.0, 9 / 16))
    width, height = image.size
    if width / height < target:
        size = (round(height * target), height)
    else:
        size = (width, round(width / target))
    canvas = Image.new("RGB", size, rng.choice([(0, 0, 0), (255, 255, 255)]))
    canvas.paste(image, ((size[0] - width) // 2, (size[1] - height) // 2))
    return canvas


#: The small set's edits: the graded set's families (quality.edits) at milder settings.
EDITS: dict[str, edits.Edit] = {
    "crop": partial(edits.crop, areas=(0.5, 0.9), aspects=(0.85, 1.15)),
    "downscale": edits.resize,
    "jpeg": partial(edits.jpeg, qualities=(20, 90)),
    "mirror": edits.flip,
    "rotate": rotate,
    "colour": partial(edits.colour, spread=0.3),
    "blur": partial(edits.blur, radii=(1.0, 2.5)),
    "text": partial(edits.caption, size_divisors=(6, 10), words=edits.WORDS[:8]),
    "letterbox": letterbox,
}


# ---------------------------------------------------------------------------- the set


@dataclass(frozen=True)
class Sample:
    """One image of the set: its file name (no extension), group (None: singleton), edits."""

    name: str
    group: str | None
    image: Image.Image = field(repr=False)
    edits: tuple[str, ...] = ()

    def jpeg_bytes(self, quality: int = 90) -> bytes:
        buffer = io.BytesIO()
        self.image.save(buffer, format="JPEG", quality=quality)
        return buffer.getvalue()

    def manifest_row(self) -> dict[str, object]:
        return {"group": self.group, "edits": list(self.edits)}


def build(
    seed: int = 0,
    groups: int = len(GROUP_SOURCES),
    per_group: int = 5,
    singletons: int = len(SINGLETON_SOURCES),
    max_side: int = 640,
) -> list[Sample]:
    """The samples: ``groups`` groups of ``per_group`` versions, plus ``singletons``."""
    if not 1 <= groups <= len(GROUP_SOURCES) or not 0 <= singletons <= len(SINGLETON_SOURCES):
        raise ValueError(
            f"at most {len(GROUP_SOURCES)} groups and "
            f"{len(SINGLETON_SOURCES)} singletons are available"
        )
    if per_group < 2:
        raise ValueError("a group needs at least 2 images")
    samples: list[Sample] = []
    for name in GROUP_SOURCES[:groups]:
        rng = random.Random(f"{seed}-{name}")  # noqa: S311 - reproducible edits, not secrets
        originals = [_fit(image, max_side) for image in source_pictures(name)]
        for version in range(per_group):
            if version < len(originals):
                samples.append(Sample(f"{name}-{version}", name, originals[version]))
                continue
            image = originals[version % len(originals)]
            edits = tuple(rng.sample(sorted(EDITS), k=rng.choice((1, 2, 2, 3))))
            for edit in edits:
                image = EDITS[edit](image, rng)
            samples.append(Sample(f"{name}-{version}", name, image, edits))
    for name in SINGLETON_SOURCES[:singletons]:
        samples.append(Sample(name, None, _fit(source_pictures(name)[0], max_side)))
    return samples


def _fit(image: Image.Image, max_side: int) -> Image.Image:
    if max(image.size) <= max_side:
        return image
    scale = max_side / max(image.size)
    return image.resize(
        (round(image.width * scale), round(image.height * scale)), Image.Resampling.LANCZOS
    )


class WritableSample(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def group(self) -> str | None: ...

    def jpeg_bytes(self, quality: int = 90) -> bytes: ...

    def manifest_row(self) -> dict[str, object]: ...


def write(samples: Sequence[WritableSample], out: Path, seed: int, split: str = "") -> Path:
    """Write the set as ``out/{group}/{name}.jpg`` and ``out/singletons/{name}.jpg``, and
    ``manifest.json``: each file's labels (version 2: at every tier) and edits."""
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for sample in samples:
        folder = out / (sample.group or SINGLETONS_DIR)
        folder.mkdir(exist_ok=True)
        path = folder / f"{sample.name}.jpg"
        path.write_bytes(sample.jpeg_bytes())
        rows.append({"file": str(path.relative_to(out)), **sample.manifest_row()})
    graded = all("duplicate" in row for row in rows)
    manifest = {"version": 2 if graded else 1, "seed": seed, "split": split, "images": rows}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return out


#: The tiers, loosest first, and the label of the set each is scored against.
TIER_LABELS = {"low": "subject", "medium": "scene", "high": "duplicate"}


@dataclass(frozen=True)
class LabelledImage:
    """An image of an evaluation folder and what it belongs with at each tier."""

    path: Path
    image_id: str
    group: str | None
    labels: Mapping[str, str | None] = field(default_factory=dict)
    kind: str = ""
    families: tuple[str, ...] = ()

    def label(self, tier: str) -> str | None:
        """Its label at ``tier``; a folder without graded labels uses its group at every tier."""
        return self.labels.get(tier, self.group) if self.labels else self.group


def read_set(folder: Path) -> list[LabelledImage]:
    """The images of an evaluation folder: one sub-folder per group, ``singletons/`` apart;
    a version-2 ``manifest.json`` adds each image's labels per tier, kind and edits."""
    from photocluster.ids import image_id_for_filename
    from photocluster.images import IMAGE_EXTENSIONS

    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder")
    graded = _graded_rows(folder)
    images = []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        group = None if sub.name == SINGLETONS_DIR else sub.name
        for path in sorted(sub.iterdir()):
            if path.suffix.lower().lstrip(".") in IMAGE_EXTENSIONS:
                name = f"{sub.name}--{path.name}"  # unique across folders
                row = graded.get(str(path.relative_to(folder)), {})
                images.append(
                    LabelledImage(
                        path,
                        image_id_for_filename(name),
                        group,
                        {tier: row[key] for tier, key in TIER_LABELS.items()} if row else {},
                        row.get("kind", ""),
                        tuple(row.get("families", ())),
                    )
                )
    if not images:
        raise FileNotFoundError(f"{folder}: no images in group sub-folders")
    return images


def _graded_rows(folder: Path) -> dict[str, dict[str, Any]]:
    manifest = folder / MANIFEST
    if not manifest.is_file():
        return {}
    data = json.loads(manifest.read_text())
    if data.get("version") != 2:
        return {}
    return {row["file"]: row for row in data["images"]}


def truth_at(images: Sequence[LabelledImage], tier: str) -> dict[str, str | None]:
    """Image id -> label at ``tier`` (what :func:`~photocluster.quality.metrics.score_tier`
    takes)."""
    return {item.image_id: item.label(tier) for item in images}
