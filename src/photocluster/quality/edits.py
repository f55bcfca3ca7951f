"""Edit families: what people do to a photo that leaves it the same photo (near-duplicates).

Each family takes a picture and a seeded ``random.Random`` and draws its own parameters per
image, so one family covers a range (a crop keeps 30 to 90% of the area). The families
follow what copy-detection benchmarks and photo apps apply: crops, straightening,
perspective, stickers and captions, screenshots with the phone's bars, blur, sensor noise,
heavy JPEG, thumbnails scaled back up, grayscale, filters, flips, padding, resizing and
colour changes.
"""

from __future__ import annotations

import io
import math
import random
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont, ImageOps

Edit = Callable[[Image.Image, random.Random], Image.Image]

#: Captions people add (the small edits set of evalset draws from the first eight).
WORDS = ("holiday", "2024", "best day", "me & you", "lol", "#sunset", "family", "wow", "miss u")
Range = tuple[float, float]


def crop(
    image: Image.Image,
    rng: random.Random,
    areas: Range = (0.3, 0.9),
    aspects: Range = (0.8, 1.25),
) -> Image.Image:
    """Keep 30-90% of the area, anywhere, at an aspect near the original's."""
    area = rng.uniform(*areas)
    aspect = rng.uniform(*aspects)
    width = min(image.width, round(image.width * (area * aspect) ** 0.5))
    height = min(image.height, round(image.height * (area / aspect) ** 0.5))
    left = rng.randint(0, image.width - width)
    top = rng.randint(0, image.height - height)
    return image.crop((left, top, left + width, top + height))


def rotate(image: Image.Image, rng: random.Random) -> Image.Image:
    """Straighten by 3-15 degrees, then crop the corners away as photo apps do."""
    angle = rng.choice((-1, 1)) * rng.uniform(3, 15)
    turned = image.rotate(angle, resample=Image.Resampling.BICUBIC)
    # the largest axis-aligned box free of the filled corners, centred
    radians = math.radians(abs(angle))
    shrink = math.cos(radians) + max(image.size) / min(image.size) * math.sin(radians)
    width, height = round(image.width / shrink), round(image.height / shrink)
    left, top = (image.width - width) // 2, (image.height - height) // 2
    return turned.crop((left, top, left + width, top + height))


def perspective(image: Image.Image, rng: random.Random) -> Image.Image:
    """A keystone: the picture photographed again from a little off its axis."""
    width, height = image.size
    strength = rng.uniform(0.05, 0.15)
    dx, dy = strength * width, strength * height
    corners = [
        (rng.uniform(0, dx), rng.uniform(0, dy)),
        (width - rng.uniform(0, dx), rng.uniform(0, dy)),
        (width - rng.uniform(0, dx), height - rng.uniform(0, dy)),
        (rng.uniform(0, dx), height - rng.uniform(0, dy)),
    ]
    target = [(0.0, 0.0), (float(width), 0.0), (float(width), float(height)), (0.0, float(height))]
    coefficients = _perspective_coefficients(target, corners)
    return image.transform(
        image.size, Image.Transform.PERSPECTIVE, coefficients, Image.Resampling.BICUBIC
    )


def _perspective_coefficients(
    target: list[tuple[float, float]], source: list[tuple[float, float]]
) -> tuple[float, ...]:
    rows = []
    for (x, y), (u, v) in zip(target, source, strict=True):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
    solution = np.linalg.solve(np.array(rows), np.array(source).reshape(8))
    return tuple(float(c) for c in solution)


def stickers(image: Image.Image, rng: random.Random) -> Image.Image:
    """One to four coloured stickers (discs, stars, hearts) over the picture."""
    image = image.copy()
    draw = ImageDraw.Draw(image)
    for _ in range(rng.randint(1, 4)):
        size = round(min(image.size) * rng.uniform(0.08, 0.22))
        x = rng.randint(0, max(0, image.width - size))
        y = rng.randint(0, max(0, image.height - size))
        fill = rng.choice([(255, 204, 0), (255, 60, 120), (60, 200, 255), (120, 255, 120)])
        shape = rng.choice(("disc", "star", "heart"))
        if shape == "disc":
            draw.ellipse((x, y, x + size, y + size), fill=fill, outline=(0, 0, 0), width=2)
        elif shape == "star":
            draw.polygon(_star(x + size / 2, y + size / 2, size / 2), fill=fill)
        else:
            half = size / 2
            draw.ellipse((x, y, x + half, y + half), fill=fill)
            draw.ellipse((x + half, y, x + size, y + half), fill=fill)
            draw.polygon(
                [(x, y + half / 2), (x + size, y + half / 2), (x + half, y + size)], fill=fill
            )
    return image


def _star(cx: float, cy: float, radius: float) -> list[tuple[float, float]]:
    points = []
    for k in range(10):
        r = radius if k % 2 == 0 else radius * 0.45
        angle = math.pi / 2 + k * math.pi / 5
        points.append((cx + r * math.cos(angle), cy - r * math.sin(angle)))
    return points


def caption(
    image: Image.Image,
    rng: random.Random,
    size_divisors: tuple[int, int] = (5, 10),
    words: tuple[str, ...] = WORDS,
) -> Image.Image:
    """A caption in a large outlined font (a fifth to a tenth of the height), anywhere."""
    image = image.copy()
    draw = ImageDraw.Draw(image)
    size = max(12, image.height // rng.randint(*size_divisors))
    font = ImageFont.load_default(size=size)
    text = rng.choice(words)
    x = rng.randint(0, max(0, image.width - size * len(text) // 2))
    y = rng.randint(0, max(0, image.height - size))
    draw.text(
        (x, y),
        text,
        fill=rng.choice([(255, 255, 255), (255, 230, 0), (0, 0, 0)]),
        font=font,
        stroke_width=max(1, size // 12),
        stroke_fill=(0, 0, 0),
    )
    return image


def screenshot(image: Image.Image, rng: random.Random) -> Image.Image:
    """The picture as a phone shows it, captured: portrait screen, status bar, app bars."""
    screen_width = rng.choice((360, 390, 414))
    screen = (screen_width, round(screen_width * rng.uniform(1.9, 2.2)))
    dark = rng.random() < 0.5
    background = (0, 0, 0) if dark else (250, 250, 250)
    ink = (255, 255, 255) if dark else (20, 20, 20)
    canvas = Image.new("RGB", screen, background)
    scale = screen[0] / image.width
    shown = image.resize(
        (screen[0], max(1, round(image.height * scale))), Image.Resampling.BILINEAR
    )
    top = max(0, (screen[1] - shown.height) // 2 + rng.randint(-40, 40))
    canvas.paste(shown, (0, top))
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=14)
    draw.rectangle((0, 0, screen[0], 28), fill=background)
    draw.text((12, 6), f"{rng.randint(7, 23)}:{rng.randint(0, 59):02d}", fill=ink, font=font)
    draw.rectangle((screen[0] - 40, 9, screen[0] - 14, 19), outline=ink, width=2)
    bar = rng.randint(44, 64)
    draw.rectangle((0, screen[1] - bar, screen[0], screen[1]), fill=background)
    for k in range(4):
        x = screen[0] * (k + 0.5) / 4
        draw.ellipse(
            (x - 9, screen[1] - bar / 2 - 9, x + 9, screen[1] - bar / 2 + 9), outline=ink, width=2
        )
    return canvas


def blur(image: Image.Image, rng: random.Random, radii: Range = (1.0, 3.0)) -> Image.Image:
    return image.filter(ImageFilter.GaussianBlur(rng.uniform(*radii)))


def noise(image: Image.Image, rng: random.Random) -> Image.Image:
    """Sensor noise, as from a dark room or a cheap camera."""
    pixels = np.asarray(image, dtype=np.float32)
    generator = np.random.default_rng(rng.getrandbits(32))
    noisy = pixels + generator.normal(0, rng.uniform(6, 22), pixels.shape)
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


def jpeg(
    image: Image.Image, rng: random.Random, qualities: tuple[int, int] = (5, 30)
) -> Image.Image:
    """Re-encoded hard, as messaging apps do (quality 5-30)."""
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=rng.randint(*qualities))
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def thumbnail(image: Image.Image, rng: random.Random) -> Image.Image:
    """A thumbnail (64-160 px) scaled back up to the original size."""
    side = rng.randint(64, 160)
    small = image.copy()
    small.thumbnail((side, side), Image.Resampling.BILINEAR)
    return small.resize(image.size, Image.Resampling.BICUBIC)


def grayscale(image: Image.Image, rng: random.Random) -> Image.Image:
    del rng
    return ImageOps.grayscale(image).convert("RGB")


def photo_filter(image: Image.Image, rng: random.Random) -> Image.Image:
    """An app filter: sepia, warm, cool, faded or punchy, sometimes with a vignette."""
    pixels = np.asarray(image, dtype=np.float32) / 255
    kind = rng.choice(("sepia", "warm", "cool", "faded", "punchy"))
    if kind == "sepia":
        sepia = np.array([[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]])
        pixels = pixels @ sepia.T.astype(np.float32)
    elif kind == "warm":
        pixels = pixels * np.array([1.12, 1.0, 0.82], dtype=np.float32)
    elif kind == "cool":
        pixels = pixels * np.array([0.85, 1.0, 1.15], dtype=np.float32)
    elif kind == "faded":
        pixels = 0.15 + 0.75 * pixels
    else:
        pixels = 0.5 + (pixels - 0.5) * 1.5
    if rng.random() < 0.5:
        height, width = pixels.shape[:2]
        y, x = np.ogrid[-1 : 1 : height * 1j, -1 : 1 : width * 1j]
        pixels = (
            pixels * (1 - rng.uniform(0.2, 0.5) * np.clip(x * x + y * y - 0.3, 0, None))[..., None]
        )
    return Image.fromarray((np.clip(pixels, 0, 1) * 255).astype(np.uint8))


def flip(image: Image.Image, rng: random.Random) -> Image.Image:
    del rng
    return ImageOps.mirror(image)


def padding(image: Image.Image, rng: random.Random) -> Image.Image:
    """Letterbox or pillarbox to another aspect, on a plain or blurred background."""
    target = rng.choice((16 / 9, 4 / 5, 1.0, 9 / 16))
    width, height = image.size
    size = (
        (round(height * target), height)
        if width / height < target
        else (width, round(width / target))
    )
    if rng.random() < 0.5:
        canvas = image.resize(size).filter(ImageFilter.GaussianBlur(20))
    else:
        canvas = Image.new("RGB", size, rng.choice([(0, 0, 0), (255, 255, 255), (30, 30, 30)]))
    canvas.paste(image, ((size[0] - width) // 2, (size[1] - height) // 2))
    return canvas


def resize(image: Image.Image, rng: random.Random) -> Image.Image:
    scale = rng.uniform(0.3, 0.8)
    return image.resize(
        (max(32, round(image.width * scale)), max(32, round(image.height * scale))),
        Image.Resampling.BILINEAR,
    )


def colour(image: Image.Image, rng: random.Random, spread: float = 0.4) -> Image.Image:
    """Brightness, contrast and saturation each times 1 +- ``spread``."""
    for enhancer in (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color):
        image = enhancer(image).enhance(rng.uniform(1 - spread, 1 + spread))
    return image


#: The families, by the name reports use.
FAMILIES: dict[str, Edit] = {
    "crop": crop,
    "rotate": rotate,
    "perspective": perspective,
    "stickers": stickers,
    "caption": caption,
    "screenshot": screenshot,
    "blur": blur,
    "noise": noise,
    "jpeg": jpeg,
    "thumbnail": thumbnail,
    "grayscale": grayscale,
    "filter": photo_filter,
    "flip": flip,
    "padding": padding,
    "resize": resize,
    "colour": colour,
}
