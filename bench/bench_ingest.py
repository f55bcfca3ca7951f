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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
import httpx
import numpy as np
from PIL import Image
from skimage import data as skdata

from bench.common import Row, measure, print_table
from bench.data import library as synthetic_library
from photocluster.clustering.copies import encode, features
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
        s3 = boto3.client(
            "s3",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )
        s3.create_bucket(Bucket="bench")
        photo = phone_jpeg()
        keys = [f"uploads/u/photo{i}.jpg" for i in range(10)]
        for key in keys:
            s3.put_object(Bucket="bench", Key=key, Body=photo)
        limits = ImageLimits()

        def download(key: str = keys[0]) -> bytes:
            return bytes(s3.get_object(Bucket="bench", Key=key)["Body"].read())

        def prepare(data: bytes) -> bytes:
            return prepare_for_embedding(data, limits, 512)

        def full_resolution(data: bytes) -> bytes:
            return encode_jpeg(shrink(decode_image(data, limits), 512))

        with tempfile.TemporaryDirectory() as tmp:
            library = Library.from_settings(Settings(store_root=Path(tmp), model="bench"))
            ids, vectors = synthetic_library(1000)
            library.write("u", "bench", ids, vectors)
            counter = iter(range(10**9))

            def write(n: int) -> None:
                batch = next(counter)
                library.write("u", "bench", [f"n{batch}-{i}" for i in range(n)], vectors[:n])

            def single(step=prepare) -> None:  # type: ignore[no-untyped-def]
                step(download())
                write(1)

            def batch_of_10(step=prepare) -> None:  # type: ignore[no-untyped-def]
                with ThreadPoolExecutor(THREADS) as pool:
                    list(pool.map(lambda key: step(download(key)), keys))
                write(10)

            def cpu_only_batch_of_10(step=prepare) -> None:  # type: ignore[no-untyped-def]
                with ThreadPoolExecutor(THREADS) as pool:
                    list(pool.map(lambda _: step(photo), keys))
                write(10)

            cpu_only = measure(cpu_only_batch_of_10, 9)
            cpu_only_base = measure(lambda: cpu_only_batch_of_10(full_resolution), 5)
            per_image = measure(batch_of_10, 9)
            per_image_base = measure(lambda: batch_of_10(full_resolution), 5)
            scale = [
                type(t)(t.median_s / 10, t.p95_s / 10, t.runs)
                for t in (per_image, per_image_base, cpu_only, cpu_only_base)
            ]
            rows = [
                Row(
                    "download 12 MP JPEG from S3",
                    measure(download, 15),
                    note=f"{len(photo) / 1e6:.1f} MB over loopback",
                ),
                Row(
                    "decode (DCT 1/8) + shrink + JPEG",
                    measure(lambda: prepare(photo), 15),
                    measure(lambda: full_resolution(photo), 7),
                    note="baseline: full-resolution decode",
                ),
                Row("write one embedding (store + graph, N=1,000)", measure(lambda: write(1), 15)),
                Row(
                    "single image, total",
                    measure(single, 15),
                    measure(lambda: single(full_resolution), 7),
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
            rows += check_rows(Path(tmp), photo, limits)
            print_table("ingest overhead per image (12 MP JPEG, model time excluded)", rows)
    finally:
        os.killpg(moto.pid, signal.SIGTERM)
        moto.wait(timeout=10)


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
