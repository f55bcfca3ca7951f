"""What a configuration costs a month before any traffic: its provisioned capacity.

Warm capacity is the only part of the bill that runs while nobody uploads: Lambda
provisioned concurrency (per GB-second of each warm instance's memory) and SageMaker
Serverless provisioned concurrency (likewise). Requests, compute, S3, EFS and logs scale
with use and are left out. The unit prices are inputs (``terraform/prices.json``), never
constants here: check them against your region's pricing pages.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from photocluster.deploy import hcl

SECONDS_A_MONTH = 730 * 3600  # AWS's billing month
#: Each Lambda function's provisioned-concurrency key and memory variable.
FUNCTIONS = {
    "ingest": "ingest_memory_mb",
    "writer": "writer_memory_mb",
    "cluster_api": "api_memory_mb",
}


@dataclass(frozen=True)
class Line:
    what: str
    instances: float
    memory_gb: float
    usd_a_month: float


def provisioned_capacity(config: dict[str, Any], prices: dict[str, Any]) -> list[Line]:
    """One line per warm thing of ``config`` (the tfvars over the root's defaults)."""
    lines = []
    lambda_price = float(prices["lambda_provisioned_concurrency_usd_per_gb_second"])
    floors = config["provisioned_concurrency"] if config["enable_provisioned_concurrency"] else {}
    for function, memory in FUNCTIONS.items():
        count, gb = float(floors.get(function, 0)), float(config[memory]) / 1024
        lines.append(
            Line(f"lambda {function}", count, gb, count * gb * SECONDS_A_MONTH * lambda_price)
        )
    sagemaker_price = float(
        prices["sagemaker_serverless_provisioned_concurrency_usd_per_gb_second"]
    )
    count, gb = (
        float(config["embedder_provisioned_concurrency"]),
        float(config["embedder_memory_mb"]) / 1024,
    )
    lines.append(
        Line("sagemaker embedder", count, gb, count * gb * SECONDS_A_MONTH * sagemaker_price)
    )
    return lines


def table(terraform_folder: Path, tfvars: Path, prices_file: Path) -> str:
    """The monthly cost of the provisioned capacity, as a Markdown table."""
    prices = json.loads(prices_file.read_text())
    lines = provisioned_capacity(hcl.configuration(terraform_folder, tfvars), prices)
    rows = [
        f"| {ln.what} | {ln.instances:g} x {ln.memory_gb:.2f} GB | {ln.usd_a_month:,.2f} |"
        for ln in lines
    ]
    total = sum(line.usd_a_month for line in lines)
    header = [
        f"Provisioned capacity of {tfvars.name}, USD a month (prices: {prices_file.name}, "
        f"{prices.get('region', '?')}, {prices.get('as_of', '?')})",
        "",
        "| what | warm | USD / month |",
        "|---|---|---|",
    ]
    return "\n".join([*header, *rows, f"| total | | {total:,.2f} |"])
