"""The whole local pipeline, end to end: emulated S3 and SQS, the embedder with the offline
encoder, the ingest worker calling the real handlers, the cluster API.

By default the stack runs as subprocesses on free loopback ports. With
PHOTOCLUSTER_E2E_EXTERNAL=1 the same test runs against a stack someone else started (the
docker compose stack: ``make compose-test``), reading AWS_ENDPOINT_URL,
PHOTOCLUSTER_E2E_API_URL and PHOTOCLUSTER_JWT_SECRET.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from photocluster.ingest.backfill import backfill
from photocluster.local.aws import Resources, emulator_client, resource_names
from photocluster.local.demo import dead_letters, upload_samples, wait_until_stored
from photocluster.local.launch import DEMO_USER, Options, Running, app_client, start, token
from photocluster.local.stack import Stack, free_port
from photocluster.quality import evalset
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


def wait_until_drained(sqs: object, queue_url: str, timeout_s: float = 120) -> None:
    """Until the worker has taken and finished every message of the queue."""
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=names)  # type: ignore[attr-defined]
        if all(found["Attributes"][name] == "0" for name in names):
            return
        time.sleep(0.2)
    raise TimeoutError(f"queue {queue_url} not drained after {timeout_s} s")


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
    options = Options.on_free_ports(tmp_path)
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
    assert clusters["model"] == "efficientnet-lite0-layout"
    low, _, high = ([g["image_ids"] for g in tier["groups"]] for tier in clusters["tiers"])
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


def test_the_app_contract_upload_status_identity_and_delete(running: Running) -> None:
    """The issue's checklist, as a phone drives it: upload route -> PUT -> pending ->
    ready; a JPEG and a PNG of one name are two photos; a truncated file fails with a code;
    NFC and NFD spellings are one photo; a deleted photo stays gone after a backfill."""
    app = app_client(running, "phone")
    sources = {s.name: s for s in evalset.build(seed=1, groups=2, per_group=2, singletons=0)}
    coffee, coffee_crop = sources["coffee-0"], sources["coffee-1"]
    astronaut, astronaut_edit = sources["astronaut-0"], sources["astronaut-1"]

    coffee_jpeg = coffee.jpeg_bytes()
    ask = {"filename": "IMG_0001.jpg", "content_type": "image/jpeg", "size": len(coffee_jpeg)}
    ticket = app.http.post(app.url("/uploads"), json=ask, headers=app.headers).json()
    assert app.get("/images/IMG_0001.jpg")["status"] == "pending"  # before the bytes leave
    put = httpx.put(ticket["url"], content=coffee_jpeg, headers=ticket["headers"])
    assert put.status_code == 200
    png = io.BytesIO()
    astronaut.image.save(png, format="PNG")
    uploaded = [
        "IMG_0001.jpg",
        app.upload("IMG_0001.png", png.getvalue()),
        app.upload("coffee crop.jpg", coffee_crop.jpeg_bytes()),
        app.upload("astronaut edit.jpg", astronaut_edit.jpeg_bytes()),
        app.upload("truncated.jpg", coffee.jpeg_bytes()[:3000]),
        app.upload(unicodedata.normalize("NFC", "Crème brûlée.jpg"), coffee.jpeg_bytes()),
        app.upload(unicodedata.normalize("NFD", "Crème brûlée.jpg"), coffee.jpeg_bytes()),
    ]
    assert uploaded[5] == uploaded[6]  # one photo, however the name is spelt
    settled = app.wait_until_settled(uploaded, timeout_s=180)

    assert {i: r["status"] for i, r in settled.items()} == {
        "IMG_0001.jpg": "ready",
        "IMG_0001.png": "ready",
        "coffee~20crop.jpg": "ready",
        "astronaut~20edit.jpg": "ready",
        "truncated.jpg": "failed",
        "Cr~C3~A8me~20br~C3~BBl~C3~A9e.jpg": "ready",
    }
    assert settled["truncated.jpg"]["error"]["code"] == "invalid_image"
    nearest = {
        i: app.get(f"/images/{i}/similar", k=1)["neighbors"][0]["image_id"]
        for i in ("IMG_0001.jpg", "IMG_0001.png")
    }
    assert nearest["IMG_0001.png"] == "astronaut~20edit.jpg"
    assert nearest["IMG_0001.jpg"] in {"coffee~20crop.jpg", "Cr~C3~A8me~20br~C3~BBl~C3~A9e.jpg"}

    assert app.delete("IMG_0001.png") == 204
    s3 = emulator_client("s3", running.aws_url)
    listed = s3.list_objects_v2(Bucket=running.resources.bucket, Prefix="uploads/phone/")
    assert "uploads/phone/IMG_0001.png" not in [o["Key"] for o in listed["Contents"]]
    report = backfill(
        s3,
        emulator_client("sqs", running.aws_url),
        running.resources.bucket,
        running.resources.queue_url,
        user="phone",
        progress=False,
    )
    assert report.sent == 5 and report.failed == 0  # every object but the deleted one
    wait_until_drained(emulator_client("sqs", running.aws_url), running.resources.queue_url)
    assert "IMG_0001.png" not in app.statuses()
    assert app.get("/stats")["n_images"] == 4


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
    assert ": as in low" in result.stdout  # a group both tiers hold is printed once
    assert "broken.jpg: InvalidImage" in result.stdout
    assert "status of broken.jpg: failed (invalid_image)" in result.stdout
    assert "(PUT /decisions/not-similar); their high-tier group of 4 is now" in result.stdout
    assert "undone (DELETE): the group is whole again: True" in result.stdout
    assert (tmp_path / "gallery.html").read_text().count("<img") >= 24
    pids = json.loads((tmp_path / "pids.json").read_text())
    assert set(pids) == {"aws", "embedder", "worker", "api"}
    assert all(gone(pid) for pid in pids.values())
