"""Terraform's HCL files read as Python values (python-hcl2, which keeps the quotes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def load(path: Path) -> dict[str, Any]:
    """A ``.tf`` or ``.tfvars`` file as a dict, strings without their quotes."""
    import hcl2

    with path.open() as handle:
        return dict(unquote(hcl2.load(handle)))


def unquote(value: Any) -> Any:
    if isinstance(value, str):
        return value.strip('"')
    if isinstance(value, list):
        return [unquote(v) for v in value]
    if isinstance(value, dict):
        return {unquote(k): unquote(v) for k, v in value.items()}
    return value


def variable_defaults(variables_tf: Path) -> dict[str, Any]:
    """Every variable's default in a ``variables.tf`` (None where there is none)."""
    blocks = load(variables_tf).get("variable", [])
    return {name: body.get("default") for block in blocks for name, body in block.items()}


def configuration(terraform_folder: Path, tfvars: Path) -> dict[str, Any]:
    """The root module's variable defaults, overridden by ``tfvars``."""
    return variable_defaults(terraform_folder / "variables.tf") | load(tfvars)
