"""``make up``: the stack stays up, and the curl commands it prints work as printed."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import boto3
import httpx
import pytest

from photocluster.local.stack import free_port
from tests.e2e.test_pipeline import gone
from tests.helpers.images import jpeg
from tests.helpers.procs import REPO

pytestmark = pytest.mark.skipif(
    os.environ.get("PHOTOCLUSTER_E2E_EXTERNAL") == "1", reason="runs the local stack itself"
)


def printed(log: Path, process: subprocess.Popen[bytes], timeout_s: float = 240) -> str:
    """What ``up`` printed, once it says how to use it."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace")
        if "Ctrl-C stops everything." in text:
            return text
        assert process.poll() is None, text[-3000:]
        time.sleep(0.2)
    raise TimeoutError(log.read_text(errors="replace")[-3000:])


def bash(script: str, cwd: Path) -> str:
    path = f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"  # photocluster
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "PATH": path},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def start_up(tmp_path: Path, *flags: str) -> tuple[subprocess.Popen[bytes], Path, list[str]]:
    """``photocluster up --no-samples`` on free ports in ``tmp_path/stack``: the process,
    its log, and its ports (aws, api, embedder)."""
    log = tmp_path / "up.log"
    ports = [str(free_port()) for _ in range(3)]
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "photocluster.cli", "up", "--no-samples"),
                *("--workdir", str(tmp_path / "stack"), "--aws-port", ports[0]),
                *("--api-port", ports[1], "--embedder-port", ports[2]),
                *flags,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
    return process, log, ports


def test_up_serves_until_ctrl_c_and_its_curl_commands_work(tmp_path: Path) -> None:
    process, log, _ = start_up(tmp_path)
    try:
        text = printed(log, process)
        lines = [line.strip() for line in text.splitlines()]
        export = next(line for line in lines if line.startswith("export TOKEN="))
        first = next(i for i, line in enumerate(lines) if line.startswith("curl -s -X POST"))
        ask = "\n".join(lines[first : first + 3])  # continued lines, as a shell reads them
        put = next(line for line in lines if line.startswith("curl -X PUT"))
        status = next(line for line in lines if "/images/photo.jpg" in line).split("#")[0]
        (tmp_path / "photo.jpg").write_bytes(jpeg(1))

        ticket = json.loads(bash(f"{export}\n{ask}", tmp_path))
        bash(put.replace("<url>", ticket["url"]), tmp_path)
        deadline = time.monotonic() + 120
        while (answer := json.loads(bash(f"{export}\n{status}", tmp_path)))["status"] != "ready":
            assert answer["status"] == "pending" and time.monotonic() < deadline, answer
            time.sleep(0.3)
        assert re.search(r"/v1/users/demo/clusters\?high=0\.8", text)
        assert "eyJ" not in text  # no token in the log: the command that makes one
        for folder in ("efs", "efs/store"):  # the store's root is the service's alone
            assert (tmp_path / "stack" / folder).stat().st_mode & 0o777 == 0o700, folder
    finally:
        process.send_signal(signal.SIGINT)  # Ctrl-C
        process.wait(timeout=60)
    assert "stopped." in log.read_text()
    for service in ("worker", "api", "embedder"):  # each stopped before what it calls
        assert "Traceback" not in (tmp_path / "stack" / "logs" / f"{service}.log").read_text()
    pids = json.loads((tmp_path / "stack" / "pids.json").read_text())
    assert all(gone(pid) for pid in pids.values())


def test_up_for_a_phone_or_a_browser_listens_where_asked_and_answers_preflights(
    tmp_path: Path,
) -> None:
    """--host, --public-url and --cors-origin: what a device on the network and a web app
    on another origin need (they needed settings `up --help` did not show)."""
    origin = "http://localhost:5173"
    process, log, ports = start_up(
        tmp_path, "--host", "0.0.0.0", "--public-url", "http://127.0.0.1", "--cors-origin", origin
    )
    try:
        text = printed(log, process)
        api = f"http://127.0.0.1:{ports[1]}"
        assert f"cluster API       {api}" in text and "listening on 0.0.0.0" in text
        preflight = {"Origin": origin, "Access-Control-Request-Method": "POST"}
        answer = httpx.options(f"{api}/v1/users/demo/uploads", headers=preflight)
        assert answer.status_code == 204, answer.text
        assert answer.headers["access-control-allow-origin"] == origin
        token = bash(f"photocluster token --user demo --workdir {tmp_path / 'stack'}", tmp_path)
        ask = {"filename": "a.jpg", "content_type": "image/jpeg", "size": 10}
        headers = {"Authorization": f"Bearer {token.strip()}", "Origin": origin}
        ticket = httpx.post(f"{api}/v1/users/demo/uploads", json=ask, headers=headers)
        assert ticket.headers["access-control-allow-origin"] == origin
        assert ticket.json()["url"].startswith(f"http://127.0.0.1:{ports[0]}/")
        s3 = boto3.client(
            "s3",
            endpoint_url=f"http://127.0.0.1:{ports[0]}",
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )
        bucket = json.loads((tmp_path / "stack" / "env.json").read_text())["PHOTOCLUSTER_BUCKET"]
        (rule,) = s3.get_bucket_cors(Bucket=bucket)["CORSRules"]
        assert rule["AllowedOrigins"] == [origin] and rule["AllowedMethods"] == ["PUT"]
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)


def test_up_help_shows_how_to_test_from_a_device() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "photocluster.cli", "up", "--help"],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=True,
    )
    for flag in ("--host", "--public-url", "--cors-origin"):
        assert flag in done.stdout


def test_make_up_passes_its_arguments_on() -> None:
    """The README's `make up UP_ARGS=--no-samples` (make up ignored any argument)."""
    done = subprocess.run(
        ["make", "-n", "up", "UP_ARGS=--no-samples --host 0.0.0.0"],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=True,
    )
    assert "photocluster up --no-samples --host 0.0.0.0" in done.stdout
