"""The inference server as SageMaker runs it: a real process on a loopback port."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import boto3
import httpx
import numpy as np
import pytest
from botocore.config import Config

from tests.conftest import TINY_VIT_ID
from tests.helpers.images import encode, huge_png, jpeg, picture, png, truncated_jpeg, webp
from tests.helpers.procs import REPO, Server, free_port, python_argv

SERVE = str(REPO / "services" / "embedder" / "serve")


def start_server(
    tmp_path: Path, model: str, max_batch: int = 8, runtime: str = "torch"
) -> tuple[Server, str]:
    port = free_port()
    server = Server(
        python_argv(SERVE),
        {
            "PHOTOCLUSTER_MODEL": model,
            "PHOTOCLUSTER_ENCODER_RUNTIME": runtime,
            "PHOTOCLUSTER_MODEL_DIR": str(tmp_path / "no-sagemaker-artifacts"),
            "PHOTOCLUSTER_EMBEDDER_PORT": str(port),
            "PHOTOCLUSTER_EMBED_BATCH_MAX": str(max_batch),
            "PHOTOCLUSTER_ENCODER_THREADS": "1",
        },
        tmp_path / "embedder.log",
    )
    return server, f"http://127.0.0.1:{port}"


@pytest.fixture
def embedder(tiny_embedder: str) -> str:
    return tiny_embedder


def post(url: str, body: bytes, content_type: str) -> httpx.Response:
    return httpx.post(
        f"{url}/invocations", content=body, headers={"Content-Type": content_type}, timeout=60
    )


def batch(*images: bytes) -> bytes:
    return json.dumps({"instances": [base64.b64encode(i).decode() for i in images]}).encode()


def test_ping_names_the_model_and_its_runtime_uncalibrated_when_not_baked(embedder: str) -> None:
    assert httpx.get(f"{embedder}/ping").json() == {
        "status": "ok",
        "model": TINY_VIT_ID,
        "dim": 32,
        "runtime": "torch",
        "calibration": None,
    }


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (jpeg(), "image/jpeg"),
        (png(), "image/png"),
        (webp(), "image/webp"),
        (jpeg(), "application/x-image"),
    ],
)
def test_single_image(embedder: str, body: bytes, content_type: str) -> None:
    response = post(embedder, body, content_type)
    assert response.status_code == 200
    assert float(response.headers["X-Photocluster-Compute-Ms"]) > 0
    result = response.json()
    assert result["model"] == TINY_VIT_ID and result["dim"] == 32
    vector = np.array(result["embeddings"])
    assert vector.shape == (1, 32)
    np.testing.assert_allclose(np.linalg.norm(vector), 1.0, atol=1e-5)


def test_batch_equals_single_requests(embedder: str) -> None:
    images = [jpeg(seed) for seed in range(3)]
    answer = post(embedder, batch(*images), "application/json").json()
    together = np.array(answer["embeddings"])
    assert answer["cpu_ms"] > 0  # what the server spent: ingest's cost metrics report it
    alone = np.array([post(embedder, i, "image/jpeg").json()["embeddings"][0] for i in images])
    assert together.shape == (3, 32)
    np.testing.assert_allclose(together, alone, atol=1e-5)


@pytest.mark.parametrize(
    ("body", "content_type", "status", "message", "instance"),
    [
        (truncated_jpeg(), "image/jpeg", 400, "truncated", 0),
        (b"just some text", "image/jpeg", 400, "not a recognisable image", 0),
        (huge_png(100), "image/png", 413, "pixels is over the limit", 0),
        (b"", "image/jpeg", 400, "empty", None),
        (jpeg(), "text/plain", 415, "not accepted", None),
        (jpeg(), "", 415, "not accepted", None),
        (batch(*[jpeg(i) for i in range(9)]), "application/json", 413, "over the limit of 8", None),
        (batch(jpeg(), b"garbage", png()), "application/json", 400, "not a recognisable", 1),
        (b'{"instances": ["!!not base64!!"]}', "application/json", 400, "base64", 0),
        (b'{"instances": []}', "application/json", 400, "empty", None),
        (b'{"images": []}', "application/json", 400, "instances", None),
        (b"{not json", "application/json", 400, "not valid JSON", None),
        (encode(picture(), "TIFF"), "image/jpeg", 400, "TIFF", 0),
    ],
)
def test_bad_requests_get_a_4xx_naming_the_instance(
    embedder: str,
    body: bytes,
    content_type: str,
    status: int,
    message: str,
    instance: int | None,
) -> None:
    response = post(embedder, body, content_type)
    assert response.status_code == status
    error = response.json()
    assert message in error["error"]
    assert error.get("instance") == instance
    assert httpx.get(f"{embedder}/ping").status_code == 200  # still serving


def test_sagemaker_runtime_client_talks_to_the_server(embedder: str) -> None:
    client = boto3.client(
        "sagemaker-runtime",
        endpoint_url=embedder,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"max_attempts": 1}),
    )
    response = client.invoke_endpoint(
        EndpointName="photocluster-embedder",
        ContentType="application/json",
        Body=batch(jpeg(), png()),
    )
    result = json.loads(response["Body"].read())
    assert result["model"] == TINY_VIT_ID and len(result["embeddings"]) == 2


def test_ping_is_503_with_the_reason_when_the_model_cannot_load(tmp_path: Path) -> None:
    server, url = start_server(tmp_path, str(tmp_path / "missing-model"))
    try:
        server.wait_until(lambda: "failed to load" in httpx.get(f"{url}/ping").text)
        response = httpx.get(f"{url}/ping")
        assert response.status_code == 503
        assert post(url, jpeg(), "image/jpeg").status_code == 503
    finally:
        server.stop()


@pytest.mark.parametrize("runtime", ["onnx", "onnx-int8"])
def test_server_runs_the_baked_onnx_export(
    tmp_path: Path, baked_vit: Path, embedder: str, runtime: str
) -> None:
    server, url = start_server(tmp_path, str(baked_vit), runtime=runtime)
    try:
        server.wait_until(lambda: httpx.get(f"{url}/ping").status_code == 200)
        images = batch(*[jpeg(seed) for seed in range(3)])
        onnx = np.array(post(url, images, "application/json").json()["embeddings"])
        torch = np.array(post(embedder, images, "application/json").json()["embeddings"])
        assert onnx.shape == (3, 32)
        assert (onnx * torch).sum(axis=1).min() >= 0.999
    finally:
        server.stop()
