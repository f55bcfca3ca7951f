"""Uploads, statuses and deletion through the API, against S3 emulated by moto over HTTP."""

from __future__ import annotations

import time
import unicodedata
import urllib.parse
from pathlib import Path
from typing import Any

import boto3
import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from photocluster.api.auth import make_token
from photocluster.api.main import create_app
from photocluster.config import Settings
from photocluster.errors import StackError
from photocluster.library import Library
from photocluster.local.app import AppClient
from photocluster.store.records import ImageError, ImageRecord
from tests.helpers.api import error_of, said, served_on_loopback

SECRET = "images-test-secret-of-at-least-32-chars!"
BUCKET = "photos"
H = {"Authorization": f"Bearer {make_token(SECRET, 'alice')}"}


@pytest.fixture
def settings(store_root: Path) -> Settings:
    return Settings(
        store_root=store_root,
        model="m",
        store_fsync=False,
        jwt_secret=SECRET,
        bucket=BUCKET,
        image_max_bytes=5_000_000,
        upload_url_expiry_s=600,
    )


@pytest.fixture
def s3(aws: str) -> Any:
    client = boto3.client("s3")
    client.create_bucket(Bucket=BUCKET)
    return client


@pytest.fixture
def library(settings: Settings) -> Library:
    return Library.from_settings(settings)


@pytest.fixture
def client(settings: Settings, library: Library, s3: Any) -> TestClient:
    return TestClient(create_app(settings, library))


JPEG = b"\xff\xd8 jpeg bytes"


def ask(client: TestClient, filename: str, content_type: str = "image/jpeg", **extra: Any) -> Any:
    body = {"filename": filename, "content_type": content_type, "size": len(JPEG), **extra}
    return client.post("/v1/users/alice/uploads", json=body, headers=H)


def test_an_upload_url_puts_one_photo_and_the_photo_is_pending(client: TestClient, s3: Any) -> None:
    answer = ask(client, "IMG_0001.jpg")
    assert answer.status_code == 201, answer.text
    ticket = answer.json()
    assert ticket["image_id"] == "IMG_0001.jpg" and ticket["key"] == "uploads/alice/IMG_0001.jpg"
    assert ticket["method"] == "PUT"
    assert ticket["headers"] == {"Content-Type": "image/jpeg", "Content-Length": str(len(JPEG))}
    assert answer.headers["location"] == "/v1/users/alice/images/IMG_0001.jpg"
    put = httpx.put(ticket["url"], content=JPEG, headers=ticket["headers"])
    assert put.status_code == 200
    stored = s3.get_object(Bucket=BUCKET, Key="uploads/alice/IMG_0001.jpg")
    assert stored["ContentType"] == "image/jpeg"
    image = client.get("/v1/users/alice/images/IMG_0001.jpg", headers=H).json()
    assert (image["status"], image["key"], image["error"]) == ("pending", ticket["key"], None)
    stats = client.get("/v1/users/alice/stats", headers=H).json()
    assert (stats["pending"], stats["failed"], stats["n_images"]) == (1, 0, 0)


def test_the_url_is_signed_for_that_key_type_length_and_expiry_only(client: TestClient) -> None:
    ticket = ask(client, "Beach day é.png", "image/png", size=1234).json()
    url = urllib.parse.urlsplit(ticket["url"])
    query = urllib.parse.parse_qs(url.query)
    assert urllib.parse.unquote(url.path) == f"/{BUCKET}/uploads/alice/Beach day é.png"
    assert query["X-Amz-SignedHeaders"] == ["content-length;content-type;host"]
    assert query["X-Amz-Expires"] == ["600"]
    assert ticket["headers"] == {"Content-Type": "image/png", "Content-Length": "1234"}
    assert ticket["image_id"] == "Beach~20day~20~C3~A9.png"


def test_nfc_and_nfd_spellings_of_a_filename_are_one_upload(client: TestClient) -> None:
    name = "Crème brûlée.jpg"
    tickets = [ask(client, unicodedata.normalize(form, name)).json() for form in ("NFC", "NFD")]
    assert tickets[0]["image_id"] == tickets[1]["image_id"]
    assert (
        tickets[0]["key"]
        == tickets[1]["key"]
        == f"uploads/alice/{unicodedata.normalize('NFC', name)}"
    )


@pytest.mark.parametrize(
    ("filename", "content_type", "extra", "says"),
    [
        ("clip.mov", "video/quicktime", {}, "not a photo"),
        ("IMG_0001.jpg", "image/png", {}, "does not match"),
        ("IMG_0001.jpg", "text/plain", {}, "does not match"),
        ("a/b.jpg", "image/jpeg", {}, "must not hold"),
        ("../x.jpg", "image/jpeg", {}, "must not hold"),
        ("x\n.jpg", "image/jpeg", {}, "control or format characters (U+000A"),
        ("x\u0085.jpg", "image/jpeg", {}, "U+0085, Unicode category Cc"),
        ("gpj.\u202eexe.jpg", "image/jpeg", {}, "U+202E, Unicode category Cf"),
        ("\ufeffIMG.jpg", "image/jpeg", {}, "U+FEFF"),
        ("a\u2028b.jpg", "image/jpeg", {}, "category Zl"),
        ("a\u2029b.jpg", "image/jpeg", {}, "category Zp"),
        ("a\u200bb.jpg", "image/jpeg", {}, "category Cf"),
        ("..", "image/jpeg", {}, "name a file"),
        ("noextension", "image/jpeg", {}, "not a photo"),
        (".jpg", "image/jpeg", {}, "not a photo"),
        ("é" * 600 + ".jpg", "image/jpeg", {}, "too long"),
        ("big.jpg", "image/jpeg", {"size": 5_000_001}, "over the limit"),
        ("", "image/jpeg", {}, "at least 1 character"),
        ("a.jpg", "image/jpeg", {"size": 0}, "greater than or equal to 1"),
        ("a.jpg", "image/jpeg", {"size": True}, "valid integer"),
        ("a.jpg", "image/jpeg", {"size": "1000"}, "valid integer"),
        ("a.jpg", "image/jpeg", {"size": 1000.0}, "valid integer"),
        ("a.jpg", "image/jpeg", {"owner": "bob"}, "Extra inputs"),
    ],
)
def test_bad_uploads_get_422_saying_why(
    client: TestClient, filename: str, content_type: str, extra: dict[str, Any], says: str
) -> None:
    answer = ask(client, filename, content_type, **extra)
    assert says in said(error_of(answer, 422))
    assert client.get("/v1/users/alice/images", headers=H).json()["images"] == []


def test_an_upload_without_its_size_is_refused(client: TestClient) -> None:
    """The length is always signed: S3 takes a body of exactly that many bytes, so the
    object can never exceed the limit checked here (without it, any length was accepted)."""
    answer = client.post(
        "/v1/users/alice/uploads",
        json={"filename": "a.jpg", "content_type": "image/jpeg"},
        headers=H,
    )
    assert error_of(answer, 422)["message"] == "body size: Field required"
    assert client.get("/v1/users/alice/images", headers=H).json()["images"] == []


def test_uploads_need_a_bucket(store_root: Path) -> None:
    app = create_app(Settings(store_root=store_root, jwt_secret=SECRET))
    answer = TestClient(app).post(
        "/v1/users/alice/uploads",
        json={"filename": "a.jpg", "content_type": "image/jpeg", "size": 10},
        headers=H,
    )
    assert "not configured" in error_of(answer, 503, "uploads_not_configured")["message"]


def test_one_may_upload_only_into_ones_own_library(client: TestClient) -> None:
    answer = client.post(
        "/v1/users/bob/uploads", json={"filename": "a.jpg", "content_type": "image/jpeg"}, headers=H
    )
    assert answer.status_code == 403


def test_delete_removes_the_object_and_the_embedding_and_a_late_event_changes_nothing(
    client: TestClient, library: Library, s3: Any
) -> None:
    s3.put_object(Bucket=BUCKET, Key="uploads/alice/a.jpg", Body=b"jpeg")
    modified = s3.head_object(Bucket=BUCKET, Key="uploads/alice/a.jpg")["LastModified"].timestamp()
    vector = np.random.default_rng(0).standard_normal((1, 16))
    library.write(
        "alice", "m", ["a.jpg"], vector, keys=["uploads/alice/a.jpg"], modified=[modified]
    )

    for _ in range(2):  # idempotent
        assert client.delete("/v1/users/alice/images/a.jpg", headers=H).status_code == 204
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix="uploads/alice/")
    assert client.get("/v1/users/alice/images/a.jpg", headers=H).status_code == 404
    assert client.get("/v1/users/alice/stats", headers=H).json()["n_images"] == 0
    # The ingest of the deleted object, still in flight, arrives after the deletion:
    late = library.write("alice", "m", ["a.jpg"], vector, modified=[modified])
    assert (
        late.stale == 1 and client.get("/v1/users/alice/images", headers=H).json()["images"] == []
    )


def test_delete_finds_the_key_of_an_image_without_a_record_from_its_id(
    client: TestClient, library: Library, s3: Any
) -> None:
    s3.put_object(Bucket=BUCKET, Key="uploads/alice/Beach day é.jpg", Body=b"jpeg")
    library.store.upsert("alice", "m", ["Beach~20day~20~C3~A9.jpg"], np.ones((1, 4)))
    assert (
        client.delete("/v1/users/alice/images/Beach~20day~20~C3~A9.jpg", headers=H).status_code
        == 204
    )
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix="uploads/alice/")


def test_statuses_listing_pages_and_filters(client: TestClient, library: Library) -> None:
    rng = np.random.default_rng(1)
    for index in range(7):
        library.write("alice", "m", [f"r{index}.jpg"], rng.standard_normal((1, 8)))
    failed = ImageRecord(
        "bad.jpg",
        "failed",
        "uploads/alice/bad.jpg",
        ImageError("invalid_image", "truncated"),
        1.0,
        1.0,
    )
    library.record("alice", [failed])
    ask(client, "new.jpg")
    first = client.get("/v1/users/alice/images?limit=4", headers=H).json()
    assert [i["image_id"] for i in first["images"]] == ["new.jpg", "r6.jpg", "r5.jpg", "r4.jpg"]
    rest = client.get(f"/v1/users/alice/images?limit=4&cursor={first['next_cursor']}", headers=H)
    assert [i["image_id"] for i in rest.json()["images"]] == [
        "r3.jpg",
        "r2.jpg",
        "r1.jpg",
        "r0.jpg",
    ]
    last = client.get(
        f"/v1/users/alice/images?limit=4&cursor={rest.json()['next_cursor']}", headers=H
    )
    assert last.json() == {
        "images": [
            {
                "image_id": "bad.jpg",
                "key": "uploads/alice/bad.jpg",
                "status": "failed",
                "error": {"code": "invalid_image", "message": "truncated"},
                "created_at": "1970-01-01T00:00:01Z",
                "updated_at": "1970-01-01T00:00:01Z",
            }
        ],
        "next_cursor": None,
    }
    only_failed = client.get("/v1/users/alice/images?status=failed", headers=H).json()["images"]
    assert [i["image_id"] for i in only_failed] == ["bad.jpg"]
    stats = client.get("/v1/users/alice/stats", headers=H).json()
    assert (stats["n_images"], stats["pending"], stats["failed"]) == (7, 1, 1)


@pytest.mark.parametrize(
    "query", ["status=deleted", "limit=0", "limit=1001", "cursor=garbage", "cursor=W10"]
)
def test_bad_listing_parameters_get_422(client: TestClient, query: str) -> None:
    assert client.get(f"/v1/users/alice/images?{query}", headers=H).status_code == 422


def test_similar_answers_409_while_a_photo_is_pending(client: TestClient, library: Library) -> None:
    library.write("alice", "m", ["a.jpg"], np.ones((1, 8)))
    ask(client, "b.jpg")
    answer = client.get("/v1/users/alice/images/b.jpg/similar", headers=H)
    assert "pending" in error_of(answer, 409, "image_not_ready")["message"]
    missing = client.get("/v1/users/alice/images/zzz.jpg/similar", headers=H)
    error_of(missing, 404, "unknown_image")
    assert client.get("/v1/users/alice/images/zzz.jpg", headers=H).status_code == 404


def test_a_new_upload_url_for_a_ready_photo_leaves_it_ready(
    client: TestClient, library: Library
) -> None:
    # issue 33: it flipped to pending while `similar` still answered 200
    library.write("alice", "m", ["a.jpg", "b.jpg"], np.eye(2, 8))
    before = client.get("/v1/users/alice/images/a.jpg", headers=H).json()
    assert ask(client, "a.jpg").status_code == 201
    after = client.get("/v1/users/alice/images/a.jpg", headers=H).json()
    assert after == before and after["status"] == "ready"
    assert client.get("/v1/users/alice/images/a.jpg/similar", headers=H).status_code == 200
    library.record("alice", [ImageRecord("c.jpg", "failed", None, ImageError("x", "y"), 1, 1)])
    assert ask(client, "c.jpg").status_code == 201  # a failed photo, uploaded again: pending
    assert client.get("/v1/users/alice/images/c.jpg", headers=H).json()["status"] == "pending"


def test_a_full_library_refuses_new_upload_urls_but_not_its_own_photos(
    settings: Settings, s3: Any
) -> None:
    small = settings.model_copy(update={"max_images_per_user": 2})
    library = Library.from_settings(small)
    client = TestClient(create_app(small, library))
    library.write("alice", "m", ["a.jpg", "b.jpg"], np.eye(2, 8))
    error = error_of(ask(client, "c.jpg"), 409, "library_full")
    assert "2 photos" in said(error)
    assert ask(client, "a.jpg").status_code == 201  # a photo it holds: uploaded again


@pytest.mark.parametrize(
    "image_id",
    [
        "a~2F..~2F..~2Fbob~2Fx.jpg",  # a/../../bob/x.jpg
        "~2E.~2Fbob~2Fx.jpg",  # ../bob/x.jpg with its leading dot escaped
        "a~5C..~5C..~5Cbob~5Cx.jpg",  # backslashes
        "x~0A.jpg",  # a control character no upload name may hold
    ],
)
def test_a_delete_never_sends_s3_a_key_no_upload_could_have(
    client: TestClient, s3: Any, image_id: str, caplog: pytest.LogCaptureFixture
) -> None:
    """An id that decodes to a path ('../', '/', '\\') or a name the upload route refuses
    names no object: the delete answers 204 and S3 is not asked (bob's photo stays)."""
    s3.put_object(Bucket=BUCKET, Key="uploads/bob/x.jpg", Body=b"jpeg")
    s3.put_object(Bucket=BUCKET, Key="uploads/alice/a/../../bob/x.jpg", Body=b"jpeg")
    answer = client.delete(f"/v1/users/alice/images/{image_id}", headers=H)
    assert answer.status_code == 204
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]]
    assert sorted(keys) == ["uploads/alice/a/../../bob/x.jpg", "uploads/bob/x.jpg"]


def test_upload_tickets_past_the_users_rate_get_429_and_record_nothing(
    settings: Settings, s3: Any
) -> None:
    """The allowance is the user's, kept in the store: a second API instance (another
    Lambda) draws on the same one; another user has their own."""
    limited = settings.model_copy(update={"upload_tickets_per_minute": 6, "upload_ticket_burst": 2})
    first, second = (TestClient(create_app(limited)) for _ in range(2))
    assert ask(first, "a.jpg").status_code == 201
    assert ask(second, "b.jpg").status_code == 201
    refused = ask(first, "c.jpg")
    assert error_of(refused, 429, "throttled")["message"] == (
        "upload tickets are limited to 6 a minute (2 at once): retry in 10 s"
    )
    assert 9 <= int(refused.headers["Retry-After"]) <= 10
    assert first.get("/v1/users/alice/images/c.jpg", headers=H).status_code == 404
    bob = {"Authorization": f"Bearer {make_token(SECRET, 'bob')}"}
    body = {"filename": "a.jpg", "content_type": "image/jpeg", "size": 10}
    assert second.post("/v1/users/bob/uploads", json=body, headers=bob).status_code == 201


def test_the_apps_client_waits_as_retry_after_says(settings: Settings, s3: Any) -> None:
    """AppClient (the demo's, the benchmarks') does what an app should on 429: wait the
    Retry-After seconds, then ask again."""
    quick = settings.model_copy(update={"upload_tickets_per_minute": 30, "upload_ticket_burst": 1})
    with served_on_loopback(create_app(quick)) as url:
        app = AppClient(url, "alice", make_token(SECRET, "alice"))
        started = time.monotonic()
        assert [app.upload(name, JPEG) for name in ("a.jpg", "b.jpg")] == ["a.jpg", "b.jpg"]
        assert time.monotonic() - started >= 1.9  # b waited its Retry-After (2 s: 1 per 2 s)
        assert app.get("/images/b.jpg")["status"] == "pending"
        app.throttled_retries = 0
        with pytest.raises(StackError, match="429"):
            app.upload("c.jpg", JPEG)


def test_the_gallery_signs_each_photo_at_its_recorded_key_without_listing_the_bucket(
    client: TestClient, library: Library, s3: Any
) -> None:
    """The bucket holds none of these objects: the gallery, which listed the user's whole
    prefix on every page to find keys (100 listings at 100,000 photos), found none and
    showed no thumbnail. It signs the keys the records name, and none outside the user's."""
    base = np.random.default_rng(3).standard_normal(16)
    vectors = np.stack([base, base + 0.01, -base])
    ids = ["a.jpg", "b.jpg", "c.jpg"]
    keys = ["uploads/alice/a.jpg", "uploads/alice/b.jpg", "uploads/bob/c.jpg"]  # c: forged
    library.write("alice", "m", ids, vectors, keys=keys)

    page = client.get("/v1/users/alice/gallery", headers=H)
    assert page.status_code == 200
    signed = page.text.replace("&amp;", "&")
    for name in ("a.jpg", "b.jpg"):
        assert f"/{BUCKET}/uploads/alice/{name}?" in signed or (
            f"{BUCKET}.s3.amazonaws.com/uploads/alice/{name}?" in signed
        ), name
    assert "X-Amz-Signature" in signed or "Signature=" in signed
    assert "uploads/bob" not in signed
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET)
