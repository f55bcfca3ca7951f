"""Backfill of existing objects through the real queue, resumable, then ingested."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

from photocluster import cli
from photocluster.config import Settings, get_settings
from photocluster.local.aws import bootstrap
from tests.helpers.aws import receive_all
from tests.helpers.images import jpeg


@pytest.fixture
def filled_bucket(aws: str) -> tuple[str, str]:
    s3, sqs = boto3.client("s3"), boto3.client("sqs")
    resources = bootstrap(s3, sqs, Settings(queue_delay_s=0, name="bf"))
    s3.put_bucket_notification_configuration(  # existing objects: no events on upload
        Bucket=resources.bucket, NotificationConfiguration={}
    )
    for user in ("u1", "u2"):
        for index in range(11):
            s3.put_object(
                Bucket=resources.bucket, Key=f"uploads/{user}/{index:02d}.jpg", Body=jpeg(index)
            )
    s3.put_object(Bucket=resources.bucket, Key="uploads/u1/clip.mov", Body=b"x")
    return resources.bucket, resources.queue_url


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, object]]:
    get_settings.cache_clear()
    code = cli.main(list(argv))
    return code, json.loads(capsys.readouterr().out)


def test_backfill_sends_each_image_once_and_resumes(
    filled_bucket: tuple[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bucket, queue_url = filled_bucket
    state = tmp_path / "state.json"
    common = [
        "backfill",
        "--bucket",
        bucket,
        "--queue-url",
        queue_url,
        "--state-file",
        str(state),
        "--quiet",
    ]
    code, first = run(capsys, *common, "--limit", "12")  # interrupted after 12
    assert code == 0 and first["sent"] == 12
    code, second = run(capsys, *common)  # resumes after the last key sent
    assert code == 0 and second["sent"] == 22 and second["skipped"] == 1

    messages = receive_all(boto3.client("sqs"), queue_url, 22)
    keys = [json.loads(m["Body"])["key"] for m in messages if "s3:TestEvent" not in m["Body"]]
    assert len(keys) == len(set(keys)) == 22
    assert {k.split("/")[1] for k in keys} == {"u1", "u2"}


def test_backfill_of_one_user(
    filled_bucket: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    bucket, queue_url = filled_bucket
    code, report = run(
        capsys, "backfill", "--bucket", bucket, "--queue-url", queue_url, "--user", "u2", "--quiet"
    )
    assert code == 0 and report["sent"] == 11 and report["skipped"] == 0


def test_backfill_refuses_a_traversing_user(
    filled_bucket: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    bucket, queue_url = filled_bucket
    get_settings.cache_clear()
    assert (
        cli.main(
            ["backfill", "--bucket", bucket, "--queue-url", queue_url, "--user", "../u1", "--quiet"]
        )
        == 2
    )
    assert "not allowed" in capsys.readouterr().err
