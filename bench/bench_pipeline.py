"""Upload -> ready on the whole local stack, as a phone sees it.

The local stack (``make up``: moto for S3 and SQS, the embedder server with
EfficientNet-Lite0, the ingest worker calling the real handlers, the API) on free loopback
ports, with no SQS delivery delay (production adds its own, 5 s by default). Each photo goes
through the app's path: ``POST /uploads`` -> presigned PUT to S3 -> notification -> SQS ->
ingest -> embedder -> writer; its latency runs from the end of the PUT to the first poll of
``GET /images/{id}`` that says ``ready`` (polled every 20 ms).

* one at a time: the next photo is uploaded once the previous one is ready;
* a burst of 500: all uploaded back to back, each timed from the end of its own PUT; the
  rate is 500 over the time from the first upload to the last ready, and every photo must
  end ready (a failed or never-ready one is counted as lost).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from bench.common import Row, Timing, print_table
from photocluster.local.app import AppClient
from photocluster.local.demo import Options, app_client, start
from photocluster.local.stack import Stack
from photocluster.quality import evalset

PHOTOS = 20
BURST = 500
POLL_S = 0.02


def photos(n: int) -> list[tuple[str, bytes]]:
    samples = evalset.build(seed=5, groups=5, per_group=4, singletons=0)
    return [(f"bench-{i:03d}.jpg", samples[i % len(samples)].jpeg_bytes()) for i in range(n)]


def ready_after(
    app: AppClient, image_ids: list[str], uploaded: dict[str, float], poll_s: float = POLL_S
) -> tuple[dict[str, float], list[str]]:
    """Seconds from each upload's end to its first ready status; the ids that failed or
    were never ready (lost)."""
    latencies: dict[str, float] = {}
    failed: set[str] = set()
    deadline = time.monotonic() + 300 + 0.5 * len(image_ids)
    while len(latencies) + len(failed) < len(image_ids) and time.monotonic() < deadline:
        found = app.statuses()
        now = time.monotonic()
        for image_id in image_ids:
            status = found.get(image_id, {}).get("status")
            if image_id not in latencies and status == "ready":
                latencies[image_id] = now - uploaded[image_id]
            elif status == "failed":
                failed.add(image_id)
        time.sleep(poll_s)
    return latencies, [i for i in image_ids if i not in latencies]


def timing(samples: list[float]) -> Timing:
    return Timing(statistics.median(samples), float(np.percentile(samples, 95)), len(samples))


def one_at_a_time(app: AppClient, batch: list[tuple[str, bytes]]) -> list[float]:
    latencies = []
    for name, data in batch:
        image_id = app.upload(name, data)
        ready, lost = ready_after(app, [image_id], {image_id: time.monotonic()})
        if lost:
            raise RuntimeError(f"{image_id} was never ready")
        latencies.append(ready[image_id])
    return latencies


def burst(app: AppClient, batch: list[tuple[str, bytes]]) -> tuple[list[float], int, float]:
    """Latencies of the photos that became ready, how many were lost, the elapsed time."""
    uploaded: dict[str, float] = {}
    started = time.monotonic()
    for name, data in batch:
        image_id = app.upload(name, data)
        uploaded[image_id] = time.monotonic()
    # Listing 500 statuses costs the API a few ms: poll less often than for one photo.
    poll_s = POLL_S if len(batch) <= PHOTOS else 0.1
    ready, lost = ready_after(app, list(uploaded), uploaded, poll_s)
    last_ready = max((uploaded[i] + ready[i] for i in ready), default=time.monotonic())
    return list(ready.values()), len(lost), last_ready - started


def rows(workdir: Path, n: int = PHOTOS, burst_n: int = BURST) -> list[Row]:
    # The burst is one user's: the stack lets that user ask its tickets at once (the
    # default allowance, 100 at once then 10 a second, would pace the uploads).
    burst_allowance = {"PHOTOCLUSTER_UPLOAD_TICKET_BURST": str(n + burst_n + 10)}
    options = replace(Options.on_free_ports(workdir), services_env=burst_allowance)
    with Stack(workdir) as stack:
        running = start(options, stack, thumbnails_from_files=False, say=lambda _: None)
        app = app_client(running, "bench")
        app.upload("warm-up.jpg", photos(1)[0][1])  # first request of every process
        app.wait_until_settled(["warm-up.jpg"], timeout_s=120)
        sequential = one_at_a_time(app, photos(n))
        burst_batch = [(f"burst-{name}", data) for name, data in photos(burst_n)]
        burst_latencies, lost, elapsed = burst(app, burst_batch)
    return [
        Row(
            f"{n} photos one at a time: upload -> ready",
            timing(sequential),
            note="no SQS delivery delay (production adds 5 s by default)",
        ),
        Row(
            f"{burst_n} photos in a burst: upload -> ready",
            timing(burst_latencies),
            note=f"p50 {np.percentile(burst_latencies, 50):.2f} s, "
            f"p99 {np.percentile(burst_latencies, 99):.2f} s; all ready {elapsed:.1f} s "
            f"after the first upload began ({burst_n / elapsed:.1f} photos/s); "
            f"lost: {lost} of {burst_n}",
        ),
    ]


def main(argv: list[str] | None = None) -> None:
    del argv
    with tempfile.TemporaryDirectory(prefix="photocluster-bench-") as tmp:
        print_table("the local stack, as a phone sees it (EfficientNet-Lite0)", rows(Path(tmp)))


if __name__ == "__main__":
    main()
