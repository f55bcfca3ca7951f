"""Image pushes, over HTTP against moto: a deploy run again (after it lost its connection,
or with nothing changed) pushes the same tag a second time, which a real registry's
immutable tags refuse; a tag already in the repository is neither built nor pushed."""

from __future__ import annotations

from photocluster.deploy.images import DockerPusher, EmulatorPusher, in_registry
from photocluster.local.aws import emulator_client
from tests.helpers.procs import REPO

REPOSITORY = "photocluster-push-ingest"


def test_pushing_the_same_tag_again_is_a_no_op(aws: str) -> None:
    ecr = emulator_client("ecr", aws, "eu-west-1")
    url = ecr.create_repository(repositoryName=REPOSITORY)["repository"]["repositoryUri"]
    pusher = EmulatorPusher(ecr)

    first = pusher.push(url, "ingest", "t1", {})
    again = pusher.push(url, "ingest", "t1", {})

    assert first == again == f"{url}:t1"
    images = ecr.list_images(repositoryName=REPOSITORY)["imageIds"]
    assert [image["imageTag"] for image in images] == ["t1"]


def test_docker_builds_nothing_for_a_tag_the_repository_holds(aws: str) -> None:
    """No Docker engine here: a build would fail, so the push returning is the proof that
    it asked the registry first (ECR's IMMUTABLE tags refuse a rebuilt image's push)."""
    ecr = emulator_client("ecr", aws, "eu-west-1")
    url = ecr.create_repository(
        repositoryName=f"{REPOSITORY}-docker", imageTagMutability="IMMUTABLE"
    )["repository"]["repositoryUri"]
    assert not in_registry(ecr, url, "t1")
    EmulatorPusher(ecr).push(url, "ingest", "t1", {})
    assert in_registry(ecr, url, "t1") and not in_registry(ecr, url, "t2")

    assert DockerPusher(ecr, REPO).push(url, "ingest", "t1", {}) == f"{url}:t1"
