"""What an upload ticket binds, checked against signatures recomputed as S3 checks them.

moto accepts any presigned request (tampered, expired, unsigned), so these tests use
tests.helpers.strict_s3: its verifier is checked against AWS's published example, then
a ticket from the upload route is verified (what it binds: method, bucket and key,
length, content type, expiry) and sent, right and tampered, to the double over HTTP.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config
from fastapi.testclient import TestClient

from photocluster.api.auth import make_token
from photocluster.api.main import create_app
from photocluster.config import Settings
from tests.helpers.strict_s3 import StrictS3, refusal, strict_s3

SECRET = "presign-test-secret-of-at-least-32-chars"
H = {"Authorization": f"Bearer {make_token(SECRET, 'alice')}"}
ACCESS_KEY, SECRET_KEY = "AKIDSTRICTDOUBLE", "strict-double-secret-key"
JPEG = b"\xff\xd8" + bytes(range(256)) * 40
EXPIRY_S = 600


def test_the_verifier_computes_awss_published_example() -> None:
    """AWS's example of a presigned GET (S3 docs, 'Authenticating Requests: Using Query
    Parameters'): the double's own SigV4 arithmetic agrees with S3's."""
    query = (
        "X-Amz-Algorithm=AWS4-HMAC-SHA256"
        "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
        "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
        "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
    )
    secrets = {"AKIAIOSFODNN7EXAMPLE": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}
    host = {"host": "examplebucket.s3.amazonaws.com"}
    at = datetime(2013, 5, 24, 1, tzinfo=UTC)
    assert refusal("GET", "/test.txt", query, host, secrets, at) is None
    assert refusal("GET", "/test.tx", query, host, secrets, at) == (
        "SignatureDoesNotMatch",
        "the signature does not match the request",
    )
    late = at + timedelta(days=1)
    assert refusal("GET", "/test.txt", query, host, secrets, late) == (
        "AccessDenied",
        "Request has expired",
    )


@pytest.fixture
def double() -> Iterator[StrictS3]:
    with strict_s3({ACCESS_KEY: SECRET_KEY}) as s3:
        yield s3


@pytest.fixture
def client(store_root: Path, double: StrictS3) -> TestClient:
    settings = Settings(
        store_root=store_root,
        model="m",
        store_fsync=False,
        jwt_secret=SECRET,
        bucket="photos",
        image_max_bytes=5_000_000,
        upload_url_expiry_s=EXPIRY_S,
    )
    s3 = boto3.client(
        "s3",
        endpoint_url=double.url,
        region_name="eu-west-1",
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        config=Config(signature_version="s3v4"),
    )
    return TestClient(create_app(settings, s3=s3))


def ticket(client: TestClient, filename: str = "IMG_0001.jpg", size: int = len(JPEG)) -> Any:
    body = {"filename": filename, "content_type": "image/jpeg", "size": size}
    answer = client.post("/v1/users/alice/uploads", json=body, headers=H)
    assert answer.status_code == 201, answer.text
    return answer.json()


def test_a_ticket_binds_method_key_length_type_and_expiry(client: TestClient) -> None:
    issued = datetime.now(UTC)
    t = ticket(client)
    url = urllib.parse.urlsplit(t["url"])
    params = dict(urllib.parse.parse_qsl(url.query))
    assert params["X-Amz-SignedHeaders"] == "content-length;content-type;host"
    assert params["X-Amz-Expires"] == str(EXPIRY_S)
    assert params["X-Amz-Credential"].split("/")[2:] == ["eu-west-1", "s3", "aws4_request"]
    assert urllib.parse.unquote(url.path) == "/photos/uploads/alice/IMG_0001.jpg"
    expires_at = datetime.fromisoformat(t["expires_at"].replace("Z", "+00:00"))
    assert abs(expires_at - (issued + timedelta(seconds=EXPIRY_S))) < timedelta(seconds=5)
    assert t["headers"] == {"Content-Type": "image/jpeg", "Content-Length": str(len(JPEG))}

    secrets = {ACCESS_KEY: SECRET_KEY}
    sent = {"host": url.netloc} | {k.lower(): v for k, v in t["headers"].items()}
    now = datetime.now(UTC)

    def check(method: str = "PUT", path: str = url.path, **changed: Any) -> Any:
        headers = {k: v for k, v in (sent | changed).items() if v is not None}
        return refusal(method, path, url.query, headers, secrets, now)

    assert check() is None
    mismatch = ("SignatureDoesNotMatch", "the signature does not match the request")
    assert check("GET") == mismatch
    assert check("DELETE") == mismatch
    assert check(path=url.path.replace("alice", "bob")) == mismatch
    assert check(path=url.path.replace("IMG_0001", "IMG_0002")) == mismatch
    assert check(**{"content-length": str(5 * 2**30)}) == mismatch
    assert check(**{"content-type": "text/html"}) == mismatch
    assert check(**{"content-length": None})[0] == "SignatureDoesNotMatch"
    late = now + timedelta(seconds=EXPIRY_S + 1)
    assert refusal("PUT", url.path, url.query, sent, secrets, late) == (
        "AccessDenied",
        "Request has expired",
    )


def test_only_the_ticketed_put_is_taken(client: TestClient, double: StrictS3) -> None:
    """Over HTTP, as a phone (or an attacker holding the URL) would send it."""
    t = ticket(client)
    url = t["url"]
    assert (
        httpx.put(url, content=JPEG + b"more", headers={"Content-Type": "image/jpeg"}).status_code
        == 403
    )
    assert httpx.put(url, content=JPEG, headers={"Content-Type": "image/png"}).status_code == 403
    assert (
        httpx.put(url.replace("alice", "bob"), content=JPEG, headers=t["headers"]).status_code
        == 403
    )
    assert httpx.get(url).status_code == 403
    assert httpx.put(url.split("?")[0], content=JPEG, headers=t["headers"]).status_code == 403
    tampered = url.replace(f"X-Amz-Expires={EXPIRY_S}", "X-Amz-Expires=604800")
    assert httpx.put(tampered, content=JPEG, headers=t["headers"]).status_code == 403
    assert double.objects == {}
    assert double.refusals == ["SignatureDoesNotMatch"] * 4 + ["AccessDenied"] + [
        "SignatureDoesNotMatch"
    ]

    assert httpx.put(url, content=JPEG, headers=t["headers"]).status_code == 200
    assert double.objects == {"photos/uploads/alice/IMG_0001.jpg": (JPEG, "image/jpeg")}


def test_a_ticket_over_the_size_limit_is_never_signed(client: TestClient) -> None:
    body = {"filename": "big.jpg", "content_type": "image/jpeg", "size": 5_000_001}
    answer = client.post("/v1/users/alice/uploads", json=body, headers=H)
    assert answer.status_code == 422 and answer.json()["error"]["code"] == "too_large"
