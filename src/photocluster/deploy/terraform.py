"""Terraform, run in one folder (the root module or a copy of it)."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from photocluster.errors import DeployError

log = logging.getLogger(__name__)


@dataclass
class Terraform:
    """``timeout_s`` bounds each command; one that runs past it gets SIGINT, Terraform's own
    way to stop (it finishes the calls in flight, writes its state and releases the state
    lock), and ``grace_s`` to do so. Killing it outright (what a plain subprocess timeout
    does) could leave resources that the state does not know and a lock held."""

    folder: Path
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    timeout_s: float = 3600
    grace_s: float = 600

    def run(self, *args: str, capture: bool = False) -> str:
        """``terraform ARGS`` in the folder; its output when ``capture``, else shown."""
        log.info("terraform %s", " ".join(args))
        pipe = subprocess.PIPE if capture else None
        with subprocess.Popen(
            ["terraform", *args],
            cwd=self.folder,
            env={**self.env, "TF_IN_AUTOMATION": "1"},
            stdout=pipe,
            stderr=pipe,
            text=True,
        ) as process:
            try:
                out, err = process.communicate(timeout=self.timeout_s)
            except subprocess.TimeoutExpired:
                stopped = self._interrupt(process)
                raise DeployError(
                    f"terraform {args[0]} ran past {self.timeout_s:.0f} s and was interrupted; "
                    + (
                        "it stopped cleanly (state written, lock released): run it again"
                        if stopped
                        else f"it did not stop within {self.grace_s:.0f} s and was killed: "
                        "its state lock may be held (terraform force-unlock) and resources "
                        "it was creating may be missing from the state"
                    )
                ) from None
            except KeyboardInterrupt:  # Ctrl-C reached Terraform too: let it finish stopping
                self._interrupt(process, signalled=True)
                raise
        if process.returncode != 0:
            detail = (err or "")[-3000:] if capture else "(see above)"
            raise DeployError(f"terraform {args[0]} failed: {detail}")
        return out or ""

    def _interrupt(self, process: subprocess.Popen[str], signalled: bool = False) -> bool:
        """SIGINT (unless the terminal sent it), then wait; kill only past the grace time.
        Whether it stopped by itself."""
        if not signalled:
            process.send_signal(signal.SIGINT)
        try:
            process.communicate(timeout=self.grace_s)
            return True
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            return False

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
