"""The graded evaluation set: photos labelled with what each tier means (README, Quality).

* **high** (near-duplicates, the pictures a user keeps one of): the same photo edited
  (:mod:`~photocluster.quality.edits`) and the frames of one burst;
* **medium** (the same scene): another shot moments apart, the subject clearly moved and
  the camera elsewhere; not a near-duplicate;
* **low** (the same subject or place): another part of the place, at another time.

Tiers nest, so a tier's positives include the stricter tiers' ones. Each source picture is
one *subject*, built with a seeded random generator into:

* scene 1: a *shot* (a window of the picture) in which a *subject* (a feathered cut-out of
  the picture) can move;
  * near-duplicate group ``a``: the shot, a burst of further frames (the camera shakes:
    shift, zoom, tilt, exposure; the subject moves a little) and edits of the shot;
  * near-duplicate group ``b``: another shot moments apart (the subject moved far, another
    window; for the stereo motorcycle, the other camera) and an edit of it;
* scene 2: another time: a quarter of the picture that shares at most a third of itself
  (or the least it can) with what scene 1's shots show, with another light.

Sources never seen together: each source belongs to one *split* (``calibration`` or
``evaluation``, fixed by a hash of its name), so thresholds fitted on one are checked on
photos they never saw, in addition to other seeds.
"""

from __future__ import annotations

import functools
import hashlib
import io
import itertools
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter

from photocluster.quality import Split, edits

#: What made an image, beside its edit families: reports give the recall of each.
#: Source names of the real photographs (``photo-castle``), apart from the samples'.
PHOTO_PREFIX = "photo-"
KINDS = ("original", "edit", "burst", "other-shot", "other-time", "singleton")
#: Another time shows a quarter of the picture, sharing at most a third of itself with what
#: either shot of scene 1 shows where the picture allows (else the least it can): the same
#: place, not the same pixels re-lit (those would be a near-duplicate by the tiers' own
#: meaning).
OTHER_TIME_AREA = 0.25
OTHER_TIME_SHARED = 1 / 3


@dataclass(frozen=True)
class GradedSample:
    """One image and its labels at the three tiers (None: it belongs with no other)."""

    name: str
    image: Image.Image = field(repr=False)
    source: str
    subject: str | None
    scene: str | None
    duplicate: str | None
    kind: str
    families: tuple[str, ...] = ()

    @property
    def group(self) -> str | None:
        """The folder it is written to: its subject."""
        return self.subject

    def jpeg_bytes(self, quality: int = 90) -> bytes:
        buffer = io.BytesIO()
        self.image.save(buffer, format="JPEG", quality=quality)
        return buffer.getvalue()

    def manifest_row(self) -> dict[str, object]:
        return {
            "source": self.source,
            "subject": self.subject,
            "scene": self.scene,
            "duplicate": self.duplicate,
            "kind": self.kind,
            "families": list(self.families),
        }


def split_of(source: str) -> Split:
    """The split a source belongs to, for good: two in five are held out for evaluation."""
    digest = hashlib.blake2b(source.encode(), digest_size=4).digest()
    return "evaluation" if int.from_bytes(digest) % 5 < 2 else "calibration"


def build_graded(
    seed: int = 0,
    split: Split = "evaluation",
    edits_per_shot: int = 5,
    burst_frames: int = 3,
    max_side: int = 640,
    subjects: int | None = None,
) -> list[GradedSample]:
    """The graded set of ``split``'s sources (``subjects`` caps how many become subjects)."""
    from photocluster.quality.evalset import SINGLETON_SOURCES

    chosen = [s for s in subject_sources() if split == "all" or split_of(s) == split]
    chosen = chosen[:subjects] if subjects is not None else chosen
    families = _family_cycle(seed)
    samples: list[GradedSample] = []
    for source in chosen:
        rng = random.Random(f"{seed}-{source}")  # noqa: S311 - reproducible, not secrets
        pictures = _pictures(source, max_side * 2)
        samples += _subject(source, pictures, rng, families, edits_per_shot, burst_frames, max_side)
    for source in SINGLETON_SOURCES:
        if split == "all" or split_of(source) == split:
            picture = _pictures(source, max_side)[0]
            samples.append(GradedSample(source, picture, source, None, None, None, "singleton"))
    return samples


def subject_sources() -> list[str]:
    """The pictures that become subjects: the packages' samples, then the real photographs
    (README, Quality). Missing photo packages are an error, not a smaller set: every seed
    must mean the same photos on every machine."""
    from photocluster.quality import photos
    from photocluster.quality.evalset import GROUP_SOURCES

    missing = photos.missing_packages()
    if missing:
        raise FileNotFoundError(
            f"the evaluation set's photographs are not installed ({', '.join(missing)}): "
            "run `make system-tools`"
        )
    return [*GROUP_SOURCES, *(f"{PHOTO_PREFIX}{p.name}" for p in photos.real_photos())]


@functools.lru_cache(maxsize=256)
def _pictures(source: str, max_side: int) -> list[Image.Image]:
    """A source's picture(s), decoded once per process (photos take up to a second)."""
    from photocluster.quality import photos
    from photocluster.quality.evalset import source_pictures

    if source.startswith(PHOTO_PREFIX):
        name = source.removeprefix(PHOTO_PREFIX)
        photo = next(p for p in photos.real_photos() if p.name == name)
        return [photos.load(photo, max_side)]
    return [_fit(p, max_side) for p in source_pictures(source)]


def _family_cycle(seed: int) -> Iterator[str]:
    """Every family in turn (shuffled per seed), so each is drawn about as often."""
    names = sorted(edits.FAMILIES)
    random.Random(seed).shuffle(names)  # noqa: S311
    return itertools.cycle(names)


def _subject(
    source: str,
    pictures: list[Image.Image],
    rng: random.Random,
    families: Iterator[str],
    edits_per_shot: int,
    burst_frames: int,
    max_side: int,
) -> list[GradedSample]:
    made = _Made(source, max_side)
    picture = pictures[0]
    stage = _Stage.of(picture, rng)
    window = _window(picture.size, rng.uniform(0.3, 0.4), rng)
    shot = _fit(picture.crop(window), max_side)
    made.add("shot", shot, "a", "original")
    for k in range(edits_per_shot):
        chosen: tuple[str, ...] = (next(families),)
        if rng.random() < 0.3:  # a second edit on top, as people combine them
            chosen += tuple({rng.choice(sorted(edits.FAMILIES))} - set(chosen))
        edited = shot
        for family in chosen:
            edited = edits.FAMILIES[family](edited, rng)
        made.add(f"edit{k}", edited, "a", "edit", chosen)
    direction = rng.choice((-1, 1))
    for k in range(1, burst_frames + 1):
        step = direction * k * rng.uniform(0.02, 0.05) * picture.width
        moved = stage.with_subject_at(step, rng.uniform(-0.02, 0.02) * picture.height)
        frame, _ = _camera(moved, window, rng, rng.uniform(0.96, 1.04), shake=0.03, tilt=2.0)
        made.add(f"burst{k}", frame, "a", "burst", ("burst",))
    other, seen = _other_shot(pictures, stage, window, -direction, rng)
    other = _fit(other, max_side)
    made.add("other-shot", other, "b", "other-shot", ("other-shot",))
    family = next(families)
    made.add("other-shot-edit", edits.FAMILIES[family](other, rng), "b", "edit", (family,))
    elsewhere = _elsewhere(picture, OTHER_TIME_AREA, away_from=(window, seen))
    lit = _other_light(picture.crop(elsewhere), rng)
    made.add("other-time", lit, None, "other-time", ("other-time",))
    return made.samples


@dataclass
class _Made:
    """The samples of one subject: scene 1 holds near-duplicate groups ``a`` and ``b``;
    a sample of no group is scene 2 (another time)."""

    source: str
    max_side: int
    samples: list[GradedSample] = field(default_factory=list)

    def add(
        self,
        name: str,
        image: Image.Image,
        group: str | None,
        kind: str,
        families: tuple[str, ...] = (),
    ) -> None:
        scene = f"{self.source}/1" if group else f"{self.source}/2"
        duplicate = f"{scene}{group}" if group else None
        picture = _fit(image, self.max_side)
        self.samples.append(
            GradedSample(
                f"{self.source}-{name}",
                picture,
                self.source,
                self.source,
                scene,
                duplicate,
                kind,
                families,
            )
        )


def _other_shot(
    pictures: list[Image.Image], stage: _Stage, window: Box, direction: int, rng: random.Random
) -> tuple[Image.Image, Box]:
    """Another shot moments apart, and the part of the picture it shows: the subject moved
    far and the camera moved and zoomed; for the stereo motorcycle, the other camera."""
    if len(pictures) > 1:
        return pictures[1].crop(window), window
    picture = pictures[0]
    far = direction * rng.uniform(0.3, 0.5) * picture.width
    moved = stage.with_subject_at(far, rng.uniform(-0.1, 0.1) * picture.height)
    zoom = rng.choice((rng.uniform(0.7, 0.8), rng.uniform(1.2, 1.3)))
    return _camera(moved, _shifted(window, picture.size, rng), rng, zoom, shake=0, tilt=4)


Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class _Stage:
    """A picture whose subject (an elliptical cut-out of it, feathered) can move."""

    picture: Image.Image
    background: Image.Image  # the subject's place filled with a blur of its surroundings
    subject: Image.Image  # RGBA
    home: tuple[int, int]

    @classmethod
    def of(cls, picture: Image.Image, rng: random.Random) -> _Stage:
        side = round(min(picture.size) * rng.uniform(0.25, 0.35))
        pixels = np.asarray(picture.convert("L"), dtype=np.float32)
        candidates = [
            (rng.randint(0, picture.width - side), rng.randint(0, picture.height - side))
            for _ in range(8)
        ]
        x, y = max(
            candidates, key=lambda c: float(pixels[c[1] : c[1] + side, c[0] : c[0] + side].std())
        )
        mask = Image.new("L", (side, side), 0)
        ImageDraw.Draw(mask).ellipse(
            (side // 10, side // 10, side - side // 10, side - side // 10), fill=255
        )
        mask = mask.filter(ImageFilter.GaussianBlur(side / 14))
        box = (x, y, x + side, y + side)
        subject = picture.crop(box)
        subject.putalpha(mask)
        background = picture.copy()
        background.paste(
            picture.filter(ImageFilter.GaussianBlur(side / 3)).crop(box), box[:2], mask
        )
        return cls(picture, background, subject, (x, y))

    def with_subject_at(self, dx: float, dy: float) -> Image.Image:
        """The picture with its subject moved by (dx, dy), kept inside the picture."""
        width, height = self.picture.size
        x = int(np.clip(self.home[0] + dx, 0, width - self.subject.width))
        y = int(np.clip(self.home[1] + dy, 0, height - self.subject.height))
        canvas = self.background.copy()
        canvas.paste(self.subject, (x, y), self.subject)
        return canvas


def _window(size: tuple[int, int], area: float, rng: random.Random) -> Box:
    """A box of ``area`` of the picture, anywhere."""
    width, height = size
    w, h = round(width * area**0.5), round(height * area**0.5)
    left, top = rng.randint(0, width - w), rng.randint(0, height - h)
    return (left, top, left + w, top + h)


def _elsewhere(picture: Image.Image, area: float, away_from: Sequence[Box]) -> Box:
    """A box of ``area`` of the picture that shares at most ``OTHER_TIME_SHARED`` of itself
    (or the least it can) with each of ``away_from``: of those places (a 9 x 9 grid), the
    most detailed one, so that it shows the place and not a patch of plain sky."""
    width, height = picture.size
    w, h = round(width * area**0.5), round(height * area**0.5)
    boxes = [
        (x, y, x + w, y + h)
        for x in np.linspace(0, width - w, 9).round().astype(int).tolist()
        for y in np.linspace(0, height - h, 9).round().astype(int).tolist()
    ]
    shared = [max(_shared(box, other) for other in away_from) / (w * h) for box in boxes]
    allowed = max(OTHER_TIME_SHARED, min(shared))
    pixels = np.asarray(picture.convert("L"), dtype=np.float32)
    return max(
        (box for box, part in zip(boxes, shared, strict=True) if part <= allowed),
        key=lambda b: float(pixels[b[1] : b[3], b[0] : b[2]].std()),
    )


def _shared(a: Box, b: Box) -> int:
    """The area two boxes share."""
    return max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))


def _shifted(window: Box, size: tuple[int, int], rng: random.Random) -> Box:
    """The camera moved: the window shifted by 25-40% of its size, towards the side with
    the more room in each direction."""
    w, h = window[2] - window[0], window[3] - window[1]
    moves = []
    for start, extent, total in ((window[0], w, size[0]), (window[1], h, size[1])):
        room_before, room_after = start, total - start - extent
        step = rng.uniform(0.25, 0.4) * extent
        moves.append(
            round(min(step, room_after) if room_after >= room_before else -min(step, room_before))
        )
    return (window[0] + moves[0], window[1] + moves[1], window[2] + moves[0], window[3] + moves[1])


def _camera(
    picture: Image.Image,
    window: Box,
    rng: random.Random,
    scale: float,
    shake: float,
    tilt: float,
) -> tuple[Image.Image, Box]:
    """What a hand-held camera aimed at ``window`` records, and the part of the picture it
    shows: shifted by up to ``shake`` of the picture, the field of view times ``scale``,
    tilted, exposed."""
    width, height = picture.size
    w, h = window[2] - window[0], window[3] - window[1]
    cw, ch = min(width, round(w * scale)), min(height, round(h * scale))
    cx = (window[0] + window[2]) / 2 + rng.uniform(-shake, shake) * width
    cy = (window[1] + window[3]) / 2 + rng.uniform(-shake, shake) * height
    left = int(np.clip(cx - cw / 2, 0, width - cw))
    top = int(np.clip(cy - ch / 2, 0, height - ch))
    frame = picture.crop((left, top, left + cw, top + ch)).resize((w, h), Image.Resampling.BICUBIC)
    angle = rng.uniform(-tilt, tilt)
    margin = 1 + 0.03 * abs(angle)
    frame = frame.rotate(angle, resample=Image.Resampling.BICUBIC).crop(
        (
            round(w * (1 - 1 / margin) / 2),
            round(h * (1 - 1 / margin) / 2),
            round(w * (1 + 1 / margin) / 2),
            round(h * (1 + 1 / margin) / 2),
        )
    )
    exposed = ImageEnhance.Brightness(frame).enhance(rng.uniform(0.85, 1.15))
    return exposed, (left, top, left + cw, top + ch)


def _other_light(picture: Image.Image, rng: random.Random) -> Image.Image:
    """Another time of day: darker or brighter, warmer or cooler, flatter."""
    pixels = np.asarray(picture, dtype=np.float32) / 255
    exposure = rng.choice((rng.uniform(0.5, 0.75), rng.uniform(1.2, 1.4)))
    tint = np.array(rng.choice(([1.15, 1.0, 0.8], [0.8, 0.95, 1.2])), dtype=np.float32)
    pixels = (0.1 + 0.85 * pixels) * exposure * tint
    return Image.fromarray((np.clip(pixels, 0, 1) * 255).astype(np.uint8))


def _fit(image: Image.Image, max_side: int) -> Image.Image:
    if max(image.size) <= max_side:
        return image
    scale = max_side / max(image.size)
    return image.resize(
        (round(image.width * scale), round(image.height * scale)), Image.Resampling.LANCZOS
    )


def counts(samples: Sequence[GradedSample]) -> dict[str, int]:
    """How many images of each kind, and subjects."""
    out = {kind: sum(1 for s in samples if s.kind == kind) for kind in KINDS}
    out["subjects"] = len({s.subject for s in samples if s.subject})
    return out
