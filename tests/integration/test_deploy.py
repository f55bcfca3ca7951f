"""make deploy and make destroy, end to end against moto: every Terraform step and every
AWS call of the deploy path, Docker's build and push alone replaced (by an image manifest
pushed to the emulator's ECR). The stack goes to eu-west-1 while the environment says
us-east-1: the images must follow var.region."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from photocluster.deploy import hcl
from photocluster.deploy.images import embedder_tag
from photocluster.deploy.stages import STAGE_ONE_TARGETS, Deployment, aws_clients
from photocluster.deploy.terraform import Terraform
from photocluster.local.aws import emulator_client
from tests.helpers.aws import TRANSIENT
from tests.helpers.procs import REPO

pytestmark = [pytest.mark.terraform, pytest.mark.slow]

REGION = "eu-west-1"
NAME = "photocluster-ci"
FUNCTIONS = ("ingest", "writer", "cluster-api")


@pytest.fixture
def folder(tmp_path: Path, aws: str) -> Path:
    """A copy of terraform/ with a CI environment's tfvars (the dev example, environment ci)."""
    copy = tmp_path / "terraform"
    shutil.copytree(
        REPO / "terraform",
        copy,
        ignore=shutil.ignore_patterns(".terraform*", "*.tfstate*", "*.tfplan", "backend.tf"),
    )
    example = (copy / "dev.tfvars.example").read_text()
    (copy / "ci.tfvars").write_text(
        example.replace('environment        = "dev"', 'environment = "ci"')
    )
    # moto runs image functions without Docker only when told so.
    httpx.post(f"{aws}/moto-api/config", json={"lambda": {"use_docker": False}}).raise_for_status()
    return copy


def terraform_env() -> dict[str, str]:
    env = dict(os.environ)
    if Path("/opt/tf-plugins").is_dir():
        env["TF_CLI_CONFIG_FILE"] = str(REPO / "terraform" / "terraformrc.offline")
    return env


def make(target: str, folder: Path, emulator: str, tag: str) -> str:
    """Run a make target; deploy and destroy converge, so one that lost its connection to
    moto (see TRANSIENT) is run once more, as an operator would."""
    argv = [
        *("make", "--no-print-directory", "-C", str(REPO), target),
        f"TFVARS={folder / 'ci.tfvars'}",
        *(f"TERRAFORM_DIR={folder}", f"EMULATOR={emulator}", f"TAG={tag}"),
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=1200, check=False)
    if done.returncode != 0 and any(t in done.stdout + done.stderr for t in TRANSIENT):
        done = subprocess.run(argv, capture_output=True, text=True, timeout=1200, check=False)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    return done.stdout


def client(service: str, aws: str, region: str = REGION) -> Any:
    return emulator_client(service, aws, region)


def test_make_deploy_rolls_out_a_new_image_and_make_destroy_removes_it_all(
    folder: Path, aws: str
) -> None:
    deployment = Deployment(
        Terraform(folder, terraform_env()),
        folder / "ci.tfvars",
        aws_clients(REGION, aws),
        REPO,
        aws,
    )
    bucket = deployment.prepare()

    # Stage 1 alone creates the three repositories, in var.region (not AWS_DEFAULT_REGION).
    assert STAGE_ONE_TARGETS == ("module.repository",)
    urls = deployment.create_repositories()
    repositories = client("ecr", aws).describe_repositories()["repositories"]
    assert sorted(r["repositoryName"] for r in repositories) == [
        f"{NAME}-{f}" for f in ("cluster-api", "embedder", "ingest")
    ]
    assert all(f".dkr.ecr.{REGION}." in url for url in urls.values())
    assert client("ecr", aws, "us-east-1").describe_repositories()["repositories"] == []
    assert client("lambda", aws).list_functions()["Functions"] == []  # nothing else yet

    # The whole of make deploy, as the README runs it.
    printed = make("deploy", folder, aws, "t1")
    assert json.loads(printed.strip().splitlines()[-1])["api_url"].startswith("https://")
    lambdas = client("lambda", aws)
    images = {
        f: lambdas.get_function(FunctionName=f"{NAME}-{f}")["Code"]["ImageUri"] for f in FUNCTIONS
    }
    assert images == {
        "ingest": f"{urls['ingest']}:t1",
        "writer": f"{urls['ingest']}:t1",
        "cluster-api": f"{urls['cluster-api']}:t1",
    }
    sagemaker = client("sagemaker", aws)
    endpoint = sagemaker.describe_endpoint(EndpointName=f"{NAME}-embedder")
    config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    model = config["ProductionVariants"][0]["ModelName"]
    model_id = hcl.configuration(folder, folder / "ci.tfvars")["model_id"]
    assert (
        sagemaker.describe_model(ModelName=model)["PrimaryContainer"]["Image"]
        == f"{urls['embedder']}:{embedder_tag('t1', str(model_id))}"
    )
    assert config["ProductionVariants"][0]["ServerlessConfig"]["MemorySizeInMB"] == 4096

    # The state is remote, and its lock was released.
    keys = [o["Key"] for o in client("s3", aws).list_objects_v2(Bucket=bucket)["Contents"]]
    assert keys == ["photocluster/ci/terraform.tfstate"]

    # make deploy again with nothing changed: every tag is in its repository already, so
    # nothing is pushed (ECR's immutable tags would refuse a rebuilt image) and every image
    # stays. (moto answers some attributes otherwise than it was given, so its plan shows
    # updates, even replacements, of its own: here only what the images decide is checked.)
    again = deployment.plan(deployment.push_images(urls, "t1"))
    for change in again["resource_changes"]:
        before, after = change["change"]["before"], change["change"]["after"]
        if change["type"] == "aws_lambda_function":
            assert after["image_uri"] == before["image_uri"], change["address"]
        if change["type"] == "aws_sagemaker_model":
            was, now = before["primary_container"][0], after["primary_container"][0]
            assert now["image"] == was["image"], change["address"]
    for repository in repositories:
        listed = client("ecr", aws).list_images(repositoryName=repository["repositoryName"])
        assert len(listed["imageIds"]) == 1, repository["repositoryName"]

    # A second deploy with a new image: SageMaker gets a new model before the old one goes,
    # the endpoint and the functions change in place; no name collides.
    plan = deployment.plan(deployment.push_images(urls, "t2"))
    actions = {c["address"]: c["change"]["actions"] for c in plan["resource_changes"]}
    assert actions["module.embedder.aws_sagemaker_model.this"] == ["create", "delete"]
    assert actions["module.embedder.aws_sagemaker_endpoint_configuration.this"] == [
        "create",
        "delete",
    ]
    assert actions["module.embedder.aws_sagemaker_endpoint.this"] == ["update"]
    for name in ("ingest", "writer", "cluster_api"):
        assert actions[f"module.{name}.aws_lambda_function.this"] == ["update"]
    assert [
        a for a, act in actions.items() if act == ["delete", "create"] and "sagemaker" in a
    ] == []

    make("destroy", folder, aws, "t1")
    assert lambdas.list_functions()["Functions"] == []
    assert client("ecr", aws).describe_repositories()["repositories"] == []
    assert sagemaker.list_endpoints()["Endpoints"] == []
