"""The whole local pipeline, end to end: emulated S3 and SQS, the embedder with the offline
encoder, the ingest worker calling the real handlers, the cluster API.

By default the stack runs as subprocesses on free loopback ports. With
PHOTOCLUSTER_E2E_EXTERNAL=1 the same test runs against a stack someone else started (the
docker compose stack: ``make compose-test``), reading AWS_ENDPOINT_URL,
PHOTOCLUSTER_E2E_API_URL and PHOTOCLUSTER_JWT_SECRET.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from photocluster.local.aws import Resources, emulator_client, resource_names
from photocluster.local.demo import (
    DEMO_USER,
    Options,
    Running,
    dead_letters,
    start,
    token,
    upload_samples,
    wait_until_stored,
)
from photocluster.local.stack import Stack, free_port
from tests.helpers.procs import REPO

EXTERNAL = os.environ.get("PHOTOCLUSTER_E2E_EXTERNAL") == "1"


def gone(pid: int) -> bool:
    """True when neither the process nor anything left in its process group exists."""
    for probe in (os.kill, os.killpg):
        try:
            probe(pid, 0)
            return False
        except ProcessLookupError:
            continue
    return True


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    if EXTERNAL:
        aws_url = os.environ["AWS_ENDPOINT_URL"]
        sqs = emulator_client("sqs", aws_url)
        names = resource_names(os.environ.get("PHOTOCLUSTER_NAME", "photocluster-local"))
        urls = {k: sqs.get_queue_url(QueueName=names[k])["QueueUrl"] for k in ("queue", "dlq")}
        resources = Resources(names["bucket"], urls["queue"], "", urls["dlq"], "")
        yield Running(
            Stack(tmp_path),
            aws_url,
            os.environ.get("PHOTOCLUSTER_E2E_API_URL", "http://127.0.0.1:8000"),
            "",
            resources,
            os.environ["PHOTOCLUSTER_JWT_SECRET"],
            {},
        )
        return
    options = Options(
        workdir=tmp_path,
        aws_port=free_port(),
        api_port=free_port(),
        embedder_port=free_port(),
        queue_delay_s=0,
    )
    with Stack(tmp_path) as stack:
        yield start(options, stack, thumbnails_from_files=False, say=print)
    for pid in stack.pids():
        assert gone(pid), f"process {pid} survived the stack"


def test_uploads_end_up_clustered_as_their_groups(running: Running, tmp_path: Path) -> None:
    truth = upload_samples(running, tmp_path)  # 6 groups of 4 edited versions, 4 unrelated
    s3 = emulator_client("s3", running.aws_url)
    s3.put_object(
        Bucket=running.resources.bucket, Key=f"uploads/{DEMO_USER}/clip.mov", Body=b"not a photo"
    )  # skipped, never blocks anything
    wait_until_stored(running, len(truth), timeout_s=240)

    headers = {"Authorization": f"Bearer {token(running)}"}
    clusters = httpx.get(f"{running.api_url}/v1/users/{DEMO_USER}/clusters", headers=headers).json()
    assert clusters["n_images"] == len(truth) == 28
    assert clusters["model"] == "efficientnet-lite0"
    low, _, high = (tier["groups"] for tier in clusters["tiers"])
    sample_groups = {g for g in truth.values() if g}
    for group in sample_groups:  # every sample group lies whole inside one low-tier group
        members = {i for i, g in truth.items() if g == group}
        assert any(members <= set(found) for found in low), group
    for found in low + high:  # and no group mixes two samples
        assert len({truth[i] for i in found}) == 1, found
    singletons = {i for i, g in truth.items() if g is None}
    assert not singletons & {i for found in low for i in found}

    reports = dead_letters(running)
    assert [(r["key"], r["error_type"]) for r in reports] == [
        (f"uploads/{DEMO_USER}/broken.jpg", "InvalidImage")
    ]

    gallery = httpx.get(f"{running.api_url}/v1/users/{DEMO_USER}/gallery", headers=headers)
    assert gallery.status_code == 200 and "astronaut-0" in gallery.text


@pytest.mark.skipif(EXTERNAL, reason="runs the local stack itself")
def test_make_demo_runs_and_leaves_nothing_running(tmp_path: Path) -> None:
    ports = [str(free_port()) for _ in range(3)]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "photocluster.cli",
            "demo",
            "--workdir",
            str(tmp_path),
            "--aws-port",
            ports[0],
            "--api-port",
            ports[1],
            "--embedder-port",
            ports[2],
        ],
        capture_output=True,
        text=True,
        timeout=540,
        cwd=REPO,
        env={**os.environ, "COLUMNS": "120"},
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "found whole at the low tier: 6 of 6; groups mixing samples: 0" in result.stdout
    assert "broken.jpg: InvalidImage" in result.stdout
    assert (tmp_path / "gallery.html").read_text().count("<img") >= 24
    pids = json.loads((tmp_path / "pids.json").read_text())
    assert set(pids) == {"aws", "embedder", "worker", "api"}
    assert all(gone(pid) for pid in pids.values())
