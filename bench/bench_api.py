"""Cluster API latency: the whole request through the ASGI app (auth, validation, clustering,
JSON), through the Lambda handler (Mangum, API Gateway REST event), next to the clustering
core alone; and the handler module's cold import, measured as a whole process."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from bench.common import Row, Timing, measure, print_table
from bench.data import library as synthetic_library
from photocluster.api.auth import make_token
from photocluster.api.main import create_app
from photocluster.config import Settings
from photocluster.library import Library

REPO = Path(__file__).resolve().parents[1]
SECRET = "benchmark-secret-of-at-least-32-characters"  # noqa: S105 - local HS256 only
#: The issuer and app client a Cognito authorizer's claims name (behind API Gateway the app
#: checks both, as the deployment configures them).
ISSUER = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_bench"
AUDIENCE = "bench-client"


def asgi_timing(app: object, path: str, token: str, repeats: int, etag: bool = False) -> Timing:
    """GET ``path`` through the ASGI app; ``etag``: with If-None-Match of the first answer
    (the 304 path of an app whose copy is current)."""

    async def run() -> Timing:
        transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            headers = {"Authorization": f"Bearer {token}"}
            if etag:
                first = await client.get(path, headers=headers)
                headers["If-None-Match"] = first.headers["etag"]
            samples = []
            for index in range(repeats + 2):
                start = time.perf_counter()
                response = await client.get(path, headers=headers)
                elapsed = time.perf_counter() - start
                assert response.status_code == (304 if etag else 200), response.text
                if index >= 2:
                    samples.append(elapsed)
            samples.sort()
            return Timing(
                samples[len(samples) // 2], samples[int(len(samples) * 0.95) - 1], len(samples)
            )

    return asyncio.run(run())


def rest_event(user: str) -> dict[str, object]:
    path = f"/v1/users/{user}/clusters"
    return {
        "resource": "/v1/users/{user_id}/{proxy+}",
        "path": path,
        "httpMethod": "GET",
        "headers": {"Host": "api.example"},
        "multiValueHeaders": {},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": {"user_id": user},
        "stageVariables": None,
        "body": None,
        "isBase64Encoded": False,
        "requestContext": {
            "httpMethod": "GET",
            "path": path,
            "stage": "v1",
            "requestId": "r",
            "identity": {"sourceIp": "203.0.113.7"},
            "authorizer": {"claims": {"sub": user, "iss": ISSUER, "aud": AUDIENCE}},
        },
    }


def cold_import(times: int = 7) -> tuple[Timing, Timing]:
    env = {
        **os.environ,
        "PHOTOCLUSTER_AUTH_MODE": "apigateway",
        "PHOTOCLUSTER_JWT_ISSUER": ISSUER,
        "PHOTOCLUSTER_JWT_AUDIENCE": AUDIENCE,
        "PHOTOCLUSTER_STORE_ROOT": tempfile.gettempdir(),
    }
    handler = str(REPO / "services/cluster-api/handler.py")

    def run(code: str) -> None:
        subprocess.run([sys.executable, "-c", code], env=env, check=True)

    return (
        measure(lambda: run(f"import runpy; runpy.run_path({handler!r})"), times),
        measure(lambda: run("pass"), times),
    )


def decisions_rows(
    library: Library, app: object, user: str, token: str, repeats: int, plain: Timing
) -> list[Row]:
    """GET clusters once the user marked 50 pairs of grouped photos not similar (every
    mark splits a group), and the 304 answer to a client whose copy is current."""
    path = f"/v1/users/{user}/clusters"
    for group in library.clusters(user).tiers[0].groups[:50]:
        library.mark_not_similar(user, group[:2])
    marked = asgi_timing(app, path, token, repeats)
    not_modified = asgi_timing(app, path, token, repeats, etag=True)
    n = library.store.read(user).n
    return [
        Row(f"N={n} GET clusters, 50 not-similar pairs", marked, plain, note="baseline = none"),
        Row(
            f"N={n} GET clusters with a current ETag: 304",
            not_modified,
            plain,
            note="baseline = the 200 answer",
        ),
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench api")
    parser.add_argument("--sizes", default="2000,20000", help="library sizes, comma-separated")
    parser.add_argument("--repeats", type=int, help="requests a case (default: 41, 21 at 20k)")
    parser.add_argument("--imports", type=int, default=7, help="cold imports timed")
    args = parser.parse_args(argv)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        library, app, handler = serving(Path(tmp))
        for n in (int(size) for size in args.sizes.split(",")):
            rows += size_rows(library, app, handler, n, args.repeats)
    rows.append(cold_import_row(args.imports))
    print_table("cluster API latency", rows)


def serving(root: Path) -> tuple[Library, object, Callable[..., dict[str, Any]]]:
    """A library under ``root``, the ASGI app serving it, and the Lambda handler (Mangum
    around the app with API Gateway's authorizer)."""
    settings = Settings(
        store_root=root,
        model="bench",
        store_fsync=False,
        jwt_secret=SECRET,
        low=0.6,
        medium=0.75,
        high=0.9,
    )
    library = Library.from_settings(settings)
    app = create_app(settings, library)
    lambda_settings = settings.model_copy(
        update={"auth_mode": "apigateway", "jwt_issuer": ISSUER, "jwt_audience": AUDIENCE}
    )
    from mangum import Mangum

    handler = Mangum(create_app(lambda_settings, library), lifespan="off")
    return library, app, handler


def size_rows(
    library: Library,
    app: object,
    handler: Callable[..., dict[str, Any]],
    n: int,
    repeats: int | None = None,
) -> list[Row]:
    """GET clusters at ``n`` photos: the core, the ASGI app, the Lambda handler, decisions."""
    user = f"u{n}"
    ids, vectors = synthetic_library(n)
    library.store.upsert(user, "bench", ids, vectors)
    library.reindex(user)
    repeats = repeats or (41 if n <= 2000 else 21)
    core = measure(lambda: library.clusters(user), repeats)
    token = make_token(SECRET, user)
    asgi = asgi_timing(app, f"/v1/users/{user}/clusters", token, repeats)
    complete = asgi_timing(app, f"/v1/users/{user}/clusters?linkage=complete", token, repeats)
    event = rest_event(user)
    asyncio.set_event_loop(asyncio.new_event_loop())  # Mangum runs on the thread's loop
    via_lambda = measure(lambda: json.loads(handler(event, None)["body"]), repeats)
    with_decisions = decisions_rows(library, app, user, token, repeats, asgi)
    return [
        Row(f"N={n} clustering core (warm)", core),
        Row(
            f"N={n} GET clusters through the ASGI app",
            asgi,
            core,
            ratio=False,
            note=f"baseline = core; adds {(asgi.median_s - core.median_s) * 1e3:.1f} ms",
        ),
        Row(
            f"N={n} GET clusters, default linkage (average)",
            asgi,
            complete,
            note="baseline = ?linkage=complete (scores read off its dendrogram)",
        ),
        Row(
            f"N={n} same through the Lambda handler (Mangum)",
            via_lambda,
            core,
            ratio=False,
            note="API Gateway REST event, authorizer claims",
        ),
        *with_decisions,
    ]


def cold_import_row(times: int = 7) -> Row:
    handler_import, interpreter = cold_import(times)
    return Row(
        "cold import of services/cluster-api/handler.py",
        handler_import,
        interpreter,
        ratio=False,
        note="whole process; baseline = python -c pass",
    )


if __name__ == "__main__":
    main()
