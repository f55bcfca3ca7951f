"""`make bench-scale`: a user's library shaped like a real one (bench/scale_data.py) at
N = 2,000 / 20,000 / 100,000 photos (issue 28): the import, every read route's first call
in a new process and its warm latency, bytes read and peak RSS, the writer at that N against
a brand-new user, and the seed's method (scikit-learn on demand) as the baseline.

Every figure comes from a fresh child process (bench/scale_probe.py) run with the OS page
cache warm (a throwaway child reads every route first): a first call here is a new Lambda
instance's first request on a warm EFS cache, without the interpreter's start and imports.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench import scale_probe
from bench.scale_data import SHAPES, image_id
from bench.scale_report import print_table, table
from photocluster.calibrations import built_in
from photocluster.config import OFFLINE_MODEL, Settings

REPO = Path(__file__).resolve().parents[1]
SECRET = "benchmark-secret-of-at-least-32-characters"  # noqa: S105 - local HS256 only
USER = "scale-user"


@dataclass(frozen=True)
class Route:
    """A request after /v1/users/{user}: ``{image}`` is a photo in the middle of the library;
    ``{photo}`` and ``{other}`` are photos of this call alone (a call that changes the
    library changes other photos than the calls before it)."""

    method: str
    path: str
    body: dict[str, Any] | None = None
    #: with an upload bucket configured (presigning is local; a delete would call S3, which
    #: this machine cannot reach: it is measured without one, its S3 call left out)
    bucket: bool = False

    def request(self, n: int, call: int) -> list[Any]:
        names = {
            "image": image_id(n // 2),
            "photo": image_id(n // 4 + 2 * call),
            "other": image_id(n // 4 + 2 * call + 1),
            "call": str(call),
        }
        body = _filled(self.body, names) if self.body else None
        return [self.method, f"/v1/users/{USER}{self.path.format(**names)}", body]


def _filled(value: Any, names: dict[str, str]) -> Any:
    """``value`` (a JSON body) with the placeholders in its strings replaced."""
    if isinstance(value, str):
        return value.format(**names)
    if isinstance(value, list):
        return [_filled(item, names) for item in value]
    if isinstance(value, dict):
        return {key: _filled(item, names) for key, item in value.items()}
    return value


#: Every route of the API a phone calls, by what it is called in the table.
ROUTES: dict[str, Route] = {
    "GET stats": Route("GET", "/stats"),
    "GET clusters": Route("GET", "/clusters"),
    "GET clusters?tier=high&limit=50": Route("GET", "/clusters?tier=high&limit=50"),
    "GET clusters?low=0.5&medium=0.6&high=0.8": Route(
        "GET", "/clusters?low=0.5&medium=0.6&high=0.8"
    ),
    "GET images/{id}/similar?k=20": Route("GET", "/images/{image}/similar?k=20"),
    "GET images?limit=100": Route("GET", "/images?limit=100"),
    "GET images/{id}": Route("GET", "/images/{image}"),
    "GET pairs": Route("GET", "/pairs"),
    "POST uploads": Route(
        "POST",
        "/uploads",
        {"filename": "new-{call}.jpg", "content_type": "image/jpeg", "size": 1000},
        True,
    ),
    "PUT decisions/not-similar": Route(
        "PUT", "/decisions/not-similar", {"image_ids": ["{photo}", "{other}"]}
    ),
    "GET decisions": Route("GET", "/decisions"),
    "DELETE images/{id}": Route("DELETE", "/images/{photo}"),
}
#: The bucket the upload route presigns for (presigning is local: no request leaves).
BUCKET = "bench-uploads"
_TIERS = tuple(built_in(OFFLINE_MODEL).thresholds.as_dict().values())
#: The seed's method for the routes it had: (kind, thresholds).
BASELINES: dict[str, tuple[str, tuple[float, ...]]] = {
    "GET clusters": ("clusters", _TIERS),
    "GET clusters?tier=high&limit=50": ("clusters", _TIERS[-1:]),
    "GET clusters?low=0.5&medium=0.6&high=0.8": ("clusters", (0.5, 0.6, 0.8)),
    "GET images/{id}/similar?k=20": ("similar", ()),
}
#: The baseline's N x N float32 matrix must fit in this (and its repeats are few past 5,000).
BASELINE_MATRIX_MAX = 4 * 10**9
WRITER_BATCHES = (1, 10)
#: Photos the benchmark may add to a library past its N (uploads, the writer's batches).
ROOM = 1000


def images_cap(n: int) -> int:
    """A per-user cap (``max_images_per_user``) that lets a library of ``n`` photos grow by
    what the benchmark adds (the upload route's tickets, 3 runs of each writer batch): the
    default unless that passes it."""
    field = Settings.model_fields.get("max_images_per_user")
    default = field.default if field is not None else 0
    return max(int(default), n + ROOM)


@dataclass(frozen=True)
class Process:
    """A finished child: its wall time, peak RSS and bytes read (whole process), stdout."""

    wall_s: float
    maxrss: int
    rchar: int
    stdout: str


def run_measured(argv: list[str], env: dict[str, str] | None = None) -> Process:
    """Run ``argv`` to its end; its peak RSS from wait4 (which starts at this process's RSS
    at fork: Linux carries it over exec, so this process stays small), its rchar read while
    it is a zombie."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        child = subprocess.Popen(argv, stdout=out, stderr=err, cwd=REPO, env=env)
        os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)
        wall = time.perf_counter() - start
        rchar = scale_probe.read_rchar(child.pid)
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if child.returncode:
        raise RuntimeError(f"{' '.join(argv[:4])} exited {child.returncode}: {stderr[-3000:]}")
    return Process(wall, usage.ru_maxrss * 1024, rchar, stdout)


def spawn(kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    """A child probe's JSON, with its whole process's wall time."""
    argv = [sys.executable, "-m", "bench.bench_scale", "--child", kind, "--spec", json.dumps(spec)]
    done = run_measured(argv)
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return report | {"process_s": done.wall_s}


def import_library(root: Path, npz: Path, n: int) -> dict[str, Any]:
    """``photocluster import-embeddings`` into a fresh store root, as a person runs it."""
    env = {
        **os.environ,
        "PHOTOCLUSTER_STORE_ROOT": str(root),
        "PHOTOCLUSTER_MODEL": OFFLINE_MODEL,
        "PHOTOCLUSTER_MAX_IMAGES_PER_USER": str(images_cap(n)),
    }
    cli = str(Path(sys.executable).parent / "photocluster")
    done = run_measured([cli, "import-embeddings", "--user", USER, str(npz)], env)
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    return {"wall_s": done.wall_s, "maxrss": done.maxrss, "rchar": done.rchar, "cli": summary}


def measure_routes(root: Path, n: int, repeats: int) -> dict[str, dict[str, Any]]:
    """Each route's first call in a new process, then its warm calls in that process (a
    throwaway process calls every route first: the page cache is warm, as on a warm EFS)."""
    spec = {"root": str(root), "model": OFFLINE_MODEL, "secret": SECRET, "user": USER}
    spec |= {"max_images": images_cap(n)}  # an upload measured, not its refusal at the cap
    reads = [route.request(n, repeats + 1) for route in ROUTES.values() if route.method == "GET"]
    spawn("api", spec | {"requests": reads, "first": len(reads)})
    out = {}
    for name, route in ROUTES.items():
        requests = [route.request(n, call) for call in range(1 + repeats)]
        bucket = {"bucket": BUCKET} if route.bucket else {}
        report = spawn("api", spec | bucket | {"requests": requests, "first": 1})
        out[name] = {"path": requests[0][1], "first": report["first"][0], "warm": _summary(report)}
        out[name]["first"]["import_and_app_s"] = report["import_and_app_s"]
    return out


def _summary(report: dict[str, Any]) -> dict[str, Any]:
    """Median and p95 of the warm calls; bytes read per call (median); the peak RSS."""
    latencies = [call["latency_s"] for call in report["warm"]]
    return {
        "median_s": float(np.median(latencies)) if latencies else None,
        "p95_s": float(np.percentile(latencies, 95)) if latencies else None,
        "rchar": int(np.median([call["rchar"] for call in report["warm"]] or [0])),
        "faults": int(np.median([call["faults"] for call in report["warm"]] or [0])),
        "maxrss": report["maxrss"],
        "runs": len(latencies),
    }


def measure_baselines(npy: Path, n: int, repeats: int) -> dict[str, dict[str, Any]]:
    """The seed's method per route that had one; clusters skipped where N x N won't fit."""
    out: dict[str, dict[str, Any]] = {}
    for name, (kind, thresholds) in BASELINES.items():
        if kind == "clusters" and n * n * 4 > BASELINE_MATRIX_MAX:
            gb = n * n * 4 / 1e9
            out[name] = {"skipped": f"the N x N matrix would take N^2 x 4 B = {gb:,.0f} GB"}
            continue
        runs = repeats if kind == "similar" or n <= 5000 else 1
        spec = {"npy": str(npy), "kind": kind, "thresholds": list(thresholds)}
        report = spawn("baseline", spec | {"row": n // 2, "k": 20, "repeats": runs})
        out[name] = {"first": report["first"], "warm": _summary(report)}
    return out


def measure_writer(root: Path, folder: Path, n: int, runs: int) -> dict[str, dict[str, Any]]:
    """One photo and a batch of 10, each in a fresh process, into this library and into a
    brand-new user's (``runs`` each, new photos every run; the per-user cap raised to let
    a library at the cap grow: what is measured is the write, not its refusal)."""
    out: dict[str, dict[str, Any]] = {}
    for count in WRITER_BATCHES:
        for who in ("library", "new user"):
            reports = []
            for run in range(runs):
                npz = scale_probe.new_photos_file(folder, count, run)
                user = USER if who == "library" else f"new-user-{count}-{run}"
                spec = {"root": str(root), "model": OFFLINE_MODEL, "npz": str(npz), "user": user}
                reports.append(spawn("writer", spec | {"max_images": images_cap(n)}))
            out[f"{count} {who}"] = _writer_summary(reports) | {"max_images": images_cap(n)}
    return out


def _writer_summary(reports: list[dict[str, Any]]) -> dict[str, Any]:
    times = [report["write_s"] for report in reports]
    return {
        "median_s": float(np.median(times)),
        "p95_s": float(np.percentile(times, 95)),
        "rchar": int(np.median([report["rchar"] for report in reports])),
        "maxrss": max(report["maxrss"] for report in reports),
        "process_s": float(np.median([report["process_s"] for report in reports])),
        "runs": len(reports),
    }


def measure_library(folder: Path, shape: str, n: int, repeats: int) -> dict[str, Any]:
    """Build one library in a fresh store root and measure everything on it."""
    folder.mkdir(parents=True, exist_ok=True)
    runs = 3 if repeats >= 3 else 1  # writer runs: each a process reading the whole library
    spec = {"folder": str(folder), "n": n, "shape": shape, "batches": WRITER_BATCHES}
    spawn("prepare", spec | {"runs": runs})
    root = folder / "store"
    _progress(f"{shape} N={n}: import")
    result: dict[str, Any] = {"n": n, "import": import_library(root, folder / "library.npz", n)}
    (folder / "library.npz").unlink()
    _progress(f"{shape} N={n}: read routes")
    result["routes"] = measure_routes(root, n, repeats)
    _progress(f"{shape} N={n}: baselines")
    result["baselines"] = measure_baselines(folder / "vectors.npy", n, repeats)
    (folder / "vectors.npy").unlink()
    _progress(f"{shape} N={n}: writer")
    result["writer"] = measure_writer(root, folder, n, runs)
    return result


def _progress(text: str) -> None:
    print(f"# {time.strftime('%H:%M:%S')} {text}", file=sys.stderr, flush=True)


def _cpu_ticks() -> list[int]:
    """The machine's CPU time so far, by kind (the first line of /proc/stat)."""
    return [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]


def _machine(load: float, before: list[int]) -> str:
    """CPUs, load and stolen time over a run: on a shared or virtual machine they say
    whether something else ran beside these figures."""
    spent = [b - a for a, b in zip(before, _cpu_ticks(), strict=True)]
    steal = spent[7] / max(1, sum(spent))  # user nice system idle iowait irq softirq steal
    return (
        f"{os.cpu_count()} CPUs, load average {load:.2f} -> {os.getloadavg()[0]:.2f}, "
        f"CPU time stolen by the host {steal:.1%}"
    )


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_scale", description=__doc__)
    parser.add_argument("--sizes", default="2000,20000,100000", help="library sizes, N")
    parser.add_argument("--shapes", default="typical,big-topics", help=", ".join(SHAPES))
    parser.add_argument("--repeats", type=int, default=10, help="warm calls per route")
    parser.add_argument("--out", type=Path, help="work folder, kept (default: a temp folder)")
    parser.add_argument("--json", type=Path, help="also write every figure here")
    parser.add_argument("--child", choices=sorted(scale_probe.PROBES), help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    unknown = set(args.shapes.split(",")) - set(SHAPES)
    if unknown:
        parser.error(f"unknown shape(s) {sorted(unknown)}; known: {', '.join(SHAPES)}")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    if args.child:
        print(json.dumps(scale_probe.PROBES[args.child](json.loads(args.spec))))
        return
    sizes = [int(size) for size in args.sizes.split(",")]
    workdir = args.out or Path(tempfile.mkdtemp(prefix="bench-scale-"))
    results: dict[str, Any] = {"sizes": sizes, "repeats": args.repeats, "shapes": {}}
    try:
        for shape in args.shapes.split(","):
            load, cpu = os.getloadavg()[0], _cpu_ticks()
            measured = {
                n: measure_library(workdir / f"{shape}-{n}", shape, n, args.repeats) for n in sizes
            }
            lines = table(measured)
            machine = _machine(load, cpu)
            print_table(f"{shape}: {SHAPES[shape].summary}", lines, machine)
            results["shapes"][shape] = {
                "sizes": {str(n): result for n, result in measured.items()},
                "table": [line.__dict__ for line in lines],
                "machine": machine,
            }
    finally:
        if args.out is None:
            shutil.rmtree(workdir, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main(sys.argv[1:])
