"""Upload -> ready on the whole local stack, as a phone sees it, and what each photo costs.

The local stack (``make up``: moto for S3 and SQS, the embedder server with
EfficientNet-Lite0 baked as the SageMaker image bakes it, the ingest worker calling the real
handlers with its pollers, the API) on free loopback ports, with no SQS delivery delay
(production adds its own, 5 s by default). Each photo takes the app's path: ``POST
/uploads`` -> presigned PUT to S3 -> notification -> SQS -> ingest -> embedder -> writer;
its latency runs from the end of its PUT to the first ``GET /images`` that says ``ready``.

The photos are made by the benchmark from the project's own photographs, seeded, in two
shapes (:mod:`bench.pipeline_photos`); each shape runs on the runtime bake-model chose (the
production one) and on torch, the baseline, in the same run:

* **burst**: all photos uploaded back to back; the rate is their number over the time from
  the first upload to the last ready, every photo must end ready (else it is lost);
* **paced**: a second set sent at 80% of the burst's rate, each timed to ready: the
  latency at a rate the stack sustains (p50, p99);
* **CPU**: the CPU time of the stack's processes over the burst (the API, the worker, the
  embedder; the AWS emulator stands in for AWS and is left out), per photo, and by stage
  from the worker's EMF metrics (:mod:`photocluster.ingest.costs`); beside it, the
  emulator's and the benchmark's own (its uploads and polls), which share the cores: the
  stack can have at most the rest of them, so its rate's share of what the CPUs allow it
  alone is capped there.

Targets (issue 29): the stack's CPU per photo at most twice the embedder's own; the rate
at least 80% of what the CPUs allow (cores x 1,000 / CPU-ms a photo); p99 <= 3 s paced.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from bench import pipeline_photos
from bench.common import Row, Timing, print_table
from photocluster.deploy import costs, hcl
from photocluster.ingest.costs import STAGES, metric_name
from photocluster.local.app import AppClient
from photocluster.local.launch import Options, app_client, start
from photocluster.local.stack import Stack

PHOTOS = 500
PACED = 100
POLL_S = 0.1
#: Processes whose CPU the pipeline costs (the emulator, "aws", stands in for AWS).
STACK = ("api", "worker", "embedder")
#: The emulator: not the pipeline's cost, but it shares the cores with the stack.
EMULATOR = "aws"
RUNTIMES = ("baked", "torch")  # baked: what bake-model's fidelity gate chose


@dataclass
class Run:
    """One shape on one runtime."""

    shape: str
    runtime: str
    photos: int
    lost: int
    rate: float  # photos/s of the burst
    cpu_ms: dict[str, float]  # per photo, by process
    stages: dict[str, float]  # per photo, by stage (the worker's EMF records)
    latencies: list[float] = field(default_factory=list)  # paced, seconds
    paced_rate: float = 0.0
    #: per photo, what shared the cores without being the stack: the emulator, the client
    beside_ms: dict[str, float] = field(default_factory=dict)

    @property
    def stack_ms(self) -> float:
        return sum(self.cpu_ms.values())

    @property
    def allowed_rate(self) -> float:
        """What the CPUs allow: cores x 1,000 / CPU-ms a photo."""
        return (os.cpu_count() or 1) * 1000 / self.stack_ms if self.stack_ms else 0.0

    @property
    def stack_share(self) -> float:
        """The most of the cores the stack could have had: the emulator and the client
        took the rest (so the rate cannot reach what the CPUs allow the stack alone)."""
        beside = sum(self.beside_ms.values())
        return self.stack_ms / (self.stack_ms + beside) if self.stack_ms else 0.0

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies, q)) if self.latencies else float("nan")


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def emf_totals(log: Path, start: int) -> dict[str, float]:
    """The sums of the EMF metrics the worker logged from byte ``start`` of its log."""
    totals: dict[str, float] = {}
    with log.open("rb") as handle:
        handle.seek(start)
        for line in handle.read().decode(errors="replace").splitlines():
            if not line.startswith('{"_aws"'):
                continue
            record = json.loads(line)
            for metric in record["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
                value = record[metric["Name"]]
                total = sum(value) if isinstance(value, list) else value
                totals[metric["Name"]] = totals.get(metric["Name"], 0.0) + float(total)
    return totals


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


def burst(app: AppClient, paths: Sequence[Path]) -> tuple[int, float]:
    """Upload every photo back to back; how many were lost, and the photos/s."""
    uploaded: dict[str, float] = {}
    started = time.monotonic()
    for path in paths:
        uploaded[app.upload(path.name, path.read_bytes())] = time.monotonic()
    ready, lost = ready_after(app, list(uploaded), uploaded)
    last_ready = max((uploaded[i] + ready[i] for i in ready), default=time.monotonic())
    return len(lost), len(paths) / (last_ready - started)


def paced(app: AppClient, paths: Sequence[Path], rate: float) -> tuple[list[float], int]:
    """Upload at ``rate`` photos/s; each photo's upload -> ready, and how many were lost."""
    uploaded: dict[str, float] = {}
    began = time.monotonic()
    for index, path in enumerate(paths):
        time.sleep(max(0.0, began + index / rate - time.monotonic()))
        uploaded[app.upload(path.name, path.read_bytes())] = time.monotonic()
    ready, lost = ready_after(app, list(uploaded), uploaded, poll_s=0.05)
    return list(ready.values()), len(lost)


def run_one(workdir: Path, shape: str, runtime: str, photos: list[Path], later: list[Path]) -> Run:
    """Start a stack serving ``runtime``, send the burst and then the paced photos."""
    env = {"PHOTOCLUSTER_UPLOAD_TICKET_BURST": str(2 * (len(photos) + len(later)) + 10)}
    if runtime != "baked":
        env["PHOTOCLUSTER_ENCODER_RUNTIME"] = runtime
    options = replace(Options.on_free_ports(workdir), services_env=env)
    with Stack(workdir) as stack:
        running = start(options, stack, thumbnails_from_files=False, say=lambda _: None)
        served = running.embedder_url
        app = app_client(running, "bench")
        app.upload("warm-up.jpg", photos[0].read_bytes())  # every process's first request
        app.wait_until_settled(["warm-up.jpg"], timeout_s=120)
        pids = {m.name: m.process.pid for m in stack.processes if m.name in (*STACK, EMULATOR)}
        pids["client"] = os.getpid()
        log = workdir / "logs" / "worker.log"
        offset = log.stat().st_size
        before = {name: process_cpu_s(pid) for name, pid in pids.items()}
        lost, rate = burst(app, photos)
        after = {name: process_cpu_s(pid) for name, pid in pids.items()}
        spent = {name: 1e3 * (after[name] - before[name]) / len(photos) for name in pids}
        totals = emf_totals(log, offset)
        latencies, paced_lost = paced(app, later, 0.8 * rate) if later else ([], 0)
        runtime_served = _runtime_of(served)
    count = max(1.0, totals.pop("Photos", 0.0))
    return Run(
        shape,
        runtime_served,
        len(photos),
        lost + paced_lost,
        rate,
        {name: ms for name, ms in spent.items() if name in STACK},
        {stage: totals.get(metric_name(stage), 0.0) / count for stage in STAGES},
        latencies,
        0.8 * rate if later else 0.0,
        {name: ms for name, ms in spent.items() if name not in STACK},
    )


def _runtime_of(embedder_url: str) -> str:
    import httpx

    return str(httpx.get(f"{embedder_url}/ping", timeout=10).json()["runtime"])


def rows(
    workdir: Path,
    n: int = PHOTOS,
    paced_n: int = PACED,
    shapes: Sequence[str] = pipeline_photos.SHAPES,
    runtimes: Sequence[str] = RUNTIMES,
    seed: int = 0,
) -> list[Run]:
    runs = []
    for shape in shapes:
        photos = pipeline_photos.make(shape, n, seed, workdir / "photos" / "burst")
        later = pipeline_photos.make(shape, paced_n, seed + 1, workdir / "photos" / "paced")
        for runtime in runtimes:
            runs.append(run_one(workdir / f"{shape}-{runtime}", shape, runtime, photos, later))
    return runs


def table(runs: list[Run]) -> list[Row]:
    """Rows of the printed table: the rate, the CPU, the latency, then the stages."""
    out = []
    for run in runs:
        baseline = next(
            (r for r in runs if r.shape == run.shape and r.runtime == "torch" and r is not run),
            None,
        )
        out += [rate_row(run, baseline), *cpu_rows(run), beside_row(run), cost_row(run)]
        if run.latencies:
            out.append(latency_row(run))
    return out


def rate_row(run: Run, baseline: Run | None) -> Row:
    """The burst's rate, against what the CPUs allow and against torch's."""
    vs = ""
    if baseline is not None:
        vs = (
            f"; vs torch: {run.rate / baseline.rate:.2f}x the rate, "
            f"{baseline.stack_ms / run.stack_ms:.2f}x less CPU"
        )
    return Row(
        f"{run.shape}, {run.runtime}: {run.photos} photos in a burst",
        None,
        value=f"{run.rate:.1f} photos/s",
        note=f"{run.rate / run.allowed_rate:.0%} of what the CPUs allow "
        f"({run.allowed_rate:.1f}/s); lost {run.lost}{vs}",
    )


def beside_row(run: Run) -> Row:
    """What shared the cores with the stack, and the share of them it left the stack."""
    beside = ", ".join(f"{name} {ms:.0f}" for name, ms in sorted(run.beside_ms.items()))
    return Row(
        "  CPU-ms a photo beside the stack",
        None,
        value=f"{sum(run.beside_ms.values()):.0f} ms",
        note=f"{beside}: the stack could have at most {run.stack_share:.0%} of the cores",
    )


def cpu_rows(run: Run) -> list[Row]:
    """A photo's CPU-ms: by process (against the embedder's own), then by stage."""
    embedder = run.cpu_ms.get("embedder", 0.0)
    ratio = f"; {run.stack_ms / embedder:.2f}x the embedder's own" if embedder else ""
    by_process = ", ".join(f"{name} {ms:.0f}" for name, ms in sorted(run.cpu_ms.items()))
    stages = ", ".join(f"{s} {ms:.1f}" for s, ms in run.stages.items() if ms > 0.05)
    return [
        Row(
            "  CPU-ms a photo, the stack",
            None,
            value=f"{run.stack_ms:.0f} ms",
            note=f"{by_process}{ratio}",
        ),
        Row("  CPU-ms a photo, by stage", None, value="", note=stages),
    ]


def cost_row(run: Run) -> Row:
    """What a 1,000 photos cost, by what is paid for."""
    priced = photo_costs(run.stages)
    return Row(
        "  USD per 1,000 photos",
        None,
        value=f"${sum(c.usd_a_thousand for c in priced):.4f}",
        note=", ".join(f"{c.what} ${c.usd_a_thousand:.4f}" for c in priced)
        + " (Terraform's default sizes, prices.json's example prices)",
    )


def latency_row(run: Run) -> Row:
    """Upload -> ready of the paced photos."""
    timing = Timing(
        statistics.median(run.latencies),
        float(np.percentile(run.latencies, 95)),
        len(run.latencies),
    )
    return Row(
        f"  upload -> ready, paced at {run.paced_rate:.1f} photos/s",
        timing,
        note=f"p50 {run.percentile(50):.2f} s, p99 {run.percentile(99):.2f} s (target p99 <= 3 s)",
    )


def photo_costs(stages: dict[str, float]) -> list[costs.PhotoCost]:
    """What these stages cost a 1,000 photos at Terraform's default memory sizes."""
    terraform = Path(__file__).resolve().parents[1] / "terraform"
    config = hcl.variable_defaults(terraform / "variables.tf")
    prices = json.loads((terraform / "prices.json").read_text())
    return costs.per_thousand_photos(config, prices, stages)


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            flags = Path("/proc/cpuinfo").read_text()
            extra = [f for f in ("avx512_vnni", "amx_int8") if f in flags]
            return line.split(":", 1)[1].strip() + (f" ({', '.join(extra)})" if extra else "")
    return "unknown CPU"


def main(argv: list[str] | None = None) -> list[Run]:
    parser = argparse.ArgumentParser(prog="python -m bench pipeline")
    parser.add_argument("--photos", type=int, default=PHOTOS)
    parser.add_argument("--paced", type=int, default=PACED)
    parser.add_argument("--shapes", nargs="+", default=list(pipeline_photos.SHAPES))
    parser.add_argument("--runtimes", nargs="+", default=list(RUNTIMES))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="photocluster-bench-") as tmp:
        runs = rows(Path(tmp), args.photos, args.paced, args.shapes, args.runtimes, args.seed)
    title = (
        f"the local stack, as a phone sees it (EfficientNet-Lite0; {cpu_name()}, "
        f"{os.cpu_count()} CPUs)"
    )
    print_table(title, table(runs))
    return runs


if __name__ == "__main__":
    main()
