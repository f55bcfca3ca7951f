"""The deploy tool's pure parts: costs, state names, tfvars, image tags."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from photocluster.deploy import costs, hcl
from photocluster.deploy.images import embedder_tag, image_tag
from photocluster.deploy.stages import Target
from photocluster.deploy.state import backend_block, state_bucket_name
from photocluster.errors import DeployError
from tests.helpers.procs import REPO

TERRAFORM = REPO / "terraform"
PRICES = json.loads((TERRAFORM / "prices.json").read_text())


def lines(example: str) -> dict[str, costs.Line]:
    config = hcl.configuration(TERRAFORM, TERRAFORM / example)
    return {line.what: line for line in costs.provisioned_capacity(config, PRICES)}


def test_the_dev_example_costs_nothing_while_idle() -> None:
    assert sum(line.usd_a_month for line in lines("dev.tfvars.example").values()) == 0


def test_the_prod_example_pays_for_each_warm_gigabyte_second() -> None:
    found = lines("prod.tfvars.example")
    embedder = found["sagemaker embedder"]
    price = PRICES["sagemaker_serverless_provisioned_concurrency_usd_per_gb_second"]
    assert (embedder.instances, embedder.memory_gb) == (2, 6)
    assert embedder.usd_a_month == pytest.approx(2 * 6 * 730 * 3600 * price)
    writer = found["lambda writer"]
    assert writer.instances == 2 and writer.memory_gb == pytest.approx(1769 / 1024)


def test_make_costs_prints_the_table_of_an_example() -> None:
    done = subprocess.run(
        ["make", "--no-print-directory", "costs", "TFVARS=terraform/prod.tfvars.example"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "| sagemaker embedder | 2 x 6.00 GB |" in done.stdout and "| total |" in done.stdout


def test_targets_come_from_the_tfvars_with_the_modules_defaults(tmp_path: Path) -> None:
    tfvars = tmp_path / "x.tfvars"
    tfvars.write_text('region = "ap-south-1"\nenvironment = "staging"\n')
    assert Target.from_tfvars(tfvars) == Target("ap-south-1", "photocluster", "staging")
    tfvars.write_text('environment = "staging"\n')
    with pytest.raises(DeployError, match="set region"):
        Target.from_tfvars(tfvars)
    with pytest.raises(DeployError, match="no such file"):
        Target.from_tfvars(tmp_path / "missing.tfvars")


def test_only_the_dev_example_may_be_destroyed_without_confirmation() -> None:
    dev = Target.from_tfvars(TERRAFORM / "dev.tfvars.example")
    prod = Target.from_tfvars(TERRAFORM / "prod.tfvars.example")
    assert (dev.deletion_protection, prod.deletion_protection) == (False, True)
    assert prod.name == "photocluster-prod"
    # A tfvars that says nothing is protected: the variable's default.
    assert hcl.variable_defaults(TERRAFORM / "variables.tf")["deletion_protection"] is True


@pytest.mark.parametrize("confirm", [None, "photocluster-dev", "prod"])
def test_make_destroy_refuses_a_protected_stack_before_it_touches_anything(
    confirm: str | None,
) -> None:
    """No AWS credentials here: a refusal that came after the first AWS call (the state
    bucket) would fail otherwise, with another message."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    done = subprocess.run(
        [
            *("make", "--no-print-directory", "destroy", "TFVARS=terraform/prod.tfvars.example"),
            *([f"CONFIRM={confirm}"] if confirm else []),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        env=env | {"AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": "/dev/null"},
    )
    assert done.returncode != 0
    said = done.stdout + done.stderr
    assert "photocluster-prod has deletion_protection on" in said, said[-2000:]
    assert "make destroy CONFIRM=photocluster-prod" in said
    assert "terraform init" not in said and "state bucket" not in said


def test_one_state_bucket_per_account_and_region_locked_by_a_lock_file() -> None:
    assert state_bucket_name("photocluster", "123456789012", "eu-west-1") == (
        "photocluster-tfstate-123456789012-eu-west-1"
    )
    with pytest.raises(DeployError, match="63"):
        state_bucket_name("a" * 40, "123456789012", "ap-southeast-2")
    block = backend_block("b", "photocluster/prod/terraform.tfstate", "eu-west-1")
    assert 'backend "s3"' in block and "use_lockfile = true" in block and "endpoints" not in block


def test_an_image_tag_names_the_commit_and_a_digest_of_what_differs_from_it(
    tmp_path: Path,
) -> None:
    """Tags are immutable: the same sources must give the same tag (a re-run pushes nothing)
    and other sources another (a time-stamped tag made every re-run a new image)."""

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.py").write_text("x = 1\n")
    git("add", ".")
    git("-c", "user.email=ci@example.com", "-c", "user.name=ci", "commit", "-qm", "one")
    clean = image_tag(tmp_path)
    assert len(clean) == 12 and "dirty" not in clean
    (tmp_path / "notes.txt").write_text("not a source\n")  # outside SOURCES: no new image
    assert image_tag(tmp_path) == clean
    (tmp_path / "src" / "a.py").write_text("x = 2\n")
    edited = image_tag(tmp_path)
    assert edited.startswith(f"{clean}-dirty-") and edited == image_tag(tmp_path)
    (tmp_path / "src" / "a.py").write_text("x = 3\n")
    assert image_tag(tmp_path) not in (clean, edited)
    (tmp_path / "src" / "a.py").write_text("x = 2\n")
    assert image_tag(tmp_path) == edited  # the same edits again: the same tag
    (tmp_path / "src" / "b.py").write_text("y = 1\n")  # a new file, not yet added
    assert image_tag(tmp_path) not in (clean, edited)
    elsewhere = tmp_path.parent / f"{tmp_path.name}-not-a-checkout"
    elsewhere.mkdir()
    with pytest.raises(DeployError, match="git"):
        image_tag(elsewhere)


def test_the_embedders_tag_names_its_model_another_model_another_image() -> None:
    a, b = embedder_tag("abc123", "facebook/dinov2-base"), embedder_tag("abc123", "google/vit")
    assert a.startswith("abc123-model-") and a != b
    assert a == embedder_tag("abc123", "facebook/dinov2-base")
    assert len(embedder_tag("c" * 12 + "-dirty-" + "d" * 12, "m")) <= 128  # ECR's tag limit


def test_a_thousand_photos_cost_what_their_stages_take_at_the_memory_sizes() -> None:
    """Billed seconds = a stage's CPU over the vCPUs the memory buys; ingest also waits for
    the endpoint and the writer. Checked by hand at round numbers."""
    config = {"ingest_memory_mb": 1769, "writer_memory_mb": 1769, "embedder_memory_mb": 3538}
    prices = {"lambda_usd_per_gb_second": 1e-5, "sagemaker_serverless_usd_per_gb_second": 2e-5}
    stages = {"decode": 20.0, "features": 10.0, "embedder": 40.0, "copy_check": 5.0, "store": 5.0}
    found = {c.what: c for c in costs.per_thousand_photos(config, prices, stages)}
    embedder = found["sagemaker embedder"]
    assert embedder.seconds_a_photo == pytest.approx(0.020)  # 40 ms on 2 vCPUs
    assert found["lambda writer"].seconds_a_photo == pytest.approx(0.010)
    ingest = found["lambda ingest"]
    assert ingest.seconds_a_photo == pytest.approx(0.030 + 0.020 + 0.010)  # waits for both
    gb = 1769 / 1024
    assert ingest.usd_a_thousand == pytest.approx(1000 * 0.060 * gb * 1e-5)
    assert embedder.usd_a_thousand == pytest.approx(1000 * 0.020 * 2 * gb * 2e-5)


def test_the_prices_file_has_every_price_the_costs_read() -> None:
    defaults = hcl.variable_defaults(TERRAFORM / "variables.tf")
    assert len(costs.per_thousand_photos(defaults, PRICES, {"embedder": 20.0})) == 3
