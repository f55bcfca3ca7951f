"""moto in server mode on loopback, and calling Lambda handlers as Lambda does."""

from __future__ import annotations

import importlib.util
import sys
import time
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx

from tests.helpers.procs import Server, free_port, python_argv

REGION = "us-east-1"


def start_moto(log: Path) -> tuple[Server, str]:
    port = free_port()
    server = Server(
        python_argv("-m", "tests.helpers.moto_server", "-H", "127.0.0.1", "-p", str(port)),
        {"MOTO_IAM_LOAD_MANAGED_POLICIES": "true"},
        log,
    )
    url = f"http://127.0.0.1:{port}"
    server.wait_until(lambda: httpx.get(f"{url}/moto-api/").status_code == 200, timeout=30)
    return server, url


def reset_moto(url: str) -> None:
    httpx.post(f"{url}/moto-api/reset").raise_for_status()


def aws_env(url: str) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": url,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }


def receive_all(sqs: Any, queue_url: str, count: int, timeout: float = 30) -> list[dict[str, Any]]:
    """Receive until ``count`` messages (not counting s3:TestEvent) have arrived."""
    messages: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while len([m for m in messages if "s3:TestEvent" not in m["Body"]]) < count:
        assert time.monotonic() < deadline, f"got {len(messages)} of {count} messages"
        response = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1, AttributeNames=["All"]
        )
        messages += response.get("Messages", [])
    return messages


def load_handler(path: Path) -> ModuleType:
    """Import a Lambda entry module from its file (services/ are not packages), fresh, so
    that it reads the environment as set now."""
    name = f"lambda_{path.parent.name.replace('-', '_')}_{path.stem}_{uuid.uuid4().hex[:8]}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


# The provider's HTTP client now and then loses a keep-alive connection to moto's
# development server mid-response; apply and destroy converge, so running them again
# finishes the job (as an operator would), while any other error fails at once.
TRANSIENT = ("use of closed network connection", "connection reset by peer")
