"""The emulator's image push, over HTTP against moto: a deploy run again after it lost its
connection (the operator's retry, or the test's) pushes the same tag a second time."""

from __future__ import annotations

from photocluster.deploy.images import EmulatorPusher
from photocluster.local.aws import emulator_client

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
