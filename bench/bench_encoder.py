"""Encoder throughput per runtime, its fidelity, and the inference server's cold start.

* ViT-B/16 (transformers' ViTConfig defaults, random weights: timing only) and the
  offline EfficientNet-Lite0 (real weights), each baked as bake-model does (weights +
  ONNX fp32 + int8): images/s at batch 1, 8 and 32 (preprocessing included) for every
  runtime, next to fp32 torch in the same run, on every CPU granted (and 1 thread, for
  the README's "Sizing the embedder").
* Fidelity: per-image cosine of each runtime's vector to fp32 torch's, on the held-out
  evaluation set (seed 3, 89 images).
* The inference server: cold start (process start -> /ping 200) and peak memory per
  runtime; the time a request spends outside decode + embed.
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

from bench.common import Row, Timing, print_table
from photocluster.config import ENCODER_RUNTIMES, OFFLINE_MODEL, EncoderRuntime, Settings
from photocluster.embedder.base import Encoder
from photocluster.embedder.loader import available_cpus, bake_model, load_encoder
from photocluster.embedder.server import COMPUTE_TIME_HEADER
from photocluster.images import encode_jpeg
from photocluster.quality import evalset

REPO = Path(__file__).resolve().parents[1]
DEVICE = Settings().device  # PHOTOCLUSTER_DEVICE=cuda on a GPU machine (torch runtime only)
BATCHES = (1, 8, 32)


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

    folder = root / "vit-b16-weights"
    torch.manual_seed(0)
    ViTModel(ViTConfig(), add_pooling_layer=False).save_pretrained(folder)
    ViTImageProcessor().save_pretrained(folder)
    return folder


def baked_models(root: Path) -> dict[str, Path]:
    """Both encoders as the embedder image carries them."""
    vit, effnet = root / "vit-b16", root / "efficientnet-lite0"
    bake_model(str(vit_b16_dir(root)), vit)
    bake_model(OFFLINE_MODEL, effnet)
    return {"ViT-B/16 (random weights)": vit, "EfficientNet-Lite0": effnet}


def encoders(folder: Path, threads: int) -> dict[EncoderRuntime, Encoder]:
    return {
        runtime: load_encoder(
            str(folder), device=DEVICE, threads=threads, batch_size=32, runtime=runtime
        )
        for runtime in ENCODER_RUNTIMES
    }


def rates(folder: Path, threads: int, repeats: dict[int, int]) -> dict[tuple[str, int], float]:
    """images/s of every runtime at every batch size (median of ``repeats`` batches). The
    runtimes take turns batch by batch, so a busy neighbour on a shared machine slows them
    alike and the ratios hold."""
    images = sample_images(max(repeats))
    loaded = encoders(folder, threads)
    found = {}
    for batch, reps in repeats.items():
        samples: dict[str, list[float]] = {runtime: [] for runtime in loaded}
        for encoder in loaded.values():
            encoder.embed(images[:batch])  # warm-up
        for _ in range(reps):
            for runtime, encoder in loaded.items():
                start = time.perf_counter()
                encoder.embed(images[:batch])
                samples[runtime].append(time.perf_counter() - start)
        for runtime, seconds in samples.items():
            found[runtime, batch] = batch / statistics.median(seconds)
    return found


def throughput_rows(name: str, folder: Path, repeats: dict[int, int]) -> list[Row]:
    threads = available_cpus()
    found = rates(folder, threads, repeats)
    rows = []
    for runtime in ENCODER_RUNTIMES:
        values = " / ".join(f"{found[runtime, b]:.1f}" for b in repeats)
        ratios = " / ".join(f"{found[runtime, b] / found['torch', b]:.2f}x" for b in repeats)
        rows.append(
            Row(
                f"{name}, {runtime}, {threads} threads, batch 1 / 8 / 32",
                None,
                value=f"{values} images/s",
                note=f"vs fp32 torch in this run: {ratios}",
            )
        )
    single = rates(folder, 1, {b: max(1, r // 2) for b, r in repeats.items() if b > 1})
    for runtime in ENCODER_RUNTIMES:
        values = " / ".join(f"{single[runtime, b]:.1f}" for b in repeats if b > 1)
        rows.append(Row(f"{name}, {runtime}, 1 thread, batch 8 / 32", None, value=values))
    return rows


def fidelity_rows(name: str, folder: Path, images: list[Image.Image]) -> list[Row]:
    """Per-image cosine to fp32 torch on the evaluation set (the issue: min >= 0.99,
    median >= 0.995)."""
    vectors = {
        runtime: encoder.embed(images)
        for runtime, encoder in encoders(folder, available_cpus()).items()
    }
    rows = []
    for runtime in ENCODER_RUNTIMES[1:]:
        cosines = (vectors["torch"] * vectors[runtime]).sum(axis=1)
        rows.append(
            Row(
                f"{name}, {runtime}: cosine to fp32 torch",
                None,
                value=f"min {cosines.min():.4f}, median {np.median(cosines):.4f}",
                note=f"{len(images)} images of the evaluation set (seed 3)",
            )
        )
    return rows


class ServerProcess:
    """services/embedder/serve on a loopback port, with its start time."""

    def __init__(self, folder: Path, runtime: str, root: Path) -> None:
        self.port = 18080 + os.getpid() % 1000
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "PHOTOCLUSTER_MODEL": str(folder),
            "PHOTOCLUSTER_ENCODER_RUNTIME": runtime,
            "PHOTOCLUSTER_MODEL_DIR": str(root / "none"),
            "PHOTOCLUSTER_EMBEDDER_PORT": str(self.port),
            "PHOTOCLUSTER_LOG_LEVEL": "WARNING",
        }
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            [sys.executable, str(REPO / "services/embedder/serve")],
            env=env,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def wait_ready(self) -> float:
        """Seconds from process start to the first /ping 200."""
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/ping", timeout=1).status_code == 200:
                    return time.perf_counter() - self.started
            except httpx.HTTPError:
                pass
            time.sleep(0.02)
        raise TimeoutError("embedder did not start")

    def peak_rss_mb(self) -> float:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        line = next(x for x in status.splitlines() if x.startswith("VmHWM:"))
        return int(line.split()[1]) / 1024

    def stop(self) -> None:
        os.killpg(self.process.pid, signal.SIGTERM)
        self.process.wait(timeout=10)


def json_batch(n: int) -> str:
    jpegs = [encode_jpeg(image) for image in sample_images(n)]
    return json.dumps({"instances": [base64.b64encode(j).decode() for j in jpegs]})


def cold_start_rows(name: str, folder: Path, root: Path, starts: int = 2) -> list[Row]:
    """Process start -> /ping 200 per runtime; peak memory after a batch of 8."""
    rows = []
    body = json_batch(8)
    for runtime in ENCODER_RUNTIMES:
        samples, peak = [], 0.0
        for _ in range(starts):
            server = ServerProcess(folder, runtime, root)
            try:
                samples.append(server.wait_ready())
                httpx.post(
                    f"{server.url}/invocations",
                    content=body,
                    headers={"Content-Type": "application/json"},
                    timeout=120,
                ).raise_for_status()
                peak = max(peak, server.peak_rss_mb())
            finally:
                server.stop()
        timing = Timing(statistics.median(samples), max(samples), len(samples))
        rows.append(
            Row(
                f"{name}, {runtime}: server cold start (process -> /ping 200)",
                timing,
                note=f"peak RSS after a batch of 8: {peak:.0f} MiB",
            )
        )
    return rows


def server_overhead_rows(folder: Path, root: Path) -> list[Row]:
    server = ServerProcess(folder, "torch", root)
    try:
        server.wait_ready()
        rows = []
        with httpx.Client(timeout=60) as client:
            for batch in (1, 8):
                body = json_batch(batch)
                totals, computes = [], []
                for attempt in range(13):
                    start = time.perf_counter()
                    response = client.post(
                        f"{server.url}/invocations",
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
        server.stop()


def main(argv: list[str] | None = None) -> None:
    del argv
    print(f"torch {torch.__version__}, device {DEVICE}, {available_cpus()} CPUs granted")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        models = baked_models(root)
        vit, effnet = models.values()
        rows = throughput_rows("ViT-B/16 (random weights)", vit, {1: 4, 8: 3, 32: 2})
        rows += throughput_rows("EfficientNet-Lite0", effnet, {1: 9, 8: 5, 32: 3})
        print_table("encoder throughput per runtime (CPU)", rows)
        images = [sample.image for sample in evalset.build(seed=3)]
        rows = [
            row for name, folder in models.items() for row in fidelity_rows(name, folder, images)
        ]
        print_table("optimized runtimes: fidelity to fp32 torch", rows)
        rows = [
            row for name, folder in models.items() for row in cold_start_rows(name, folder, root)
        ]
        print_table("inference server cold start per runtime", rows)
        print_table(
            "inference server overhead (EfficientNet-Lite0)", server_overhead_rows(effnet, root)
        )


if __name__ == "__main__":
    main()
