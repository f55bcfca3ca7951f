"""The child processes of ``make bench-scale``: each measures itself and prints JSON.

A fresh process per measurement, so that its first call, its bytes read and its peak RSS
are the library's and not the benchmark's. Each child imports only what it measures (the
imports are in the functions on purpose): the writer never loads FastAPI, the API never
loads scikit-learn, and the peak RSS of each is its own.
"""

from __future__ import annotations

import asyncio
import resource
import time
from pathlib import Path
from typing import Any

import numpy as np

Spec = dict[str, Any]


def counters() -> dict[str, int]:
    """This process's bytes read through read(2) and friends (``rchar``), page faults, and
    peak RSS in bytes so far.

    The peak is VmHWM, not ``ru_maxrss``: Linux carries the parent's RSS at fork over
    exec into ``ru_maxrss``, so a child of a large parent would report the parent's size."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "rchar": _proc_field("io", "rchar:"),
        "faults": usage.ru_minflt + usage.ru_majflt,
        "major_faults": usage.ru_majflt,
        "maxrss": _proc_field("status", "VmHWM:") * 1024,
    }


def read_rchar(pid: int) -> int:
    """``rchar`` of another process (readable while it is a zombie: the parent reads it there)."""
    return _proc_field("io", "rchar:", str(pid))


def _proc_field(name: str, field: str, pid: str = "self") -> int:
    for line in Path(f"/proc/{pid}/{name}").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/{pid}/{name} has no {field}")


def delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """What a call read and faulted in, and the peak RSS after it."""
    return {
        "rchar": after["rchar"] - before["rchar"],
        "faults": after["faults"] - before["faults"],
        "major_faults": after["major_faults"] - before["major_faults"],
        "maxrss": after["maxrss"],
    }


def api(spec: Spec) -> dict[str, Any]:
    """Build the app on the store root, make each of ``requests`` (method, path, JSON body)
    in turn: the first ``first`` of them are this process's first calls, the rest warm."""
    start = time.perf_counter()
    import os

    from photocluster.api.auth import make_token
    from photocluster.api.main import create_app
    from photocluster.config import Settings

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):  # presigning is local
        os.environ.setdefault(name, "bench")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    settings = Settings(
        store_root=Path(spec["root"]),
        model=spec["model"],
        jwt_secret=spec["secret"],
        bucket=spec.get("bucket"),
        max_images_per_user=spec["max_images"],
    )
    app = create_app(settings)
    ready_s = time.perf_counter() - start
    token = make_token(spec["secret"], spec["user"])
    calls = asyncio.run(_requests(app, token, spec["requests"]))
    first = spec["first"]
    return {
        "import_and_app_s": ready_s,
        "first": calls[:first],
        "warm": calls[first:],
        "maxrss": counters()["maxrss"],
    }


async def _requests(app: Any, token: str, requests: list[list[Any]]) -> list[dict[str, Any]]:
    import httpx

    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        return [await _call(client, method, path, body, headers) for method, path, body in requests]


async def _call(
    client: Any, method: str, path: str, body: Any, headers: dict[str, str]
) -> dict[str, Any]:
    before = counters()
    start = time.perf_counter()
    response = await client.request(method, path, headers=headers, json=body)
    elapsed = time.perf_counter() - start
    if not 200 <= response.status_code < 300:
        raise RuntimeError(f"{method} {path}: {response.status_code} {response.text[:500]}")
    return {"path": path, "latency_s": elapsed, "body_bytes": len(response.content)} | delta(
        before, counters()
    )


def writer(spec: Spec) -> dict[str, Any]:
    """One ``Library.write`` of the vectors in ``npz`` (a writer Lambda's first call: its
    module load has imported scipy's hierarchical clustering, as the handler's does)."""
    from photocluster.clustering import linkage
    from photocluster.config import Settings
    from photocluster.library import Library

    linkage.preload()  # services/ingest/writer.py's init (handlers.py): not a write's cost

    settings = Settings(
        store_root=Path(spec["root"]),
        model=spec["model"],
        max_images_per_user=spec["max_images"],
    )
    with np.load(spec["npz"]) as data:
        ids, vectors = [str(i) for i in data["ids"]], data["embeddings"]
    library = Library.from_settings(settings)
    before = counters()
    start = time.perf_counter()
    result = library.write(spec["user"], spec["model"], ids, vectors)
    elapsed = time.perf_counter() - start
    return {"write_s": elapsed, "result": result.to_dict()} | delta(before, counters())


def baseline(spec: Spec) -> dict[str, Any]:
    """The seed's method, on demand from an .npy of the vectors: ``similar`` scores one row
    against all; ``clusters`` the whole matrix, thresholded, connected components."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components
    from sklearn.metrics.pairwise import cosine_similarity

    def similar() -> object:
        vectors = np.load(spec["npy"])
        row = spec["row"]
        scores = cosine_similarity(vectors[row : row + 1], vectors)[0]
        top = np.argpartition(-scores, spec["k"])[: spec["k"] + 1]
        return top[np.argsort(-scores[top])]

    def clusters() -> object:
        scores = cosine_similarity(np.load(spec["npy"]))
        return [
            connected_components(csr_matrix(scores >= threshold), directed=False)
            for threshold in spec["thresholds"]
        ]

    call = {"similar": similar, "clusters": clusters}[spec["kind"]]
    calls = []
    for _ in range(1 + spec["repeats"]):
        before = counters()
        start = time.perf_counter()
        call()
        calls.append({"latency_s": time.perf_counter() - start} | delta(before, counters()))
    return {"first": calls[0], "warm": calls[1:], "maxrss": counters()["maxrss"]}


def prepare(spec: Spec) -> dict[str, Any]:
    """Write the library (``library.npz`` for the import, ``vectors.npy`` for the baseline)
    and the writer's new photos into ``folder``. A child too: the benchmark's own process
    stays small, and the import's peak RSS (``ru_maxrss``, which starts at its parent's RSS
    at fork) is the import's."""
    from bench.scale_data import generate, new_photos

    folder = Path(spec["folder"])
    library = generate(spec["n"], spec["shape"])
    np.savez(folder / "library.npz", ids=np.array(library.ids), embeddings=library.vectors)
    np.save(folder / "vectors.npy", library.vectors)
    for count in spec["batches"]:
        for run in range(spec["runs"]):
            ids = np.array([f"new-{count}-{run}-{j:03d}" for j in range(count)])
            vectors = new_photos(library, count, seed=run + 7 * count)
            np.savez(new_photos_file(folder, count, run), ids=ids, embeddings=vectors)
    return {"n": len(library.ids)}


def new_photos_file(folder: Path, count: int, run: int) -> Path:
    return folder / f"new-{count}-{run}.npz"


PROBES = {"api": api, "writer": writer, "baseline": baseline, "prepare": prepare}
