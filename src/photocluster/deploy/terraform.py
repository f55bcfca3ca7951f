"""Terraform, run in one folder (the root module or a copy of it)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from photocluster.errors import DeployError

log = logging.getLogger(__name__)


@dataclass
class Terraform:
    folder: Path
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    timeout_s: float = 1800

    def run(self, *args: str, capture: bool = False) -> str:
        """``terraform ARGS`` in the folder; its output when ``capture``, else shown."""
        log.info("terraform %s", " ".join(args))
        done = subprocess.run(
            ["terraform", *args],
            cwd=self.folder,
            env={**self.env, "TF_IN_AUTOMATION": "1"},
            capture_output=capture,
            text=True,
            timeout=self.timeout_s,
            check=False,
        )
        if done.returncode != 0:
            detail = (done.stderr or "")[-3000:] if capture else "(see above)"
            raise DeployError(f"terraform {args[0]} failed: {detail}")
        return done.stdout or ""

    def init(self) -> None:
        self.run("init", "-input=false", "-reconfigure", capture=True)

    def apply(
        self, var_file: Path, variables: Mapping[str, str], targets: Sequence[str] = ()
    ) -> None:
        self.run(
            "apply",
            "-input=false",
            "-auto-approve",
            f"-var-file={var_file}",
            *_var_args(variables),
            *(f"-target={target}" for target in targets),
        )

    def plan(
        self, var_file: Path, variables: Mapping[str, str], out: str = "deploy.tfplan"
    ) -> dict[str, Any]:
        """The plan as JSON (``terraform show -json``)."""
        self.run(
            "plan",
            "-input=false",
            f"-var-file={var_file}",
            *_var_args(variables),
            f"-out={out}",
            capture=True,
        )
        return dict(json.loads(self.run("show", "-json", out, capture=True)))

    def destroy(self, var_file: Path, variables: Mapping[str, str]) -> None:
        self.run(
            "destroy",
            "-input=false",
            "-auto-approve",
            f"-var-file={var_file}",
            *_var_args(variables),
        )

    def outputs(self) -> dict[str, Any]:
        raw = json.loads(self.run("output", "-json", capture=True))
        return {name: value["value"] for name, value in raw.items()}


def _var_args(variables: Mapping[str, str]) -> list[str]:
    return [f"-var={name}={value}" for name, value in variables.items()]
