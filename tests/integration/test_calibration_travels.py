"""The tiers calibrated at bake time reach every service: ``photocluster bake-model`` writes
calibration.json -> the embedder server (a real process on loopback) reports it -> ingest
and the writer (moto S3/SQS) persist it on the store root -> the API defaults to it.

With the tiny ViT CI builds (random weights: its tiers say nothing about quality, only
that they travel) and with EfficientNet-Lite0. One generated set (seed 0) keeps it short.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from fastapi.testclient import TestClient

from photocluster import cli
from photocluster.api.main import create_app
from photocluster.calibrations import CALIBRATION_FILE, StoredCalibrations
from photocluster.config import OFFLINE_MODEL, Settings, get_settings
from photocluster.embedder.fidelity import RUNTIME_FILE
from photocluster.errors import InvalidCalibration
from photocluster.ingest.handlers import LocalContext
from photocluster.local.aws import bootstrap, lambda_sqs_event
from tests.conftest import TINY_VIT_ID
from tests.helpers.api import SECRET, auth, error_of
from tests.helpers.aws import load_handler, receive_all
from tests.helpers.images import jpeg
from tests.helpers.procs import REPO, Server, free_port, python_argv

SERVE = str(REPO / "services" / "embedder" / "serve")
INGEST = REPO / "services" / "ingest" / "handler.py"


@dataclass
class Baked:
    model_id: str
    folder: Path
    printed: dict[str, Any]
    runtime: str  # what the embedder serves it with
    set_runtime: bool = True  # PHOTOCLUSTER_ENCODER_RUNTIME set, else runtime.json's

    @property
    def calibration(self) -> dict[str, Any]:
        document: dict[str, Any] = json.loads((self.folder / CALIBRATION_FILE).read_text())
        return document


def bake(source: str, dest: Path, *flags: str) -> dict[str, Any]:
    """``photocluster bake-model`` as the embedder's Dockerfile runs it; its printed JSON."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main(["bake-model", source, str(dest), *flags]) == 0
    printed: dict[str, Any] = json.loads(out.getvalue())
    return printed


@pytest.fixture(scope="module", params=["tiny-vit", "efficientnet-lite0"])
def baked(
    request: pytest.FixtureRequest, tiny_vit_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Baked:
    vit = request.param == "tiny-vit"
    source = str(tiny_vit_dir) if vit else OFFLINE_MODEL
    folder = tmp_path_factory.mktemp("baked") / "model"
    printed = bake(
        source, folder, "--calibration-seeds", "0", "--calibration-subjects", "6", "--quiet"
    )
    model_id = TINY_VIT_ID if vit else OFFLINE_MODEL
    # The ViT is served as production serves it (the runtime its fidelity gate chose, which
    # the server reads from runtime.json), EfficientNet with torch (set).
    gated = json.loads((folder / RUNTIME_FILE).read_text())["runtime"]
    assert printed["runtime"] == gated and printed["runtime_reason"]
    return Baked(model_id, folder, printed, gated if vit else "torch", set_runtime=not vit)


@pytest.fixture
def embedder(baked: Baked, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    server = Server(
        python_argv(SERVE),
        {
            "PHOTOCLUSTER_MODEL": str(baked.folder),
            **({"PHOTOCLUSTER_ENCODER_RUNTIME": baked.runtime} if baked.set_runtime else {}),
            "PHOTOCLUSTER_MODEL_DIR": str(tmp_path / "no-sagemaker-artifacts"),
            "PHOTOCLUSTER_EMBEDDER_PORT": str(port),
            "PHOTOCLUSTER_ENCODER_THREADS": "1",
        },
        tmp_path / "embedder.log",
    )
    url = f"http://127.0.0.1:{port}"
    try:
        server.wait_until(lambda: httpx.get(f"{url}/ping").status_code == 200)
        yield url
    finally:
        server.stop()


def ingest(embedder: str, model_id: str, store_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Three uploads of alice through S3 -> SQS -> the ingest handler -> the writer."""
    s3, sqs = boto3.client("s3"), boto3.client("sqs")
    resources = bootstrap(s3, sqs, Settings(queue_delay_s=0, queue_visibility_s=30, name="cal"))
    env = {
        "PHOTOCLUSTER_STORE_ROOT": str(store_root),
        "PHOTOCLUSTER_EMBEDDER_URL": embedder,
        "PHOTOCLUSTER_MODEL": model_id,
        "PHOTOCLUSTER_DLQ_URL": resources.dlq_url,
        "PHOTOCLUSTER_STORE_FSYNC": "false",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    handler = load_handler(INGEST)
    get_settings.cache_clear()
    for seed in range(3):
        s3.put_object(Bucket=resources.bucket, Key=f"uploads/alice/p{seed}.jpg", Body=jpeg(seed))
    messages = receive_all(sqs, resources.queue_url, 3)
    response = handler.handler(lambda_sqs_event(messages, resources.queue_arn), LocalContext())
    assert response == {"batchItemFailures": []}


def test_bake_model_writes_an_increasing_calibration_beside_the_weights(baked: Baked) -> None:
    calibration = baked.calibration
    assert baked.printed["calibration"] == calibration
    assert calibration["model_id"] == baked.model_id
    assert calibration["seeds"] == [0] and calibration["runtime"] == "torch"
    low, medium, high = (calibration["thresholds"][tier] for tier in ("low", "medium", "high"))
    assert 0 < low < medium < high <= 1
    assert 0 < calibration["index_floor"] <= low
    assert "seeds 0" in calibration["evidence"]


def test_the_calibration_travels_from_the_bake_to_the_api(
    aws: str, baked: Baked, embedder: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    described = {"model": baked.model_id, "runtime": baked.runtime}
    ping = httpx.get(f"{embedder}/ping").json()
    assert ping["calibration"] == baked.calibration and described.items() <= ping.items()
    answer = httpx.post(
        f"{embedder}/invocations", content=jpeg(7), headers={"Content-Type": "image/jpeg"}
    ).json()
    assert answer["calibration"] == baked.calibration and described.items() <= answer.items()

    store_root = tmp_path / "efs"
    ingest(embedder, baked.model_id, store_root, monkeypatch)
    persisted = StoredCalibrations(store_root).path(baked.model_id)
    assert persisted.read_bytes() == (baked.folder / CALIBRATION_FILE).read_bytes()

    settings = Settings(
        store_root=store_root, model=baked.model_id, store_fsync=False, jwt_secret=SECRET
    )
    client = TestClient(create_app(settings))
    thresholds = baked.calibration["thresholds"]
    tiers = client.get("/health", headers=auth("alice")).json()["tiers"]
    assert tiers["source"] == "baked" and tiers["thresholds"] == thresholds
    assert tiers["evidence"] == baked.calibration["evidence"] and tiers["seeds"] == [0]
    clusters = client.get("/v1/users/alice/clusters", headers=auth("alice")).json()
    assert {t["name"]: t["threshold"] for t in clusters["tiers"]} == thresholds
    stats = client.get("/v1/users/alice/stats", headers=auth("alice")).json()
    assert stats["n_images"] == 3 and stats["tiers"] == tiers
    assert stats["graph_floor"] == baked.calibration["index_floor"]
    assert stats["runtime"] == baked.runtime  # what served the vectors, as /ping said


def test_no_calibrate_bakes_an_uncalibrated_model_reported_as_such(
    tiny_vit_dir: Path, tmp_path: Path
) -> None:
    printed = bake(str(tiny_vit_dir), tmp_path / "model", "--no-calibrate")
    assert printed["calibration"] is None
    assert not (tmp_path / "model" / CALIBRATION_FILE).exists()


def test_bake_model_refuses_bad_seeds(
    tiny_vit_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        cli.main(["bake-model", str(tiny_vit_dir), str(tmp_path), "--calibration-seeds", "0,x"])
    assert "seeds are integers" in capsys.readouterr().err


def test_the_embedder_refuses_to_serve_with_a_corrupt_calibration(
    baked_vit: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    for path in baked_vit.iterdir():
        (folder / path.name).write_bytes(path.read_bytes())
    document = {
        "model_id": TINY_VIT_ID,
        "runtime": "torch",
        "seeds": [0],
        "thresholds": {"low": 0.5, "medium": 0.7, "high": 1.7},
        "index_floor": 0.4,
        "evidence": "hand-edited",
    }
    (folder / CALIBRATION_FILE).write_text(json.dumps(document))
    port = free_port()
    server = Server(
        python_argv(SERVE),
        {
            "PHOTOCLUSTER_MODEL": str(folder),
            "PHOTOCLUSTER_MODEL_DIR": str(tmp_path / "no-sagemaker-artifacts"),
            "PHOTOCLUSTER_EMBEDDER_PORT": str(port),
        },
        tmp_path / "embedder.log",
    )
    url = f"http://127.0.0.1:{port}"
    try:
        server.wait_until(lambda: "failed" in httpx.get(f"{url}/ping").text)
        ping = httpx.get(f"{url}/ping")
        assert ping.status_code == 503
        assert "InvalidCalibration" in ping.text and "thresholds" in ping.text
    finally:
        server.stop()


def test_the_api_refuses_to_start_on_a_corrupt_persisted_calibration(tmp_path: Path) -> None:
    settings = Settings(store_root=tmp_path, model=TINY_VIT_ID, jwt_secret=SECRET)
    path = StoredCalibrations(tmp_path).path(TINY_VIT_ID)
    path.parent.mkdir()
    path.write_text('{"model_id": "test/tiny-vit", "thresholds": {"low": 0.9}}')
    with pytest.raises(InvalidCalibration, match=str(path)):
        create_app(settings)


def test_the_api_says_when_a_model_is_uncalibrated(tmp_path: Path) -> None:
    settings = Settings(store_root=tmp_path, model="vendor/unknown", jwt_secret=SECRET)
    client = TestClient(create_app(settings))
    tiers = client.get("/health", headers=auth("alice")).json()["tiers"]
    assert tiers["source"] == "uncalibrated" and tiers["thresholds"]["high"] == 0.9
    stats = client.get("/v1/users/nobody/stats", headers=auth("nobody"))
    assert stats.status_code == 200 and stats.json()["tiers"] is None
    assert error_of(client.get("/v1/users/nobody/stats"), 401)
