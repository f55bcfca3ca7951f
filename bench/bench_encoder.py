"""Encoder throughput and the inference server's added overhead per request.

* ViT-B/16 (transformers' ViTConfig defaults, random weights: timing only) and the
  offline EfficientNet-Lite0 (real weights), images/s at batch 1, 8 and 32, with 1 and 2
  torch threads, on this machine's CPU.
* Server overhead: a request to the real server process (JSON batch of base64 JPEGs)
  minus the same decode + embed done in-process, median over requests.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import torch
from PIL import Image

from bench.common import Row, Timing, measure, print_table
from photocluster.config import OFFLINE_MODEL, Settings
from photocluster.embedder.loader import load_encoder
from photocluster.embedder.server import COMPUTE_TIME_HEADER
from photocluster.ingest.images import encode_jpeg

REPO = Path(__file__).resolve().parents[1]
DEVICE = Settings().device  # PHOTOCLUSTER_DEVICE=cuda on a GPU machine


def sample_images(n: int) -> list[Image.Image]:
    rng = np.random.default_rng(0)
    return [
        Image.fromarray(rng.integers(0, 256, (32, 48, 3), dtype=np.uint8)).resize(
            (640, 480), Image.Resampling.BICUBIC
        )
        for _ in range(n)
    ]


def vit_b16_dir(root: Path) -> Path:
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    folder = root / "vit-b16"
    torch.manual_seed(0)
    ViTModel(ViTConfig(), add_pooling_layer=False).save_pretrained(folder)
    ViTImageProcessor().save_pretrained(folder)
    return folder


def throughput_rows(name: str, source: str, repeats: dict[int, int]) -> list[Row]:
    rows = []
    images = sample_images(32)
    for threads in (1, 2):
        torch.set_num_threads(threads)
        encoder = load_encoder(source, device=DEVICE)
        for batch, reps in repeats.items():
            timing = measure(lambda b=batch, e=encoder: e.embed(images[:b]), reps, warmup=1)
            rows.append(
                Row(
                    f"{name} batch {batch}, {threads} thread(s)",
                    timing,
                    value=f"{batch / timing.median_s:.1f} images/s",
                    note=f"median {timing.median_s * 1e3:.0f} ms per batch",
                )
            )
    torch.set_num_threads(2)
    return rows


def server_overhead_rows(root: Path) -> list[Row]:
    port = 18080 + os.getpid() % 1000
    env = {
        **os.environ,
        "PHOTOCLUSTER_MODEL": OFFLINE_MODEL,
        "PHOTOCLUSTER_MODEL_DIR": str(root / "none"),
        "PHOTOCLUSTER_EMBEDDER_PORT": str(port),
        "PHOTOCLUSTER_LOG_LEVEL": "WARNING",
    }
    process = subprocess.Popen(
        [sys.executable, str(REPO / "services/embedder/serve")],
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/ping").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("embedder did not start")
            time.sleep(0.1)
        rows = []
        with httpx.Client(timeout=60) as client:
            for batch in (1, 8):
                jpegs = [encode_jpeg(image) for image in sample_images(batch)]
                body = json.dumps({"instances": [base64.b64encode(j).decode() for j in jpegs]})
                totals, computes = [], []
                for attempt in range(13):
                    start = time.perf_counter()
                    response = client.post(
                        f"{url}/invocations",
                        content=body,
                        headers={"Content-Type": "application/json"},
                    )
                    elapsed = time.perf_counter() - start
                    response.raise_for_status()
                    if attempt >= 2:  # warm-up
                        totals.append(elapsed)
                        computes.append(float(response.headers[COMPUTE_TIME_HEADER]) / 1e3)
                total = Timing(
                    statistics.median(totals), float(np.percentile(totals, 95)), len(totals)
                )
                compute = Timing(
                    statistics.median(computes), float(np.percentile(computes, 95)), len(computes)
                )
                added = statistics.median(t - c for t, c in zip(totals, computes, strict=True))
                rows.append(
                    Row(
                        f"server, batch {batch}: HTTP round trip",
                        total,
                        compute,
                        ratio=False,
                        note=f"added per request: {added * 1e3:.1f} ms (baseline = the "
                        "server's own decode + embed time)",
                    )
                )
        return rows
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)


def main(argv: list[str] | None = None) -> None:
    del argv
    print(
        f"torch {torch.__version__}, device {DEVICE}, CUDA available: {torch.cuda.is_available()}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        rows = throughput_rows(
            "ViT-B/16 (random weights)", str(vit_b16_dir(root)), {1: 5, 8: 3, 32: 2}
        )
        rows += throughput_rows("EfficientNet-Lite0", OFFLINE_MODEL, {1: 9, 8: 5, 32: 3})
        print_table("encoder throughput (CPU)", rows)
        print_table("inference server overhead (EfficientNet-Lite0)", server_overhead_rows(root))


if __name__ == "__main__":
    main()
