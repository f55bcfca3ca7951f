"""Project tools the tests run as processes."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from tests.helpers.procs import REPO

CHECKOV = REPO / ".tools" / "checkov" / "bin" / "checkov"
OPENAPI_CLIENT = REPO / ".tools" / "openapi-client" / "bin" / "openapi-python-client"


def checkov(folder: Path, framework: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """checkov's summary and failed checks for one folder (offline: --skip-download)."""
    assert CHECKOV.exists(), "make tools installs checkov in .tools/checkov"
    result = subprocess.run(
        [
            str(CHECKOV),
            "-d",
            str(folder),
            "--framework",
            framework,
            "--skip-download",
            "--quiet",
            "--compact",
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    report = json.loads(result.stdout)
    if isinstance(report, list):
        report = report[0]
    return report["summary"], report.get("results", {}).get("failed_checks", [])


def generate_client(schema: dict[str, Any], folder: Path, package: str) -> tuple[Path, str]:
    """openapi-python-client's package for ``schema`` in ``folder``, and what the generator printed.

    The printed text carries the generator's "Warning" blocks: the schemas and operations it
    skipped or could not type.
    """
    assert OPENAPI_CLIENT.exists(), (
        "make tools installs openapi-python-client in .tools/openapi-client"
    )
    schema_file = folder / "openapi.json"
    schema_file.write_text(json.dumps(schema))
    package_dir = folder / package
    # Its post-generation hooks run `ruff` from PATH: the ruff pinned beside it, not the project's.
    path = os.pathsep.join([str(OPENAPI_CLIENT.parent), os.environ.get("PATH", "")])
    result = subprocess.run(
        [
            str(OPENAPI_CLIENT),
            "generate",
            "--path",
            str(schema_file),
            "--output-path",
            str(package_dir),
            "--meta",
            "none",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=folder,
        env={**os.environ, "PATH": path},
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, (
        f"openapi-python-client exited with {result.returncode}:\n{output}"
    )
    return package_dir, output
