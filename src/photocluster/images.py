"""Decode, validate, orient and resize uploaded images (shared by ingest and the embedder).

Every path from bytes to pixels goes through :func:`decode_image`: a byte-size limit, a
pixel-count limit checked from the header before any pixel is decoded (decompression
bombs), a format allow-list, the first frame of animations, EXIF orientation, RGB with
transparency flattened on white. JPEGs are decoded at a reduced scale in the DCT domain
when only a small version is needed (``min_side``), which is most of ingest's speed; other
formats are reduced by the same factors right after decoding, before anything copies them.

Memory is bounded by bytes, not only pixels: a 186 KB PNG of 7,999 x 7,999 decodes to
192 MB. Each image's decoded size is known from its header (width x height x bytes a
pixel, after a JPEG's reduced scale), an image over the limit is refused as too large
before it is decoded, and a :class:`DecodeBudget` shared by a batch's decoding threads lets
only as many images decode at once as fit in it.
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import logging
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field

from PIL import Image, ImageOps, UnidentifiedImageError

from photocluster.config import Settings
from photocluster.errors import ImageTooLarge, InvalidImage, UnsupportedImage

log = logging.getLogger(__name__)

try:  # HEIC/HEIF from iPhones, when pillow-heif is installed
    import pillow_heif

    pillow_heif.register_heif_opener()
    HEIF_SUPPORTED = True
except ImportError:  # pragma: no cover - depends on the image's extras
    HEIF_SUPPORTED = False

#: Pillow format names accepted. MPO is what many phones' JPEGs open as.
ALLOWED_FORMATS = frozenset(
    {"JPEG", "MPO", "PNG", "WEBP", "GIF", "BMP"} | ({"HEIF"} if HEIF_SUPPORTED else set())
)
#: The photos the product accepts, by file extension (lower case, without the dot): the
#: upload route, ingest and backfill all read this. HEIC/HEIF decode where pillow-heif is
#: installed (the ingest and embedder images); the API, which never decodes, accepts them.
MEDIA_TYPES: dict[str, str] = {
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
    "gif": "image/gif",
    "bmp": "image/bmp",
    "heic": "image/heic",
    "heif": "image/heif",
}
IMAGE_EXTENSIONS = frozenset(MEDIA_TYPES)


def media_type_of(filename: str) -> str | None:
    """The media type a file name's extension stands for, or None if it is not a photo."""
    stem, dot, ext = filename.rpartition(".")
    return MEDIA_TYPES.get(ext.lower()) if dot and stem else None


#: Content types the inference server accepts for a single image.
IMAGE_CONTENT_TYPES = frozenset(MEDIA_TYPES.values()) | {"application/x-image"}


#: Bytes one decoded pixel takes, by Pillow mode (the largest for modes not listed).
_PIXEL_BYTES = {"1": 1, "L": 1, "P": 1, "LA": 2, "PA": 2, "RGB": 3, "YCbCr": 3, "RGBA": 4}
#: Modes that cannot be reduced as they are: converted to RGB(A) first (4 bytes a pixel).
_CONVERTED_FIRST = frozenset({"1", "P", "I;16", "I;16B", "I;16L", "I;16N"})
#: Decoders that hold more than the pixels at their peak (measured on 7,999 x 7,999 and
#: 4,000 x 3,000 images: Pillow's PNG decoder about twice its pixels; its WebP decoder
#: about 16 bytes a pixel whatever the mode). HEIF is taken to be like PNG.
_DECODER_FACTOR = {"PNG": 2, "HEIF": 2}
_DECODER_PIXEL_BYTES = {"WEBP": 16}


@dataclass(frozen=True)
class ImageLimits:
    """Limits applied to every decoded image (from Settings): the file's bytes, its pixels,
    and the memory its decoding takes (also the most a batch decodes at once)."""

    max_bytes: int = 40 * 1024 * 1024
    max_pixels: int = 64_000_000
    max_decoded_bytes: int = 512 * 1024 * 1024


def image_limits(settings: Settings) -> ImageLimits:
    """The deployment's limits (``PHOTOCLUSTER_IMAGE_MAX_*``)."""
    return ImageLimits(
        settings.image_max_bytes, settings.image_max_pixels, settings.image_max_decoded_bytes
    )


#: mallopt's parameter number for the size from which glibc maps allocations (malloc.h).
_M_MMAP_THRESHOLD = -3
#: Allocations from this size on are mapped, and unmapped when freed: a decoder's blocks
#: (Pillow's are 16 MB) go back to the OS, not to the decoding thread's arena.
FREED_TO_OS_FROM = 4 * 2**20


def free_large_blocks_to_the_os(threshold: int = FREED_TO_OS_FROM) -> bool:
    """Make glibc give every allocation of at least ``threshold`` bytes back to the OS when
    it is freed. By default glibc raises that threshold after the first large free, and
    each decoding thread's arena then keeps the pages of the largest image it decoded: a
    batch's memory grows to its threads times that image, whatever :class:`DecodeBudget`
    lets decode at once (ten 7,999 x 7,999 RGBA PNGs on 4 threads: 2,049 MB; 572 MB with
    this and the budget). Returns False where there is no glibc (nothing changes)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, threshold))
    except (OSError, AttributeError):
        return False


@dataclass
class DecodeBudget:
    """Decoded bytes a batch's threads may hold at once: an image waits until its share is
    free (one photo never takes the batch's others down with it)."""

    total: int
    _free: int = field(init=False)
    _changed: threading.Condition = field(default_factory=threading.Condition, repr=False)

    def __post_init__(self) -> None:
        self._free = self.total

    @contextlib.contextmanager
    def hold(self, cost: int) -> Iterator[None]:
        cost = min(cost, self.total)
        with self._changed:
            self._changed.wait_for(lambda: self._free >= cost)
            self._free -= cost
        try:
            yield
        finally:
            with self._changed:
                self._free += cost
                self._changed.notify_all()


def decode_image(
    data: bytes,
    limits: ImageLimits = ImageLimits(),
    min_side: int | None = None,
    budget: DecodeBudget | None = None,
) -> Image.Image:
    """Decode ``data`` into an upright RGB image, or raise a subclass of InvalidImage.

    ``min_side``: the caller needs at least this many pixels on the shorter side and no
    more; JPEGs are then decoded at the smallest DCT scale that still gives that, other
    formats reduced to it. ``budget``: shared with the other images decoding at once.
    """
    if not data:
        raise InvalidImage("empty input: no image bytes")
    if len(data) > limits.max_bytes:
        raise ImageTooLarge(f"{len(data):,} bytes is over the limit of {limits.max_bytes:,} bytes")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        image = _open_checked(data, limits)
        if min_side and image.format in ("JPEG", "MPO"):
            # EXIF rotation swaps sides later, so ask for min_side on both.
            image.draft("RGB", (min_side, min_side))
        cost = decoded_bytes(image)
        if cost > limits.max_decoded_bytes:
            raise ImageTooLarge(
                f"{image.width}x{image.height} {image.mode} takes {cost / 2**20:,.0f} MiB "
                f"decoded, over the limit of {limits.max_decoded_bytes / 2**20:,.0f} MiB"
            )
        with budget.hold(cost) if budget is not None else contextlib.nullcontext():
            return _decoded(image, min_side)


def decoded_bytes(image: Image.Image) -> int:
    """The memory decoding ``image`` takes at its peak (its pixels, and the RGB copy of a
    mode that is converted before it is reduced), from its header alone."""
    pixel = _PIXEL_BYTES.get(image.mode, 4) * _DECODER_FACTOR.get(str(image.format), 1)
    pixel += 4 if image.mode in _CONVERTED_FIRST else 0
    pixel = max(pixel, _DECODER_PIXEL_BYTES.get(str(image.format), 0))
    return image.width * image.height * pixel


def _decoded(image: Image.Image, min_side: int | None) -> Image.Image:
    try:
        image.seek(0)  # first frame of an animation
        image.load()
        reduced = _reduced(image, min_side) if min_side else image
        upright: Image.Image = ImageOps.exif_transpose(reduced) or reduced
    except Image.DecompressionBombError as exc:
        raise ImageTooLarge("image dimensions are too large") from _logged(exc)
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise InvalidImage("corrupt or truncated image data") from _logged(exc)
    return to_rgb(upright)


def _reduced(image: Image.Image, min_side: int) -> Image.Image:
    """``image`` reduced by 2, 4 or 8 (as a JPEG's DCT scaling would) while its shorter
    side stays at least ``min_side``."""
    factor = 1
    while factor < 8 and min(image.size) // (2 * factor) >= min_side:
        factor *= 2
    if factor == 1:
        return image
    if image.mode in _CONVERTED_FIRST:  # transparency kept: flattened once reduced
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    return image.reduce(factor)


def _open_checked(data: bytes, limits: ImageLimits) -> Image.Image:
    """The image, opened (header only) and checked: an accepted format, within the pixel
    limit, so no pixel of a decompression bomb is ever decoded."""
    try:
        image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise ImageTooLarge("image dimensions are too large") from _logged(exc)
    except UnidentifiedImageError as exc:
        raise InvalidImage("not a recognisable image file") from exc
    except (OSError, ValueError, SyntaxError) as exc:
        raise InvalidImage("unreadable image header") from _logged(exc)
    if image.format not in ALLOWED_FORMATS:
        raise UnsupportedImage(
            f"format {image.format} is not accepted; use one of "
            f"{', '.join(sorted(ALLOWED_FORMATS))}"
        )
    width, height = image.size
    if width <= 0 or height <= 0:
        raise InvalidImage(f"image has no pixels ({width}x{height})")
    if width * height > limits.max_pixels:
        raise ImageTooLarge(
            f"{width}x{height} = {width * height:,} pixels is over the limit of "
            f"{limits.max_pixels:,} pixels"
        )
    return image


def _logged(exc: Exception) -> Exception:
    """The decoder's own words go to the log, not into the photo's status (they name the
    library's internals and can echo the file's bytes)."""
    log.info("decoder: %s: %.200s", type(exc).__name__, exc)
    return exc


def to_rgb(image: Image.Image) -> Image.Image:
    """RGB, with any transparency composited on white (a transparent PNG is not black)."""
    if image.mode == "RGB":
        return image
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")


def shrink(image: Image.Image, max_side: int) -> Image.Image:
    """The image scaled down (never up) so its longer side is at most ``max_side``."""
    if max(image.size) <= max_side:
        return image
    scale = max_side / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.BICUBIC, reducing_gap=2.0)


def encode_jpeg(image: Image.Image, quality: int = 90) -> bytes:
    """JPEG bytes of an RGB image."""
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


#: Shorter side the encoders need: both resize it to 256 before their 224 centre crop.
ENCODER_MIN_SIDE = 256


def prepare_for_embedding(
    data: bytes, limits: ImageLimits, max_side: int, min_side: int = ENCODER_MIN_SIDE
) -> bytes:
    """What ingest sends to the embedding endpoint: decoded, validated, upright, at most
    ``max_side`` on the longer side (at least ``min_side`` on the shorter where the source
    allows), re-encoded as JPEG: tens of kB instead of megabytes, well under SageMaker
    Serverless's 4 MB payload limit for a batch. JPEGs decode at 1/2, 1/4 or 1/8 scale."""
    return prepare_photo(data, limits, max_side, with_features=False, min_side=min_side)[0]


def embedding_picture(
    data: bytes,
    limits: ImageLimits,
    max_side: int,
    min_side: int = ENCODER_MIN_SIDE,
    budget: DecodeBudget | None = None,
) -> Image.Image:
    """The picture ingest works from: decoded, validated, upright, at most ``max_side`` on
    the longer side. The endpoint gets it as a JPEG; the copy check's features are
    computed on it (every photo at one scale, whatever its camera's)."""
    return shrink(decode_image(data, limits, min_side=min_side, budget=budget), max_side)


def prepare_photo(
    data: bytes,
    limits: ImageLimits,
    max_side: int,
    with_features: bool,
    min_side: int = ENCODER_MIN_SIDE,
    budget: DecodeBudget | None = None,
) -> tuple[bytes, bytes | None]:
    """The JPEG for the endpoint (:func:`prepare_for_embedding`) and, ``with_features``,
    the photo's ORB features (:func:`copy_features`), both of :func:`embedding_picture`."""
    picture = embedding_picture(data, limits, max_side, min_side, budget)
    return encode_jpeg(picture), copy_features(picture) if with_features else None


def copy_features(picture: Image.Image) -> bytes | None:
    """The picture's packed ORB features for the geometric check
    (:mod:`photocluster.clustering.copies`); None when they cannot be computed: the photo is
    then grouped by its vector alone, never lost."""
    from photocluster.clustering.orb import encode, features

    try:
        return encode(features(picture))
    except Exception:  # OpenCV missing or failing on an odd picture
        log.exception("ORB features not computed; the photo is grouped by its vector alone")
        return None
