"""The write path against moto in server mode and the real embedder server:
S3 upload -> notification -> SQS -> ingest handler -> embedder -> writer -> store."""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from PIL import Image
from skimage import data as skdata

from photocluster.clustering.copies import CANDIDATE_FLOOR
from photocluster.clustering.orb import MAX_PACKED_BYTES, decode_kept
from photocluster.config import Settings, get_settings
from photocluster.ids import image_id_for_filename
from photocluster.ingest.costs import metric_name
from photocluster.ingest.handlers import LocalContext
from photocluster.library import Library
from photocluster.local.aws import Resources, bootstrap, lambda_sqs_event
from photocluster.store import Store
from tests.conftest import TINY_VIT_ID
from tests.helpers.aws import load_handler, receive_all
from tests.helpers.images import encode, jpeg, picture, png, truncated_jpeg, webp
from tests.helpers.procs import REPO

HANDLER = REPO / "services" / "ingest" / "handler.py"
WRITER = REPO / "services" / "ingest" / "writer.py"
MAX_BYTES = 300_000


@dataclass
class Pipeline:
    s3: Any
    sqs: Any
    resources: Resources
    handler: ModuleType
    store_root: Path

    def upload(self, key: str, body: bytes) -> None:
        self.s3.put_object(Bucket=self.resources.bucket, Key=key, Body=body)

    def deliver(self, messages: list[dict[str, Any]]) -> dict[str, Any]:
        """Feed received messages to the handler in batches of 10, as the event source
        mapping does; delete the ones that succeeded. Returns the merged response."""
        failures: list[dict[str, str]] = []
        for start in range(0, len(messages), 10):
            batch = messages[start : start + 10]
            event = lambda_sqs_event(batch, self.resources.queue_arn)
            response = self.handler.handler(event, LocalContext())
            failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
            failures += response["batchItemFailures"]
            for message in batch:
                if message["MessageId"] not in failed:
                    self.sqs.delete_message(
                        QueueUrl=self.resources.queue_url, ReceiptHandle=message["ReceiptHandle"]
                    )
        return {"batchItemFailures": failures}

    def stored(self, user_id: str) -> list[str]:
        store = Store(self.store_root)
        return sorted(store.read(user_id).id_list()) if store.exists(user_id) else []

    def statuses(self, user_id: str) -> dict[str, tuple[str, str | None]]:
        """Image id -> (status, error code), as the API reads them."""
        library = Library.from_settings(Settings(store_root=self.store_root))
        return {
            r.image_id: (r.status, r.error.code if r.error else None)
            for r in library.images(user_id, limit=1000).images
        }

    def dead_letters(self) -> list[dict[str, Any]]:
        found = []
        while True:
            response = self.sqs.receive_message(
                QueueUrl=self.resources.dlq_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
            )
            if not response.get("Messages"):
                return found
            for message in response["Messages"]:
                found.append(json.loads(message["Body"]))
                self.sqs.delete_message(
                    QueueUrl=self.resources.dlq_url, ReceiptHandle=message["ReceiptHandle"]
                )


@pytest.fixture
def pipeline(
    aws: str, tiny_embedder: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Pipeline:
    s3, sqs = boto3.client("s3"), boto3.client("sqs")
    settings = Settings(queue_delay_s=0, queue_visibility_s=30, name="test")
    resources = bootstrap(s3, sqs, settings)
    env = {
        "PHOTOCLUSTER_STORE_ROOT": str(tmp_path / "efs"),
        "PHOTOCLUSTER_EMBEDDER_URL": tiny_embedder,
        "PHOTOCLUSTER_MODEL": TINY_VIT_ID,
        "PHOTOCLUSTER_DLQ_URL": resources.dlq_url,
        "PHOTOCLUSTER_IMAGE_MAX_BYTES": str(MAX_BYTES),
        "PHOTOCLUSTER_STORE_FSYNC": "false",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    handler = load_handler(HANDLER)
    get_settings.cache_clear()
    return Pipeline(s3, sqs, resources, handler, tmp_path / "efs")


GOOD = {
    "uploads/alice/a1.jpg": jpeg(1),
    "uploads/alice/a2.png": png(2),
    "uploads/alice/a3.webp": webp(3),
    "uploads/alice/IMG_0004.JPG": jpeg(4),
    "uploads/alice/Beach day é+1.jpg": jpeg(5),  # spaces, unicode, a plus sign
    "uploads/bob/b1.jpg": jpeg(6),
}
BAD = {
    "uploads/alice/corrupt.jpg": truncated_jpeg(),
    "uploads/alice/notes.jpg": b"this is a text file with an image extension",
    "uploads/alice/huge.png": encode(picture(9, (900, 900)), "PNG", compress_level=0),
    "uploads/alice/scan.tiff.jpg": encode(picture(10), "TIFF"),
    "uploads/bad user/x.jpg": jpeg(11),
}
SKIPPED = {"uploads/alice/movie.mov": b"\0\0\0\x18ftypqt  ", "uploads/readme.txt": b"hi"}
STORED_ALICE = sorted(
    ["a1.jpg", "a2.png", "a3.webp", "IMG_0004.JPG", image_id_for_filename("Beach day é+1.jpg")]
)


def test_good_uploads_are_stored_bad_ones_reported_and_redelivery_changes_nothing(
    pipeline: Pipeline,
) -> None:
    assert len(BAD["uploads/alice/huge.png"]) > MAX_BYTES
    for key, body in {**GOOD, **BAD, **SKIPPED}.items():
        pipeline.upload(key, body)
    messages = receive_all(
        pipeline.sqs, pipeline.resources.queue_url, len(GOOD) + len(BAD) + len(SKIPPED)
    )
    assert any("s3:TestEvent" in m["Body"] for m in messages) or len(messages) >= 13

    response = pipeline.deliver(messages)

    assert response == {"batchItemFailures": []}
    assert pipeline.stored("alice") == STORED_ALICE
    assert pipeline.stored("bob") == ["b1.jpg"]
    reports = {r["key"]: r for r in pipeline.dead_letters()}
    assert set(reports) == set(BAD)
    assert reports["uploads/alice/corrupt.jpg"]["error_type"] == "InvalidImage"
    assert "truncated" in reports["uploads/alice/corrupt.jpg"]["error"]
    assert "not a recognisable image" in reports["uploads/alice/notes.jpg"]["error"]
    assert reports["uploads/alice/huge.png"]["error_type"] == "ImageTooLarge"
    assert reports["uploads/alice/scan.tiff.jpg"]["error_type"] == "UnsupportedImage"
    assert reports["uploads/bad user/x.jpg"]["error_type"] == "InvalidEvent"
    statuses = pipeline.statuses("alice")
    assert {i: statuses[i] for i in STORED_ALICE} == {i: ("ready", None) for i in STORED_ALICE}
    assert {i: s for i, s in statuses.items() if i not in STORED_ALICE} == {
        "corrupt.jpg": ("failed", "invalid_image"),
        "notes.jpg": ("failed", "invalid_image"),
        "huge.png": ("failed", "too_large"),
        "scan.tiff.jpg": ("failed", "unsupported_type"),
        "movie.mov": ("failed", "unsupported_type"),  # not a photo: no DLQ report either
    }

    store = Store(pipeline.store_root)
    before = store.header("alice").generation
    again = pipeline.deliver(messages)  # the same batch delivered twice
    assert again == {"batchItemFailures": []}
    assert Store(pipeline.store_root).header("alice").generation == before
    assert pipeline.stored("alice") == STORED_ALICE
    assert pipeline.statuses("alice") == statuses


def test_an_object_removed_from_s3_is_removed_from_the_store(pipeline: Pipeline) -> None:
    pipeline.upload("uploads/alice/keep.jpg", jpeg(1))
    pipeline.upload("uploads/alice/gone.jpg", jpeg(2))
    pipeline.deliver(receive_all(pipeline.sqs, pipeline.resources.queue_url, 2))
    pipeline.s3.delete_object(Bucket=pipeline.resources.bucket, Key="uploads/alice/gone.jpg")
    pipeline.deliver(receive_all(pipeline.sqs, pipeline.resources.queue_url, 1))
    assert pipeline.stored("alice") == ["keep.jpg"]
    assert pipeline.statuses("alice") == {"keep.jpg": ("ready", None)}


def test_an_upload_deleted_before_ingest_is_skipped(pipeline: Pipeline) -> None:
    pipeline.upload("uploads/alice/brief.jpg", jpeg(1))
    created = receive_all(pipeline.sqs, pipeline.resources.queue_url, 1)
    pipeline.s3.delete_object(Bucket=pipeline.resources.bucket, Key="uploads/alice/brief.jpg")
    assert pipeline.deliver(created) == {"batchItemFailures": []}
    assert pipeline.stored("alice") == []
    assert pipeline.statuses("alice") == {}
    assert pipeline.dead_letters() == []


def test_an_unreachable_endpoint_fails_the_batch_for_redelivery(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PHOTOCLUSTER_EMBEDDER_URL", "http://127.0.0.1:9")  # nothing listens
    monkeypatch.setenv("PHOTOCLUSTER_ENDPOINT_MAX_ATTEMPTS", "2")
    monkeypatch.setenv("PHOTOCLUSTER_ENDPOINT_BACKOFF_BASE_S", "0.01")
    get_settings.cache_clear()
    pipeline.handler = load_handler(HANDLER)
    get_settings.cache_clear()
    pipeline.upload("uploads/alice/a.jpg", jpeg(1))
    messages = receive_all(pipeline.sqs, pipeline.resources.queue_url, 1)
    upload = [m for m in messages if "s3:TestEvent" not in m["Body"]]
    response = pipeline.deliver(messages)
    assert response["batchItemFailures"] == [{"itemIdentifier": upload[0]["MessageId"]}]
    assert pipeline.stored("alice") == []
    assert pipeline.statuses("alice") == {"a.jpg": ("pending", None)}  # seen, will retry
    assert pipeline.dead_letters() == []  # transient: SQS retries, then its redrive policy


def test_an_upload_whose_retries_run_out_is_failed_not_pending_forever(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PHOTOCLUSTER_EMBEDDER_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("PHOTOCLUSTER_ENDPOINT_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("PHOTOCLUSTER_QUEUE_MAX_RECEIVE", "1")  # this receive is the last
    get_settings.cache_clear()
    pipeline.handler = load_handler(HANDLER)
    get_settings.cache_clear()
    pipeline.upload("uploads/alice/a.jpg", jpeg(1))
    pipeline.deliver(receive_all(pipeline.sqs, pipeline.resources.queue_url, 1))
    assert pipeline.statuses("alice") == {"a.jpg": ("failed", "processing_failed")}


def test_writer_lambda_handler_applies_and_refuses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PHOTOCLUSTER_STORE_ROOT", str(tmp_path))
    monkeypatch.setenv("PHOTOCLUSTER_MODEL", "m")
    get_settings.cache_clear()
    writer = load_handler(WRITER)
    get_settings.cache_clear()
    ok = writer.handler(
        {
            "op": "upsert",
            "user_id": "u",
            "model": "m",
            "items": [{"image_id": "a", "embedding": [1.0, 0.0, 0.0]}],
        },
        LocalContext(),
    )
    assert ok["ok"] and ok["added"] == 1
    cases = [
        (
            {
                "op": "upsert",
                "user_id": "u",
                "model": "other",
                "items": [{"image_id": "b", "embedding": [1.0, 0.0, 0.0]}],
            },
            "ModelMismatch",
        ),
        (
            {
                "op": "upsert",
                "user_id": "u",
                "model": "m",
                "items": [{"image_id": "b", "embedding": [1.0, 0.0]}],
            },
            "DimensionMismatch",
        ),
        (
            {
                "op": "upsert",
                "user_id": "../u",
                "model": "m",
                "items": [{"image_id": "b", "embedding": [1.0, 0.0, 0.0]}],
            },
            "InvalidId",
        ),
        (
            {
                "op": "upsert",
                "user_id": "u",
                "model": "m",
                "items": [{"image_id": "b", "embedding": [1.0, float("nan"), 0.0]}],
            },
            "InvalidVector",
        ),
        ({"op": "upsert", "user_id": "u", "model": "m", "items": []}, "InvalidRequest"),
        (  # the runtime that embedded the items is one of the encoder runtimes, or absent
            {
                "op": "upsert",
                "user_id": "u",
                "model": "m",
                "runtime": "tensorrt",
                "items": [{"image_id": "b", "embedding": [1.0, 0.0, 0.0]}],
            },
            "InvalidRequest",
        ),
        *(
            (
                {
                    "op": "upsert",
                    "user_id": "u",
                    "model": "m",
                    "items": [{"image_id": "b", "embedding": [1.0, 0.0, 0.0], "features": bad}],
                },
                "InvalidRequest",
            )
            for bad in ("not base64!", "aGVsbG8=", "A" * 100_000)
        ),
        ({"op": "drop", "user_id": "u"}, "InvalidRequest"),
    ]
    for payload, error_type in cases:
        answer = writer.handler(payload, LocalContext())
        assert answer["ok"] is False and answer["error_type"] == error_type, (payload, answer)
    assert (
        writer.handler({"op": "delete", "user_id": "u", "image_ids": ["a", "zz"]}, LocalContext())[
            "deleted"
        ]
        == 1
    )
    assert writer.handler(
        {"op": "delete", "user_id": "nobody", "image_ids": ["a"]}, LocalContext()
    )["ok"]


def test_ingest_sends_each_photos_features_and_the_writer_finds_its_copies(
    pipeline: Pipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    scene = Image.fromarray(skdata.astronaut())
    photos = {
        "uploads/carol/shot.jpg": encode(scene, "JPEG"),
        "uploads/carol/crop.jpg": encode(scene.crop((140, 120, 400, 380)), "JPEG"),
        "uploads/carol/other.png": png(3),
    }
    for key, body in photos.items():
        pipeline.upload(key, body)
    response = pipeline.deliver(receive_all(pipeline.sqs, pipeline.resources.queue_url, 3))
    assert response == {"batchItemFailures": []}
    library = Library.from_settings(Settings(store_root=pipeline.store_root))
    assert len(list(library.copies.folder("carol").iterdir())) == 3  # one file per photo
    kept = {i: library.copies.stored("carol", i) or b"" for i in ("shot.jpg", "crop.jpg")}
    for data in kept.values():  # the picture's own points: half of what ingest sent
        assert decode_kept(data).descriptors is not None and len(data) <= MAX_PACKED_BYTES // 2
    vectors = {i: v for i, v in zip(*_stored_vectors(library, "carol"), strict=True)}
    # a candidate (the tiny ViT's cosine is about 0.99), checked and found a copy
    assert float(vectors["shot.jpg"] @ vectors["crop.jpg"]) >= CANDIDATE_FLOOR
    assert library.copies.read("carol").copies == {("crop.jpg", "shot.jpg")}
    # what each stage cost, as one EMF record of the invocation (CloudWatch reads it)
    records = [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line
    ]
    assert len(records) == 1
    record = records[0]
    declared = {m["Name"] for m in record["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert record["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "photocluster"
    assert record["Photos"] == [3.0] and "PhotosCpuMs" not in declared
    for stage in ("download", "decode", "features", "embed_request", "embedder", "copy_check"):
        assert metric_name(stage) in declared and record[metric_name(stage)][0] > 0, stage


def _stored_vectors(library: Library, user_id: str) -> tuple[list[str], Any]:
    snapshot = library.store.read(user_id)
    return snapshot.id_list(), snapshot.vectors


def test_a_batch_survives_an_endpoint_that_throttles_twice(
    pipeline: Pipeline, tiny_embedder: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.helpers.throttle import ThrottlingProxy

    with ThrottlingProxy(tiny_embedder, throttle=2) as proxy:
        monkeypatch.setenv("PHOTOCLUSTER_EMBEDDER_URL", proxy.url)
        monkeypatch.setenv("PHOTOCLUSTER_ENDPOINT_BACKOFF_BASE_S", "0.01")
        get_settings.cache_clear()
        pipeline.handler = load_handler(HANDLER)
        get_settings.cache_clear()
        for index in range(3):
            pipeline.upload(f"uploads/alice/t{index}.jpg", jpeg(index))
        messages = receive_all(pipeline.sqs, pipeline.resources.queue_url, 3)
        assert pipeline.deliver(messages) == {"batchItemFailures": []}
    assert proxy.requests == 3  # one batched request per SQS batch, retried twice
    assert pipeline.stored("alice") == ["t0.jpg", "t1.jpg", "t2.jpg"]


def test_a_photo_and_its_export_are_two_images_and_deleting_one_keeps_the_other(
    pipeline: Pipeline,
) -> None:
    # Regression: both used to become the id IMG_0001; the second replaced the first, and
    # deleting the PNG then removed the JPEG's embedding too.
    pipeline.upload("uploads/alice/IMG_0001.jpg", jpeg(1))
    pipeline.upload("uploads/alice/IMG_0001.png", png(2))
    pipeline.deliver(receive_all(pipeline.sqs, pipeline.resources.queue_url, 2))
    assert pipeline.stored("alice") == ["IMG_0001.jpg", "IMG_0001.png"]
    pipeline.s3.delete_object(Bucket=pipeline.resources.bucket, Key="uploads/alice/IMG_0001.png")
    pipeline.deliver(receive_all(pipeline.sqs, pipeline.resources.queue_url, 1))
    assert pipeline.stored("alice") == ["IMG_0001.jpg"]


def test_a_name_spelt_in_nfc_and_in_nfd_is_one_image(pipeline: Pipeline) -> None:
    name = "Café é.jpg"
    for form in ("NFC", "NFD"):
        pipeline.upload(f"uploads/alice/{unicodedata.normalize(form, name)}", jpeg(3))
    pipeline.deliver(receive_all(pipeline.sqs, pipeline.resources.queue_url, 2))
    assert pipeline.stored("alice") == [image_id_for_filename(name)]


def test_a_photo_past_the_largest_library_fails_as_library_full(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PHOTOCLUSTER_MAX_IMAGES_PER_USER", "2")
    get_settings.cache_clear()
    full = Pipeline(
        pipeline.s3, pipeline.sqs, pipeline.resources, load_handler(HANDLER), pipeline.store_root
    )
    get_settings.cache_clear()
    for round_, keys in enumerate((["c1.jpg", "c2.jpg"], ["c3.jpg"])):
        for at, name in enumerate(keys):
            full.upload(f"uploads/carol/{name}", jpeg(20 + 2 * round_ + at))
        messages = receive_all(full.sqs, full.resources.queue_url, len(keys))
        assert full.deliver(messages) == {"batchItemFailures": []}
    assert full.stored("carol") == ["c1.jpg", "c2.jpg"]
    assert full.statuses("carol")["c3.jpg"] == ("failed", "library_full")


def _tags(pipeline: Pipeline, key: str) -> dict[str, str]:
    tagging = pipeline.s3.get_object_tagging(Bucket=pipeline.resources.bucket, Key=key)
    return {t["Key"]: t["Value"] for t in tagging["TagSet"]}


def test_uploads_rejected_for_good_are_tagged_for_the_lifecycle_rule(pipeline: Pipeline) -> None:
    """too_large, invalid_image and unsupported_type objects get the tag the bucket's
    lifecycle rule expires (Terraform: rejected_upload_days); stored photos do not."""
    uploads = {
        "uploads/alice/good.jpg": jpeg(1),
        "uploads/alice/corrupt.jpg": truncated_jpeg(),
        "uploads/alice/huge.png": BAD["uploads/alice/huge.png"],
        "uploads/alice/movie.mov": SKIPPED["uploads/alice/movie.mov"],
    }
    for key, body in uploads.items():
        pipeline.upload(key, body)
    assert pipeline.deliver(receive_all(pipeline.sqs, pipeline.resources.queue_url, 4)) == {
        "batchItemFailures": []
    }
    rejected = {"photocluster-status": "rejected"}
    assert {key: _tags(pipeline, key) for key in uploads} == {
        "uploads/alice/good.jpg": {},
        "uploads/alice/corrupt.jpg": rejected,
        "uploads/alice/huge.png": rejected,
        "uploads/alice/movie.mov": rejected,
    }


def test_a_rejected_upload_put_again_since_is_not_tagged(pipeline: Pipeline) -> None:
    """The event of a first, rejected object arrives after the same key holds other bytes:
    the object now there is not the one judged, so it keeps no tag."""
    key = "uploads/alice/clip.mov"
    pipeline.upload(key, b"first")
    first = receive_all(pipeline.sqs, pipeline.resources.queue_url, 1)
    pipeline.upload(key, b"second, another object")
    pipeline.deliver(first)
    assert _tags(pipeline, key) == {}
    pipeline.deliver(receive_all(pipeline.sqs, pipeline.resources.queue_url, 1))
    assert _tags(pipeline, key) == {"photocluster-status": "rejected"}
