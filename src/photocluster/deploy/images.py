"""The three images: built for linux/amd64 and pushed to the stack's repositories.

Tags are immutable (a real registry refuses a second push of a tag:
ImageTagAlreadyExistsException), so a tag names what the image is built from: the git
commit, plus a digest of the sources where the working tree differs from it, and for the
embedder a digest of its model id. A tag already in its repository is neither built nor
pushed again: ``make deploy`` run twice pushes nothing, and ``--tag`` of an earlier
deployment rolls back to its images.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from photocluster.errors import DeployError

log = logging.getLogger(__name__)

#: Each image: the Terraform variable its URI goes to, and its Dockerfile in docker/.
IMAGES: dict[str, tuple[str, str]] = {
    "ingest": ("ingest_image_uri", "ingest.Dockerfile"),  # the ingest and writer functions
    "cluster-api": ("cluster_api_image_uri", "cluster-api.Dockerfile"),
    "embedder": ("embedder_image_uri", "embedder.Dockerfile"),
}
#: What an image's build depends on: a change there makes a "-dirty-..." tag.
SOURCES = ("src", "services", "docker", "pyproject.toml", "requirements")


def image_tag(repo: Path) -> str:
    """The commit's short hash, plus ``-dirty-{digest}`` when the sources differ from it:
    a digest of the differences (untracked files included), so the same edits give the
    same tag and other edits another."""

    def git(*args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(["git", *args], cwd=repo, capture_output=True, check=False)

    head = git("rev-parse", "--short=12", "HEAD")
    if head.returncode != 0:
        raise DeployError("make deploy tags images with the git commit: run it in a git checkout")
    tag = head.stdout.decode().strip()
    changed = git("diff", "--binary", "HEAD", "--", *SOURCES).stdout
    untracked = git("ls-files", "--others", "--exclude-standard", "-z", "--", *SOURCES).stdout
    if not changed and not untracked:
        return tag
    digest = hashlib.sha256(changed)
    for name in sorted(n for n in untracked.split(b"\0") if n):
        digest.update(b"\0" + name + b"\0" + (repo / name.decode()).read_bytes())
    return f"{tag}-dirty-{digest.hexdigest()[:12]}"


def embedder_tag(tag: str, model_id: str) -> str:
    """The embedder's tag: its model is a build argument, so another model is another image."""
    return f"{tag}-model-{hashlib.sha256(model_id.encode()).hexdigest()[:8]}"


def in_registry(ecr: Any, repository_url: str, tag: str) -> bool:
    """Whether the repository holds an image under ``tag`` already."""
    try:
        ecr.describe_images(
            repositoryName=repository_url.rsplit("/", 1)[1], imageIds=[{"imageTag": tag}]
        )
    except ecr.exceptions.ImageNotFoundException:
        return False
    return True


class Pusher(Protocol):
    def push(self, repository_url: str, image: str, tag: str, build_args: dict[str, str]) -> str:
        """Make ``{repository_url}:{tag}`` hold the image; its URI."""
        ...


@dataclass
class DockerPusher:
    """docker build + docker push, after logging in to the account's registry."""

    ecr: Any
    repo: Path

    def login(self) -> None:
        data = self.ecr.get_authorization_token()["authorizationData"][0]
        user, password = base64.b64decode(data["authorizationToken"]).decode().split(":", 1)
        registry = data["proxyEndpoint"].removeprefix("https://")
        _docker(["login", "--username", user, "--password-stdin", registry], stdin=password)

    def push(self, repository_url: str, image: str, tag: str, build_args: dict[str, str]) -> str:
        uri = f"{repository_url}:{tag}"
        if in_registry(self.ecr, repository_url, tag):  # the same sources: nothing to build
            log.info("%s is in the registry already: not built or pushed again", uri)
            return uri
        dockerfile = self.repo / "docker" / IMAGES[image][1]
        # Lambda and SageMaker run linux/amd64, and Lambda refuses manifest lists that carry
        # provenance attestations.
        args = ["build", "--platform", "linux/amd64", "--provenance=false", "-f", str(dockerfile)]
        args += [
            item
            for name, value in build_args.items()
            for item in ("--build-arg", f"{name}={value}")
        ]
        _docker([*args, "-t", uri, str(self.repo)])
        _docker(["push", uri])
        return uri


@dataclass
class EmulatorPusher:
    """The emulator's ECR gets a tiny image manifest under the tag: no Docker involved."""

    ecr: Any

    def push(self, repository_url: str, image: str, tag: str, build_args: dict[str, str]) -> str:
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "size": 2,
                "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
            },
            "layers": [],
        }
        if in_registry(self.ecr, repository_url, tag):
            log.info("emulator: %s:%s is there already", repository_url, tag)
            return f"{repository_url}:{tag}"
        try:
            self.ecr.put_image(
                repositoryName=repository_url.rsplit("/", 1)[1],
                imageManifest=json.dumps(manifest),
                imageTag=tag,
            )
        except self.ecr.exceptions.ImageAlreadyExistsException:
            # The same manifest under the same tag: a deploy run again after a failure has
            # pushed it already (as `docker push` of an unchanged image succeeds).
            log.info("emulator: %s:%s is there already", repository_url, tag)
            return f"{repository_url}:{tag}"
        log.info("emulator: pushed a manifest as %s:%s (%s)", repository_url, tag, build_args)
        return f"{repository_url}:{tag}"


def _docker(args: list[str], stdin: str | None = None) -> None:
    log.info("docker %s", " ".join(args[:2]))
    done = subprocess.run(["docker", *args], input=stdin, text=True, check=False)
    if done.returncode != 0:
        raise DeployError(f"docker {args[0]} failed (exit {done.returncode})")
