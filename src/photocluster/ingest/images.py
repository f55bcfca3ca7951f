"""Decode, validate, orient and resize uploaded images (shared by ingest and the embedder).

Every path from bytes to pixels goes through :func:`decode_image`: a byte-size limit, a
pixel-count limit checked from the header before any pixel is decoded (decompression
bombs), a format allow-list, the first frame of animations, EXIF orientation, RGB with
transparency flattened on white. JPEGs are decoded at a reduced scale in the DCT domain
when only a small version is needed (``min_side``), which is most of ingest's speed.
"""

from __future__ import annotations

import io
import logging
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

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


@dataclass(frozen=True)
class ImageLimits:
    """Limits applied to every decoded image (from Settings)."""

    max_bytes: int = 40 * 1024 * 1024
    max_pixels: int = 64_000_000


def decode_image(
    data: bytes, limits: ImageLimits = ImageLimits(), min_side: int | None = None
) -> Image.Image:
    """Decode ``data`` into an upright RGB image, or raise a subclass of InvalidImage.

    ``min_side``: the caller needs at least this many pixels on the shorter side and no
    more; JPEGs are then decoded at the smallest DCT scale that still gives that.
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
        try:
            image.seek(0)  # first frame of an animation
            image.load()
            upright: Image.Image = ImageOps.exif_transpose(image) or image
        except Image.DecompressionBombError as exc:
            raise ImageTooLarge("image dimensions are too large") from _logged(exc)
        except (OSError, ValueError, SyntaxError, EOFError) as exc:
            raise InvalidImage("corrupt or truncated image data") from _logged(exc)
    return to_rgb(upright)


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


def prepare_photo(
    data: bytes,
    limits: ImageLimits,
    max_side: int,
    with_features: bool,
    min_side: int = ENCODER_MIN_SIDE,
) -> tuple[bytes, bytes | None]:
    """The JPEG for the endpoint (:func:`prepare_for_embedding`) and, ``with_features``,
    the photo's ORB features computed on the decoded picture (:func:`copy_features`)."""
    image = decode_image(data, limits, min_side=min_side)
    return encode_jpeg(shrink(image, max_side)), copy_features(image) if with_features else None


def copy_features(picture: Image.Image) -> bytes | None:
    """The picture's packed ORB features for the geometric check
    (:mod:`photocluster.clustering.copies`); None when they cannot be computed: the photo is
    then grouped by its vector alone, never lost."""
    from photocluster.clustering.copies import encode, features

    try:
        return encode(features(picture))
    except Exception:  # OpenCV missing or failing on an odd picture
        log.exception("ORB features not computed; the photo is grouped by its vector alone")
        return None
