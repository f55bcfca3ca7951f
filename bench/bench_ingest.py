"""Ingest overhead per image, model time excluded: download + decode + resize + write.

A 12-megapixel phone-like JPEG (4000 x 3000, photo content with sensor grain, quality 92:
2.8 MB) in S3 (moto in server mode on loopback). Two figures:

* single image: download, DCT-scaled decode, shrink, re-encode, one write (store + graph,
  user with 1,000 images): the latency of a batch of one;
* per image in an SQS batch of 10: the ingest function's real steps (parallel download +
  prepare on its thread pool, one batched write), divided by 10.

Baseline (same run): the same steps decoding at full resolution. The geometric check's
share: ORB features in ingest (against prepare alone), and a write that checks the new
photo against its 32 candidates (against the same write without features), in a library
where every photo is a candidate of every other: the worst case.
Target (issue 4): <= 20 ms median per image.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import httpx
import numpy as np
import numpy.typing as npt
from PIL import Image
from skimage import data as skdata

from bench.common import Row, measure, print_table
from bench.data import library as synthetic_library
from photocluster.clustering.orb import encode, features
from photocluster.config import Settings
from photocluster.images import (
    ImageLimits,
    decode_image,
    encode_jpeg,
    prepare_for_embedding,
    prepare_photo,
    shrink,
)
from photocluster.library import Library

THREADS = Settings().ingest_threads


def phone_jpeg(seed: int = 0) -> bytes:
    photo = Image.fromarray(skdata.astronaut()).resize((4000, 3000), Image.Resampling.BICUBIC)
    grain = np.random.default_rng(seed).normal(0, 4, (3000, 4000, 1))
    pixels = np.clip(np.asarray(photo) + grain, 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=92)
    return buffer.getvalue()


def main(argv: list[str] | None = None) -> None:
    del argv
    with moto_server() as url:
        photo = phone_jpeg()
        s3, keys = bucket_with(url, photo, copies=10)
        limits = ImageLimits()
        with tempfile.TemporaryDirectory() as tmp:
            library = Library.from_settings(Settings(store_root=Path(tmp), model="bench"))
            ids, vectors = synthetic_library(1000)
            library.write("u", "bench", ids, vectors)
            steps = Steps(s3, keys, photo, limits, library, vectors)
            rows = ingest_rows(steps) + check_rows(Path(tmp), photo, limits)
            print_table("ingest overhead per image (12 MP JPEG, model time excluded)", rows)


@contextmanager
def moto_server() -> Iterator[str]:
    """moto in server mode on a loopback port, ready; its URL, and it stopped on exit."""
    port = 15000 + os.getpid() % 1000
    url = f"http://127.0.0.1:{port}"
    moto = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        for _ in range(100):
            try:
                httpx.get(f"{url}/moto-api/")
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield url
    finally:
        os.killpg(moto.pid, signal.SIGTERM)
        moto.wait(timeout=10)


def bucket_with(url: str, photo: bytes, copies: int) -> tuple[Any, list[str]]:
    """The S3 client and the keys of ``copies`` uploads of ``photo`` in bucket "bench"."""
    s3 = boto3.client(
        "s3",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    s3.create_bucket(Bucket="bench")
    keys = [f"uploads/u/photo{i}.jpg" for i in range(copies)]
    for key in keys:
        s3.put_object(Bucket="bench", Key=key, Body=photo)
    return s3, keys


@dataclass
class Steps:
    """Ingest's steps on the uploads in S3, each timed by :func:`ingest_rows`."""

    s3: Any
    keys: list[str]
    photo: bytes
    limits: ImageLimits
    library: Library
    vectors: npt.NDArray[np.float32]
    counter: Iterator[int] = field(default_factory=lambda: iter(range(10**9)))

    def download(self, key: str | None = None) -> bytes:
        key = self.keys[0] if key is None else key
        return bytes(self.s3.get_object(Bucket="bench", Key=key)["Body"].read())

    def prepare(self, data: bytes) -> bytes:
        return prepare_for_embedding(data, self.limits, 512)

    def full_resolution(self, data: bytes) -> bytes:
        return encode_jpeg(shrink(decode_image(data, self.limits), 512))

    def write(self, n: int) -> None:
        batch = next(self.counter)
        ids = [f"n{batch}-{i}" for i in range(n)]
        self.library.write("u", "bench", ids, self.vectors[:n])

    def single(self, step: Callable[[bytes], bytes] | None = None) -> None:
        (step or self.prepare)(self.download())
        self.write(1)

    def batch_of_10(self, step: Callable[[bytes], bytes] | None = None) -> None:
        prepare = step or self.prepare
        with ThreadPoolExecutor(THREADS) as pool:
            list(pool.map(lambda key: prepare(self.download(key)), self.keys))
        self.write(10)

    def cpu_only_batch_of_10(self, step: Callable[[bytes], bytes] | None = None) -> None:
        prepare = step or self.prepare
        with ThreadPoolExecutor(THREADS) as pool:
            list(pool.map(lambda _: prepare(self.photo), self.keys))
        self.write(10)


def ingest_rows(steps: Steps) -> list[Row]:
    """Each step timed, then a single image and a batch of 10 (per image), each against
    the same at full resolution."""
    full, photo = steps.full_resolution, steps.photo
    cpu_only = measure(steps.cpu_only_batch_of_10, 9)
    cpu_only_base = measure(lambda: steps.cpu_only_batch_of_10(full), 5)
    per_image = measure(steps.batch_of_10, 9)
    per_image_base = measure(lambda: steps.batch_of_10(full), 5)
    scale = [
        type(t)(t.median_s / 10, t.p95_s / 10, t.runs)
        for t in (per_image, per_image_base, cpu_only, cpu_only_base)
    ]
    return [
        Row(
            "download 12 MP JPEG from S3",
            measure(steps.download, 15),
            note=f"{len(photo) / 1e6:.1f} MB over loopback",
        ),
        Row(
            "decode (DCT 1/8) + shrink + JPEG",
            measure(lambda: steps.prepare(photo), 15),
            measure(lambda: full(photo), 7),
            note="baseline: full-resolution decode",
        ),
        Row("write one embedding (store + graph, N=1,000)", measure(lambda: steps.write(1), 15)),
        Row(
            "single image, total",
            measure(steps.single, 15),
            measure(lambda: steps.single(full), 7),
            note="latency of a batch of 1",
        ),
        Row(
            f"per image in a batch of 10 ({THREADS} threads)",
            scale[0],
            scale[1],
            note="target <= 20 ms; moto's own serving shares the 2 cores",
        ),
        Row(
            "  same, ingest's CPU only (no download)",
            scale[2],
            scale[3],
            note="decode + shrink + encode + batched write",
        ),
    ]


def check_rows(tmp: Path, photo: bytes, limits: ImageLimits) -> list[Row]:
    """The geometric check's cost: in ingest, and in a write (see the module docstring)."""
    library = Library.from_settings(Settings(store_root=tmp / "check", model="bench"))
    rng = np.random.default_rng(3)
    common = rng.standard_normal(64)
    vectors = common + rng.standard_normal((1000, 64))  # cosine about 0.5: all candidates
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    pictures = [Image.fromarray(skdata.astronaut()), Image.fromarray(skdata.coffee())]
    packed = [
        encode(features(pictures[i % 2].crop((8 * i, 8 * i, 300 + 8 * i, 300 + 8 * i))))
        for i in range(20)
    ]
    ids = [f"c{i}" for i in range(1000)]
    library.write("c", "bench", ids, vectors)
    for i, image_id in enumerate(ids):
        library.copies.keep("c", image_id, packed[i % len(packed)])
    counter = iter(range(10**9))

    def write(with_features: bool) -> None:
        new = (common + rng.standard_normal(64)).astype(np.float32)[None]
        given = [packed[0] if with_features else None]
        library.write("c", "bench", [f"new{next(counter)}"], new, features=given)

    return [
        Row(
            "  prepare + ORB features (the check's, in ingest)",
            measure(lambda: prepare_photo(photo, limits, 512, True), 15),
            measure(lambda: prepare_photo(photo, limits, 512, False), 15),
            note="baseline: prepare alone",
        ),
        Row(
            "write one photo + its check (32 candidates, N=1,000)",
            measure(lambda: write(True), 15),
            measure(lambda: write(False), 15),
            note="baseline: the same write without features",
        ),
    ]


if __name__ == "__main__":
    main()
