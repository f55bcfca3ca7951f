"""Decoding, validation, orientation and resizing of uploads."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from photocluster.errors import ImageTooLarge, InvalidImage, UnsupportedImage
from photocluster.images import (
    HEIF_SUPPORTED,
    ImageLimits,
    decode_image,
    prepare_for_embedding,
    shrink,
)
from tests.helpers.images import encode, huge_png, jpeg, picture, png, truncated_jpeg, webp


@pytest.mark.parametrize("data", [jpeg(), png(), webp(), encode(picture(), "BMP")])
def test_decodes_common_formats_to_rgb(data: bytes) -> None:
    image = decode_image(data)
    assert image.mode == "RGB" and image.size == (96, 64)


@pytest.mark.skipif(not HEIF_SUPPORTED, reason="pillow-heif not installed")
def test_decodes_heic() -> None:
    assert decode_image(encode(picture(), "HEIF")).size == (96, 64)


def test_animated_gif_gives_its_first_frame() -> None:
    frames = [Image.new("RGB", (20, 10), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:])
    image = decode_image(buffer.getvalue())
    assert image.getpixel((5, 5))[0] > 200  # red, the first frame


def test_exif_orientation_is_applied() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    data = encode(picture(size=(80, 40)), "JPEG", exif=exif.tobytes())
    assert decode_image(data).size == (40, 80)


def test_transparency_is_flattened_on_white() -> None:
    data = encode(Image.new("RGBA", (10, 10), (0, 0, 0, 0)), "PNG")
    assert decode_image(data).getpixel((5, 5)) == (255, 255, 255)


@pytest.mark.parametrize(
    ("data", "error", "message"),
    [
        (b"", InvalidImage, "empty"),
        (b"hello, this is a text file", InvalidImage, "not a recognisable image"),
        (truncated_jpeg(), InvalidImage, "truncated"),
        (encode(picture(), "TIFF"), UnsupportedImage, "TIFF is not accepted"),
        (huge_png(100), ImageTooLarge, "pixels is over the limit"),
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 50, InvalidImage, "not a recognisable image"),
    ],
)
def test_bad_input_raises_a_clear_error(data: bytes, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        decode_image(data)


def test_the_decoders_own_words_stay_out_of_the_message(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="photocluster.images")
    with pytest.raises(InvalidImage) as refused:
        decode_image(truncated_jpeg())
    assert str(refused.value) == "corrupt or truncated image data"  # issue 33: Pillow's text
    assert "decoder:" in caplog.text  # ...is in the log instead


def test_byte_limit() -> None:
    with pytest.raises(ImageTooLarge, match="bytes is over the limit"):
        decode_image(jpeg(), ImageLimits(max_bytes=100))


def test_large_jpeg_is_decoded_at_reduced_scale() -> None:
    data = encode(picture(size=(4000, 3000)), "JPEG", quality=85)
    image = decode_image(data, min_side=512)
    assert 512 <= min(image.size) < 3000


def test_shrink_never_enlarges() -> None:
    assert shrink(picture(size=(100, 50)), 512).size == (100, 50)
    assert shrink(picture(size=(1000, 500)), 512).size == (512, 256)


def test_prepare_for_embedding_sends_a_small_jpeg() -> None:
    data = encode(picture(size=(4000, 3000)), "PNG")
    out = prepare_for_embedding(data, ImageLimits(), max_side=512)
    image = Image.open(io.BytesIO(out))
    # reduced by 8 as a JPEG of that size decodes (shorter side still >= 256), <= 512
    assert image.format == "JPEG" and image.size == (500, 375)
    big = prepare_for_embedding(encode(picture(size=(1600, 1200)), "PNG"), ImageLimits(), 512)
    assert Image.open(io.BytesIO(big)).size == (400, 300)  # by 4: by 8 would pass 256


def test_prepare_photo_adds_the_checks_features_only_when_asked() -> None:
    from photocluster.clustering.orb import decode
    from photocluster.images import prepare_photo

    data = jpeg_bytes_for_features()
    sent, none = prepare_photo(data, ImageLimits(), max_side=512, with_features=False)
    same, packed = prepare_photo(data, ImageLimits(), max_side=512, with_features=True)
    assert none is None and sent == same
    assert packed is not None and len(decode(packed).plain.points) > 100


def jpeg_bytes_for_features() -> bytes:
    import io

    from PIL import Image
    from skimage import data as skdata

    buffer = io.BytesIO()
    Image.fromarray(skdata.astronaut()).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()
