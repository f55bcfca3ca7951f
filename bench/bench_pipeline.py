"""Upload -> ready on the whole local stack, as a phone sees it.

The local stack (``make up``: moto for S3 and SQS, the embedder server with
EfficientNet-Lite0, the ingest worker calling the real handlers, the API) on free loopback
ports, with no SQS delivery delay (production adds its own, 5 s by default). Each photo goes
through the app's path: ``POST /uploads`` -> presigned PUT to S3 -> notification -> SQS ->
ingest -> embedder -> writer; its latency runs from the end of the PUT to the first poll of
``GET /images/{id}`` that says ``ready`` (polled every 20 ms).

* one at a time: the next photo is uploaded once the previous one is ready;
* a burst: all uploaded back to back, each timed from the end of its own PUT.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import Row, Timing, print_table
from photocluster.local.app import AppClient
from photocluster.local.demo import Options, app_client, start
from photocluster.local.stack import Stack
from photocluster.quality import evalset

PHOTOS = 20
POLL_S = 0.02


def photos(n: int) -> list[tuple[str, bytes]]:
    samples = evalset.build(seed=5, groups=5, per_group=4, singletons=0)
    return [(f"bench-{i:03d}.jpg", samples[i % len(samples)].jpeg_bytes()) for i in range(n)]


def ready_after(app: AppClient, image_ids: list[str], uploaded: dict[str, float]) -> list[float]:
    """Seconds from each upload's end to its first ready status."""
    latencies: dict[str, float] = {}
    deadline = time.monotonic() + 300
    while len(latencies) < len(image_ids) and time.monotonic() < deadline:
        found = app.statuses()
        now = time.monotonic()
        for image_id in image_ids:
            if image_id not in latencies and found.get(image_id, {}).get("status") == "ready":
                latencies[image_id] = now - uploaded[image_id]
            elif found.get(image_id, {}).get("status") == "failed":
                raise RuntimeError(f"{image_id} failed: {found[image_id]['error']}")
        time.sleep(POLL_S)
    if len(latencies) < len(image_ids):
        raise TimeoutError(f"{len(image_ids) - len(latencies)} photos never became ready")
    return [latencies[i] for i in image_ids]


def timing(samples: list[float]) -> Timing:
    return Timing(statistics.median(samples), float(np.percentile(samples, 95)), len(samples))


def one_at_a_time(app: AppClient, batch: list[tuple[str, bytes]]) -> list[float]:
    latencies = []
    for name, data in batch:
        image_id = app.upload(name, data)
        latencies += ready_after(app, [image_id], {image_id: time.monotonic()})
    return latencies


def burst(app: AppClient, batch: list[tuple[str, bytes]]) -> tuple[list[float], float]:
    uploaded: dict[str, float] = {}
    started = time.monotonic()
    for name, data in batch:
        image_id = app.upload(name, data)
        uploaded[image_id] = time.monotonic()
    latencies = ready_after(app, list(uploaded), uploaded)
    return latencies, time.monotonic() - started


def rows(workdir: Path, n: int = PHOTOS) -> list[Row]:
    options = Options.on_free_ports(workdir)
    with Stack(workdir) as stack:
        running = start(options, stack, thumbnails_from_files=False, say=lambda _: None)
        app = app_client(running, "bench")
        app.upload("warm-up.jpg", photos(1)[0][1])  # first request of every process
        app.wait_until_settled(["warm-up.jpg"], timeout_s=120)
        sequential = one_at_a_time(app, photos(n))
        burst_latencies, elapsed = burst(app, [(f"burst-{name}", d) for name, d in photos(n)])
    return [
        Row(
            f"{n} photos one at a time: upload -> ready",
            timing(sequential),
            note="no SQS delivery delay (production adds 5 s by default)",
        ),
        Row(
            f"{n} photos in a burst: upload -> ready",
            timing(burst_latencies),
            note=f"all ready {elapsed:.1f} s after the first upload began "
            f"({n / elapsed:.1f} photos/s)",
        ),
    ]


def main(argv: list[str] | None = None) -> None:
    del argv
    with tempfile.TemporaryDirectory(prefix="photocluster-bench-") as tmp:
        print_table("the local stack, as a phone sees it (EfficientNet-Lite0)", rows(Path(tmp)))


if __name__ == "__main__":
    main()
