"""Project tools the tests run as processes."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from tests.helpers.procs import REPO

CHECKOV = REPO / ".tools" / "checkov" / "bin" / "checkov"


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
