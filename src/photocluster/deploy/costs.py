"""What a configuration costs: a month before any traffic (its provisioned capacity), and
each 1,000 photos it ingests (the compute the pipeline's stages take).

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


#: Lambda's vCPUs come with memory: one at 1,769 MB (AWS's documented ratio). AWS states none
#: for SageMaker Serverless; the same ratio is assumed.
MB_A_VCPU = 1769
#: The stages each function pays for (photocluster.ingest.costs): ingest waits for the
#: endpoint and the writer, so their time is billed to it as well as to themselves.
INGEST_STAGES = ("download", "decode", "features", "embed_request", "write_request")
WRITER_STAGES = ("copy_check", "graph", "store")


@dataclass(frozen=True)
class PhotoCost:
    what: str
    seconds_a_photo: float  # billed
    memory_gb: float
    usd_a_thousand: float


def per_thousand_photos(
    config: dict[str, Any], prices: dict[str, Any], stage_ms: dict[str, float]
) -> list[PhotoCost]:
    """USD for 1,000 photos from each stage's CPU-ms a photo (the pipeline benchmark's, or
    the EMF metrics' sums over Photos): a function's billed seconds are its CPU over the
    vCPUs its memory buys (a CPU-bound stage), and ingest's include the endpoint's and the
    writer's (it waits for both). Requests ($0.20 a million), S3, SQS and EFS are left out."""

    def vcpus(memory_mb: float) -> float:
        return memory_mb / MB_A_VCPU

    def spent(stages: tuple[str, ...]) -> float:
        return sum(stage_ms.get(stage, 0.0) for stage in stages) / 1000

    embedder_mb = float(config["embedder_memory_mb"])
    writer_mb, ingest_mb = float(config["writer_memory_mb"]), float(config["ingest_memory_mb"])
    embedder_s = spent(("embedder",)) / vcpus(embedder_mb)
    writer_s = spent(WRITER_STAGES) / min(1.0, vcpus(writer_mb))  # one thread writes
    ingest_s = spent(INGEST_STAGES) / vcpus(ingest_mb) + embedder_s + writer_s
    lambda_price = float(prices["lambda_usd_per_gb_second"])
    sagemaker_price = float(prices["sagemaker_serverless_usd_per_gb_second"])
    lines = [
        ("lambda ingest", ingest_s, ingest_mb, lambda_price),
        ("lambda writer", writer_s, writer_mb, lambda_price),
        ("sagemaker embedder", embedder_s, embedder_mb, sagemaker_price),
    ]
    return [
        PhotoCost(what, seconds, mb / 1024, 1000 * seconds * mb / 1024 * price)
        for what, seconds, mb, price in lines
    ]
