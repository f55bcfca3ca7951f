"""The service images leave the quality tools out, and what they run still loads (issue 32).

No Docker engine here: each image's install is replayed as its Dockerfile runs it (its
COPY steps, ``--exclude`` included, and the pip install it ships, with the real
dependencies), into a folder standing for the image; then the image's ``pip list``, its
installed files, its entry files and the compose file's commands for it are checked.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers.dockerfile import Image, replay
from tests.helpers.procs import REPO

SERVICE_IMAGES = ("cluster-api", "ingest", "embedder")

#: What the deployment gives an entry file beyond its image's ENV (Terraform's settings).
DEPLOYED_ENV: dict[str, dict[str, str]] = {
    "services/cluster-api/handler.py": {
        "PHOTOCLUSTER_JWT_ISSUER": "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_a",
        "PHOTOCLUSTER_JWT_AUDIENCE": "app-client",
    },
    "services/ingest/handler.py": {"PHOTOCLUSTER_EMBEDDER_URL": "http://127.0.0.1:9"},
}


def quality_extra() -> set[str]:
    """The distributions the ``quality`` extra adds: what only the quality tools need."""
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    requirements = pyproject["project"]["optional-dependencies"]["quality"]
    return {_name(requirement) for requirement in requirements}


def _name(requirement: str) -> str:
    name = re.match(r"[A-Za-z0-9._-]+", requirement)
    assert name, requirement
    return re.sub(r"[-_.]+", "-", name[0]).lower()


def pip_list(image: Image) -> set[str]:
    """The distributions ``pip list`` shows in the image."""
    argv = [sys.executable, "-m", "pip", "list", "--format=json", "--path", str(image.site)]
    listed = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    return {_name(item["name"]) for item in json.loads(listed)}


def compose_commands(image_name: str) -> list[list[str]]:
    """The compose file's entrypoints run in the image that docker/{image_name}.Dockerfile
    builds (bootstrap, the worker and the API run the CLI in the service images)."""
    compose = yaml.safe_load((REPO / "docker" / "docker-compose.yml").read_text())
    services: dict[str, Any] = compose["services"]
    tags = {
        service["image"]
        for service in services.values()
        if service.get("build", {}).get("dockerfile") == f"docker/{image_name}.Dockerfile"
    }
    return [
        service["entrypoint"]
        for service in services.values()
        if service.get("image") in tags and "entrypoint" in service
    ]


@pytest.mark.slow
@pytest.mark.parametrize("image_name", SERVICE_IMAGES)
def test_the_image_ships_no_quality_tools_and_what_it_runs_still_loads(
    image_name: str, tmp_path: Path
) -> None:
    image = replay(REPO / "docker" / f"{image_name}.Dockerfile", REPO, tmp_path / "image")
    (record,) = image.site.glob("photocluster-*.dist-info/RECORD")
    installed = record.read_text().splitlines()
    assert [line for line in installed if line.startswith("photocluster/quality/")] == []
    assert not (image.site / "photocluster" / "quality").exists()
    listed = pip_list(image)
    assert "photocluster" in listed and listed & quality_extra() == set()

    env = {"AWS_DEFAULT_REGION": "us-east-1", "PHOTOCLUSTER_STORE_ROOT": str(tmp_path / "efs")}
    entries = {src: path for src, path in image.copied.items() if src.startswith("services/")}
    assert entries, "the image copies its entry files from services/"
    for source, path in entries.items():
        # As Lambda's init imports a handler, or as `serve` starts (its main() not called).
        load = f"import runpy; runpy.run_path({str(path)!r})"
        loaded = image.python_run("-c", load, env={**env, **DEPLOYED_ENV.get(source, {})})
        assert loaded.returncode == 0, f"{source}: {loaded.stderr[-3000:]}"
    for entrypoint in compose_commands(image_name):
        assert entrypoint[0] == "python3", entrypoint
        parsed = image.python_run(*entrypoint[1:], "--help", env=env)
        assert parsed.returncode == 0, f"{shlex.join(entrypoint)}: {parsed.stderr[-3000:]}"
