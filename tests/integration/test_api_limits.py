"""Request bodies are bounded in the app itself, not only by API Gateway (issue 33: a 200 MB
JSON body took `make api-serve` from 148 to 671 MB before its 422)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from photocluster.api.main import create_app
from photocluster.config import Settings
from tests.helpers.api import SECRET, auth, error_of, said

LIMIT = 4096
URL = "/v1/users/alice/decisions/not-similar"
JSON = {"content-type": "application/json"}


@pytest.fixture
def client(store_root: Path) -> TestClient:
    return TestClient(
        create_app(Settings(store_root=store_root, jwt_secret=SECRET, api_max_body_bytes=LIMIT))
    )


def body_of(size: int) -> bytes:
    return b'{"image_ids":["' + b"a" * (size - 20) + b'","b"]}'


def test_a_body_declared_over_the_limit_is_refused_unread(client: TestClient) -> None:
    big = body_of(LIMIT + 1)
    refused = error_of(client.put(URL, content=big, headers=auth("alice") | JSON), 413)
    assert refused["code"] == "payload_too_large" and f"{LIMIT:,} bytes" in said(refused)


def test_a_body_without_a_length_is_read_only_up_to_the_limit(store_root: Path) -> None:
    """Over ASGI itself (a test client buffers the whole body before the app sees it)."""
    app = create_app(Settings(store_root=store_root, jwt_secret=SECRET, api_max_body_bytes=LIMIT))
    pulled, sent = [], []
    headers = [(k.lower().encode(), v.encode()) for k, v in (auth("alice") | JSON).items()]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "PUT",
        "scheme": "http",
        "path": URL,
        "raw_path": URL.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 5000),
        "server": ("test", 80),
    }

    async def receive() -> dict[str, object]:
        pulled.append(1)
        return {"type": "http.request", "body": b"x" * 1024, "more_body": len(pulled) < 1000}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    assert sent[0]["status"] == 413
    assert b"payload_too_large" in b"".join(m.get("body", b"") for m in sent)  # type: ignore[misc]
    assert len(pulled) <= LIMIT // 1024 + 1  # not the 1 MB that followed


def test_a_body_under_the_limit_is_read_as_before(client: TestClient) -> None:
    answer = client.put(URL, content=body_of(LIMIT - 10), headers=auth("alice") | JSON)
    assert error_of(answer, 422)["code"] != "payload_too_large"  # an id too long: read


def test_an_unauthenticated_body_over_the_limit_is_refused_before_anything(
    client: TestClient,
) -> None:
    error_of(client.put(URL, content=body_of(LIMIT * 4), headers=JSON), 413, "payload_too_large")


def test_the_default_limit_is_api_gateways() -> None:
    assert Settings().api_max_body_bytes == 10 * 2**20
