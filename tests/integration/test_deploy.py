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

# Six Terraform runs against moto (deploy, plans, a new image, a rollback, two destroys):
# 9-10 minutes here, past pytest's default 600 s when the machine is busy.
pytestmark = [pytest.mark.terraform, pytest.mark.slow, pytest.mark.timeout(1800)]

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
    # Protected like prod, so that make destroy's confirmation and lifting are exercised.
    ci = example.replace('environment        = "dev"', 'environment = "ci"')
    (copy / "ci.tfvars").write_text(
        ci.replace("deletion_protection = false", "deletion_protection = true")
    )
    # moto runs image functions without Docker only when told so.
    httpx.post(f"{aws}/moto-api/config", json={"lambda": {"use_docker": False}}).raise_for_status()
    return copy


def terraform_env() -> dict[str, str]:
    env = dict(os.environ)
    if Path("/opt/tf-plugins").is_dir():
        env["TF_CLI_CONFIG_FILE"] = str(REPO / "terraform" / "terraformrc.offline")
    return env


def make(target: str, folder: Path, emulator: str, tag: str, *more: str, ok: bool = True) -> str:
    """Run a make target; deploy and destroy converge, so one that lost its connection to
    moto (see TRANSIENT) is run once more, as an operator would."""
    argv = [
        *("make", "--no-print-directory", "-C", str(REPO), target),
        f"TFVARS={folder / 'ci.tfvars'}",
        *(f"TERRAFORM_DIR={folder}", f"EMULATOR={emulator}", f"TAG={tag}", *more),
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=1200, check=False)
    if done.returncode != 0 and any(t in done.stdout + done.stderr for t in TRANSIENT):
        done = subprocess.run(argv, capture_output=True, text=True, timeout=1200, check=False)
    assert (done.returncode == 0) == ok, done.stdout[-4000:] + done.stderr[-4000:]
    return done.stdout if ok else done.stdout + done.stderr


def client(service: str, aws: str, region: str = REGION) -> Any:
    return emulator_client(service, aws, region)


def deployed(urls: dict[str, str], tag: str, model_id: str) -> dict[str, str]:
    """The image each function and the embedder's model run after make deploy TAG=tag."""
    return {
        "ingest": f"{urls['ingest']}:{tag}",
        "writer": f"{urls['ingest']}:{tag}",
        "cluster-api": f"{urls['cluster-api']}:{tag}",
        "embedder": f"{urls['embedder']}:{embedder_tag(tag, model_id)}",
    }


def images_of(aws: str, urls: dict[str, str]) -> dict[str, str]:
    """The image each function and the embedder's model run now."""
    lambdas, sagemaker = client("lambda", aws), client("sagemaker", aws)
    found = {
        f: lambdas.get_function(FunctionName=f"{NAME}-{f}")["Code"]["ImageUri"] for f in FUNCTIONS
    }
    endpoint = sagemaker.describe_endpoint(EndpointName=f"{NAME}-embedder")
    config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    model = config["ProductionVariants"][0]["ModelName"]
    found["embedder"] = sagemaker.describe_model(ModelName=model)["PrimaryContainer"]["Image"]
    return found


def test_make_deploy_rolls_out_and_back_and_make_destroy_removes_a_protected_stack(
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

    # Applied, then rolled back: make deploy TAG=t1 finds t1's images still in their
    # repositories (nothing pushed) and puts them back.
    make("deploy", folder, aws, "t2")
    assert images_of(aws, urls) == deployed(urls, "t2", str(model_id))
    make("deploy", folder, aws, "t1")
    assert images_of(aws, urls) == deployed(urls, "t1", str(model_id))
    ecr = client("ecr", aws)
    for repository in repositories:  # t1's and t2's
        listed = ecr.list_images(repositoryName=repository["repositoryName"])["imageIds"]
        assert len(listed) == 2, repository["repositoryName"]

    # Another model alone is another embedder image; the functions' images stay.
    tfvars = folder / "ci.tfvars"
    kept = tfvars.read_text()
    tfvars.write_text(kept.replace('"facebook/dinov2-base"', '"facebook/dinov2-small"'))
    uris = deployment.push_images(urls, "t1")
    tfvars.write_text(kept)
    assert (
        uris["embedder_image_uri"]
        == f"{urls['embedder']}:{embedder_tag('t1', 'facebook/dinov2-small')}"
    )
    assert uris["ingest_image_uri"] == f"{urls['ingest']}:t1"
    counts = {
        r["repositoryName"]: len(ecr.list_images(repositoryName=r["repositoryName"])["imageIds"])
        for r in repositories
    }
    assert counts == {f"{NAME}-ingest": 2, f"{NAME}-cluster-api": 2, f"{NAME}-embedder": 3}

    # Teardown of a protected stack holding photos: a versioned bucket with objects (an
    # overwritten one, a deleted one) is what S3 refuses to delete (BucketNotEmpty; moto
    # too), and a pool with deletion protection is what Cognito refuses (moto does not:
    # the protection is checked as set, then as lifted).
    outputs = deployment.terraform.outputs()
    s3 = client("s3", aws)
    # moto applies the bucket's TLS-only policy to its own plain HTTP: drop it to upload.
    s3.delete_bucket_policy(Bucket=outputs["bucket_name"])
    for body in (b"first", b"second"):
        s3.put_object(Bucket=outputs["bucket_name"], Key="uploads/u1/a.jpg", Body=body)
    s3.put_object(Bucket=outputs["bucket_name"], Key="uploads/u1/b.jpg", Body=b"b")
    s3.delete_object(Bucket=outputs["bucket_name"], Key="uploads/u1/b.jpg")
    cognito = client("cognito-idp", aws)
    pool = cognito.describe_user_pool(UserPoolId=outputs["user_pool_id"])["UserPool"]
    assert pool["DeletionProtection"] == "ACTIVE"

    refused = make("destroy", folder, aws, "t1", ok=False)
    assert "make destroy CONFIRM=photocluster-ci" in refused
    assert len(lambdas.list_functions()["Functions"]) == 3  # nothing was touched

    deployment.lift_protection()  # what a confirmed make destroy does first
    pool = cognito.describe_user_pool(UserPoolId=outputs["user_pool_id"])["UserPool"]
    assert pool["DeletionProtection"] == "INACTIVE"
    make("destroy", folder, aws, "t1", "CONFIRM=photocluster-ci")
    assert outputs["bucket_name"] not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert cognito.list_user_pools(MaxResults=10)["UserPools"] == []
    assert lambdas.list_functions()["Functions"] == []
    assert client("ecr", aws).describe_repositories()["repositories"] == []
    assert sagemaker.list_endpoints()["Endpoints"] == []
