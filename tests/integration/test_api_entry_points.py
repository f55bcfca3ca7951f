"""The two ways to reach the application: ``from photocluster.api import app`` in code,
and ``uvicorn photocluster.api:app`` on the command line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx

from photocluster.api.auth import make_token
from tests.helpers.procs import Server, free_port, python_argv

SECRET = "entry-point-test-secret-of-32-characters"


def test_import_app_gives_the_application_even_after_its_submodules(tmp_path: Path) -> None:
    # Importing a submodule binds its name on the package: a submodule called `app` used
    # to shadow the application. None is called that now.
    script = """
import photocluster.api.main, photocluster.api.routers.clusters, photocluster.api.deps
from fastapi import FastAPI
from photocluster.api import app
assert isinstance(app, FastAPI), type(app)
print(sorted(app.openapi()["paths"]))
"""
    env = {
        "PATH": "/usr/bin:/bin",
        "PHOTOCLUSTER_AUTH_MODE": "apigateway",
        "PHOTOCLUSTER_JWT_ISSUER": "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_a",
        "PHOTOCLUSTER_JWT_AUDIENCE": "app-client",
    }
    env["PHOTOCLUSTER_STORE_ROOT"] = str(tmp_path)
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr
    assert "/v1/users/{user_id}/clusters" in out.stdout


def test_uvicorn_serves_photocluster_api_app(tmp_path: Path) -> None:
    port = free_port()
    server = Server(
        python_argv("-m", "uvicorn", "photocluster.api:app", "--port", str(port), "--workers", "2"),
        {"PHOTOCLUSTER_STORE_ROOT": str(tmp_path), "PHOTOCLUSTER_JWT_SECRET": SECRET},
        tmp_path / "uvicorn.log",
    )
    try:
        url = f"http://127.0.0.1:{port}"
        server.wait_until(lambda: httpx.get(f"{url}/health").status_code == 200, timeout=60)
        headers = {"Authorization": f"Bearer {make_token(SECRET, 'alice')}"}
        answer = httpx.get(f"{url}/v1/users/alice/clusters", headers=headers)
        assert answer.status_code == 200
        assert answer.json()["n_images"] == 0
        assert httpx.get(f"{url}/v1/users/alice/clusters").status_code == 401
        token = make_token(SECRET, "alice")
        page = httpx.get(f"{url}/v1/users/alice/gallery?access_token={token}")
        assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    finally:
        server.stop()
    log = (tmp_path / "uvicorn.log").read_text()
    assert "/gallery?access_token=[redacted]" in log  # the access log has the request...
    assert token not in log and token.split(".")[2] not in log  # ...but not the token
