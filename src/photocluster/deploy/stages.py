"""The stages of ``make deploy`` and ``make destroy``, each a method a test can call alone."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from photocluster.deploy import hcl
from photocluster.deploy.images import IMAGES, DockerPusher, EmulatorPusher, Pusher, embedder_tag
from photocluster.deploy.state import (
    BACKEND_FILE,
    backend_block,
    ensure_state_bucket,
    state_bucket_name,
)
from photocluster.deploy.terraform import Terraform
from photocluster.errors import DeployError

log = logging.getLogger(__name__)

#: Stage 1 applies these alone: the repositories the images are pushed to.
STAGE_ONE_TARGETS = ("module.repository",)
#: The image variables before stage 2 has pushed anything (stage 1 does not read them).
PLACEHOLDERS = {variable: "pending" for variable, _ in IMAGES.values()}
#: What ``deletion_protection`` protects: a confirmed destroy applies these alone with the
#: protection off first (Terraform empties a bucket on destroy only if its state says
#: force_destroy, and Cognito deletes no pool whose DeletionProtection is ACTIVE).
PROTECTED = ("module.storage.aws_s3_bucket.uploads", "module.api.aws_cognito_user_pool.this")
UNPROTECTED = {"deletion_protection": "false"}

Clients = Callable[[str], Any]


@dataclass(frozen=True)
class Target:
    """Where a deployment goes, from its tfvars (with the root module's defaults)."""

    region: str
    project: str = "photocluster"
    environment: str = "prod"
    deletion_protection: bool = True

    @property
    def name(self) -> str:
        """``{project}-{environment}``: what every resource's name starts with, and what
        ``make destroy CONFIRM=...`` must repeat for a protected stack."""
        return f"{self.project}-{self.environment}"

    @classmethod
    def from_tfvars(cls, path: Path) -> Target:
        if not path.is_file():
            raise DeployError(f"{path}: no such file; copy terraform/dev.tfvars.example, edit it")
        values = hcl.load(path)
        if not values.get("region"):
            raise DeployError(f"{path}: set region (the stack and its images go there)")
        return cls(
            region=str(values["region"]),
            project=str(values.get("project", cls.project)),
            environment=str(values.get("environment", cls.environment)),
            deletion_protection=bool(values.get("deletion_protection", cls.deletion_protection)),
        )


@dataclass
class Deployment:
    """One environment's deployment: a Terraform folder, its tfvars, AWS (or an emulator)."""

    terraform: Terraform
    tfvars: Path
    clients: Clients
    repo: Path
    emulator: str | None = None
    target: Target = field(init=False)

    def __post_init__(self) -> None:
        self.target = Target.from_tfvars(self.tfvars)

    @property
    def variables(self) -> dict[str, str]:
        """What every Terraform step passes besides the tfvars."""
        if self.emulator is None:
            return {}
        return {"aws_endpoint_url": self.emulator, "emulator": "true"}

    def prepare(self) -> str:
        """The state bucket (created on first use), backend.tf, terraform init; the bucket."""
        account = str(self.clients("sts").get_caller_identity()["Account"])
        bucket = state_bucket_name(self.target.project, account, self.target.region)
        ensure_state_bucket(
            self.clients("s3"), bucket, self.target.region, account, self.emulator is None
        )
        key = f"{self.target.project}/{self.target.environment}/terraform.tfstate"
        backend = backend_block(bucket, key, self.target.region, self.emulator)
        (self.terraform.folder / BACKEND_FILE).write_text(backend)
        self.terraform.init()
        return bucket

    def create_repositories(self) -> dict[str, str]:
        """Stage 1: the image repositories alone; each image's repository URL."""
        self.terraform.apply(self.tfvars, self.variables | PLACEHOLDERS, STAGE_ONE_TARGETS)
        urls: dict[str, str] = self.terraform.outputs()["repository_urls"]
        return urls

    def push_images(self, urls: dict[str, str], tag: str) -> dict[str, str]:
        """Stage 2: every image pushed under ``tag`` (the embedder's with its model's digest:
        another model is another image) unless it is there already; the image variables."""
        model_id = str(hcl.configuration(self.terraform.folder, self.tfvars)["model_id"])
        pusher = self._pusher()
        uris = {}
        for image, (variable, _) in IMAGES.items():
            if image == "embedder":
                build_args, image_tag = {"MODEL_ID": model_id}, embedder_tag(tag, model_id)
            else:
                build_args, image_tag = {}, tag
            uris[variable] = pusher.push(urls[image], image, image_tag, build_args)
        return uris

    def plan(self, uris: dict[str, str]) -> dict[str, Any]:
        """What stage 3 would do with these images (``terraform show -json``)."""
        return self.terraform.plan(self.tfvars, self.variables | uris)

    def apply(self, uris: dict[str, str]) -> dict[str, Any]:
        """Stage 3: everything, with these images; the stack's outputs."""
        self.terraform.apply(self.tfvars, self.variables | uris)
        return self.terraform.outputs()

    def lift_protection(self) -> None:
        """The data stores' deletion protection off, alone (a targeted apply)."""
        variables = self.variables | PLACEHOLDERS | UNPROTECTED
        self.terraform.apply(self.tfvars, variables, PROTECTED)

    def destroy(self) -> None:
        self.terraform.destroy(self.tfvars, self.variables | PLACEHOLDERS | UNPROTECTED)

    def _pusher(self) -> Pusher:
        ecr = self.clients("ecr")
        if self.emulator is not None:
            log.warning("emulator: no Docker build; each image is a manifest in the emulator's ECR")
            return EmulatorPusher(ecr)
        docker = DockerPusher(ecr, self.repo)
        docker.login()
        return docker


def deploy(deployment: Deployment, tag: str) -> dict[str, Any]:
    """The three stages; the stack's outputs."""
    deployment.prepare()
    urls = deployment.create_repositories()
    uris = deployment.push_images(urls, tag)
    return deployment.apply(uris)


def destroy(deployment: Deployment, confirm: str | None = None) -> None:
    """Everything ``make deploy`` created but the state bucket. A stack under
    ``deletion_protection`` goes only when ``confirm`` repeats its name, before anything is
    touched; its protection is lifted first, so destroy does not stop halfway at a bucket
    that holds photos or a pool that holds accounts."""
    target = deployment.target
    if target.deletion_protection and confirm != target.name:
        said = f" (CONFIRM={confirm!r} is not its name)" if confirm else ""
        raise DeployError(
            f"{target.name} has deletion_protection on: make destroy would delete every "
            f"upload (all versions) and every user account of its Cognito pool{said}. "
            f"Run make destroy CONFIRM={target.name} to destroy it anyway, or set "
            "deletion_protection = false in its tfvars and make deploy first."
        )
    deployment.prepare()
    if target.deletion_protection:
        log.warning("%s: confirmed; lifting deletion protection, then destroying", target.name)
        deployment.lift_protection()
    deployment.destroy()


def aws_clients(region: str, emulator: str | None = None) -> Clients:
    """boto3 clients of ``region``, on AWS or on an emulator."""
    import boto3

    if emulator is None:
        session = boto3.session.Session(region_name=region)
        return lambda service: session.client(service)  # type: ignore[call-overload]
    from photocluster.local.aws import emulator_client

    return lambda service: emulator_client(service, emulator, region)
