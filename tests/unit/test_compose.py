"""docker/docker-compose.yml, checked without a Docker engine."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

DOCKER = Path(__file__).resolve().parents[2] / "docker"
COMPOSE = DOCKER / "docker-compose.yml"


def services() -> dict[str, Any]:
    return dict(yaml.safe_load(COMPOSE.read_text())["services"])


@pytest.mark.skipif(
    shutil.which("docker-compose") is None,
    reason="Debian's docker-compose is not installed (make system-tools)",
)
def test_compose_file_is_valid() -> None:
    result = subprocess.run(
        ["docker-compose", "-f", str(COMPOSE), "config", "-q"],
        capture_output=True,
        text=True,
        check=False,
        cwd=DOCKER,
        env={**os.environ, "PHOTOCLUSTER_JWT_SECRET": "x" * 32},
    )
    assert result.returncode == 0, result.stderr


def test_every_build_uses_a_dockerfile_of_the_project() -> None:
    for name, service in services().items():
        build = service.get("build")
        if build:
            assert (DOCKER.parent / build["dockerfile"]).is_file(), name


def test_published_ports_listen_on_loopback_only() -> None:
    for name, service in services().items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), (name, port)


def test_the_worker_invokes_the_writer_container_through_the_lambda_api() -> None:
    worker = services()["worker"]["environment"]
    assert worker["AWS_ENDPOINT_URL_LAMBDA"] == "http://writer:8080"
    assert worker["PHOTOCLUSTER_WRITER_FUNCTION"] == "function"
    assert services()["writer"]["command"] == ["writer.handler"]
    assert services()["embedder"]["build"]["args"]["MODEL_ID"] == "efficientnet-lite0-layout"
