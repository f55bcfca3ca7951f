"""A TypeScript team's flow against the local stack (clients/typescript/flow.ts): types
generated from /openapi.json by openapi-typescript, calls through openapi-fetch, compiled
with tsc --strict --noUncheckedIndexedAccess. The npm packages are pinned in
clients/typescript (package-lock.json); `make install` installs them when npm is present,
and this test skips, saying why, when node or they are missing."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from photocluster.local.launch import Running, token
from tests.e2e.test_pipeline import running  # noqa: F401  (the stack, a fixture)
from tests.helpers.images import jpeg
from tests.helpers.procs import REPO

CLIENT = REPO / "clients" / "typescript"
BIN = CLIENT / "node_modules" / ".bin"

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or not (BIN / "tsc").exists(),
    reason="needs node and clients/typescript/node_modules (make install runs npm ci "
    "there when npm is present)",
)


def run(argv: list[str | Path], cwd: Path) -> str:
    done = subprocess.run(
        [str(a) for a in argv], capture_output=True, text=True, cwd=cwd, timeout=300
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    return done.stdout


def test_a_strict_typescript_client_runs_the_whole_flow(
    running: Running,  # noqa: F811
    tmp_path: Path,
) -> None:
    work = tmp_path / "ts"
    work.mkdir()
    for name in ("flow.ts", "tsconfig.json", "package.json"):
        shutil.copy(CLIENT / name, work / name)
    (work / "node_modules").symlink_to(CLIENT / "node_modules")
    (work / "openapi.json").write_text(httpx.get(f"{running.api_url}/openapi.json").text)
    run([BIN / "openapi-typescript", "openapi.json", "-o", "schema.d.ts"], work)
    run([BIN / "tsc", "-p", "tsconfig.json"], work)  # strict, no unchecked index access
    # The switches over the upload route's codes and over every code are exhaustive:
    # forget a case, and it fails
    flow = (work / "flow.ts").read_text()
    (work / "flow.ts").write_text(flow.replace('    case "image_not_ready":\n', "", 1))
    forgot = subprocess.run(
        [str(BIN / "tsc"), "-p", "tsconfig.json", "--noEmit"],
        capture_output=True,
        text=True,
        cwd=work,
    )
    assert forgot.returncode != 0 and "'never'" in forgot.stdout, forgot.stdout
    (work / "flow.ts").write_text(flow)

    (tmp_path / "a.jpg").write_bytes(jpeg(1, (640, 480)))
    (tmp_path / "b.jpg").write_bytes(jpeg(2, (640, 480)))
    user = "phone"
    out = run(
        [
            "node",
            work / "build" / "flow.js",
            running.api_url,
            token(running, user),
            user,
            tmp_path / "a.jpg",
            tmp_path / "b.jpg",
        ],
        work,
    )
    result = json.loads(out.strip().splitlines()[-1])
    assert result["uploaded"] == ["IMG_0001.jpg", "IMG_0002.jpg"]
    assert [name for name, _, _ in result["tiers"]] == ["low", "medium", "high"]
    assert result["notModified"] is True  # the 304, handled before data
    assert result["neighbours"] == ["IMG_0002.jpg"]
    assert (result["marked"], result["undone"]) == (1, 1)
    assert result["unknownId"] == "never-uploaded.jpg"  # typed details of unknown_image
    assert (result["deleted"], result["gone"]) == (204, 404)
    assert (result["refusedCode"], result["told"]) == ("unauthorized", "sign in again")
