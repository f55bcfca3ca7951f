"""Decoding is bounded by memory, not only pixels (issue 33: a 186 KB PNG of 7,999 x 7,999
took an ingest worker from 180 MB to 1,074 MB; four in a batch to 3,093 MB)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

from photocluster.errors import ImageTooLarge
from photocluster.images import (
    DecodeBudget,
    ImageLimits,
    decode_image,
    decoded_bytes,
    free_large_blocks_to_the_os,
)
from tests.helpers.images import encode, picture


def opened(data: bytes) -> Image.Image:
    import io

    return Image.open(io.BytesIO(data))


def test_the_decoded_size_comes_from_the_header_and_the_decoder() -> None:
    rgb = encode(Image.new("RGB", (1000, 800)), "PNG")
    assert decoded_bytes(opened(rgb)) == 1000 * 800 * 3 * 2  # the PNG decoder: twice
    palette = encode(Image.new("P", (1000, 800)), "GIF")
    assert decoded_bytes(opened(palette)) == 1000 * 800 * (1 + 4)  # converted to reduce it
    assert decoded_bytes(opened(encode(Image.new("RGB", (100, 100)), "WEBP"))) == 100 * 100 * 16


def test_an_image_over_the_memory_limit_is_refused_before_it_is_decoded() -> None:
    small_file = encode(Image.new("RGB", (3000, 3000)), "PNG")  # 26 kB, 54 MB decoded
    assert len(small_file) < 100_000
    limits = ImageLimits(max_decoded_bytes=32 * 2**20)
    with pytest.raises(ImageTooLarge, match=r"3000x3000 RGB takes 51 MiB decoded, over the"):
        decode_image(small_file, limits, min_side=256)
    assert decode_image(small_file, ImageLimits(), min_side=256).size == (375, 375)


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "GIF", "BMP"])
def test_every_format_is_reduced_as_a_jpeg_would_be(fmt: str) -> None:
    data = encode(picture(size=(2400, 1600)), fmt)
    assert decode_image(data, min_side=256).size == (600, 400)  # by 4: 8 would pass 256
    assert decode_image(data).size == (2400, 1600)  # asked for the whole picture: whole


def test_a_transparent_palette_image_is_flattened_on_white_once_reduced() -> None:
    image = Image.new("P", (2048, 2048), 0)
    image.putpalette([0, 0, 0] * 256)
    data = encode(image, "PNG", transparency=0)
    decoded = decode_image(data, min_side=256)
    assert decoded.size == (256, 256) and decoded.getpixel((10, 10)) == (255, 255, 255)


def test_the_budget_lets_only_what_fits_decode_at_once() -> None:
    budget = DecodeBudget(100)
    inside, most = [0], [0]
    lock = threading.Lock()

    def decode(cost: int) -> None:
        held = min(cost, budget.total)  # an image over the whole budget holds all of it
        with budget.hold(cost):
            with lock:
                inside[0] += held
                most[0] = max(most[0], inside[0])
            time.sleep(0.01)
            with lock:
                inside[0] -= held

    threads = [threading.Thread(target=decode, args=(c,)) for c in (60, 60, 30, 30, 500)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=5)
    assert not any(t.is_alive() for t in threads)
    assert most[0] <= 100


def test_a_batch_of_ten_7999_pixel_pngs_stays_within_its_budget(tmp_path: Path) -> None:
    """The batch as ingest decodes it (4 threads, one budget), in a process of its own."""
    if not free_large_blocks_to_the_os():
        pytest.skip("no glibc: the allocator keeps freed blocks")
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(encode(Image.new("RGBA", (7999, 7999)), "PNG"))  # 248 kB, 256 MB pixels
    script = textwrap.dedent(
        f"""
        from concurrent.futures import ThreadPoolExecutor
        from photocluster.images import (
            DecodeBudget, ImageLimits, free_large_blocks_to_the_os, prepare_photo)
        free_large_blocks_to_the_os()
        data, limits = open({str(bomb)!r}, "rb").read(), ImageLimits()
        budget = DecodeBudget(limits.max_decoded_bytes)
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda _: prepare_photo(data, limits, 512, True, budget=budget),
                          range(10)))
        peak = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0]
        print(int(peak.split()[1]) * 1024)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=True
    )
    peak = int(done.stdout.split()[-1])
    # the budget (512 MiB) and the interpreter's own (OpenCV, numpy: about 100 MB); without
    # them, about 2 GB (four decodes at once, each thread's arena keeping its pages)
    assert peak < ImageLimits().max_decoded_bytes + 250 * 2**20, peak / 2**20
