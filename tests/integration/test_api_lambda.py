"""The cluster-api Lambda handler (Mangum) with real API Gateway proxy event shapes."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from photocluster.api import get_app
from photocluster.config import Settings, get_settings
from photocluster.ingest.handlers import LocalContext
from photocluster.library import Library
from tests.helpers.aws import load_handler
from tests.helpers.data import grouped_vectors
from tests.helpers.procs import REPO

HANDLER = REPO / "services" / "cluster-api" / "handler.py"


def rest_v1_event(
    path: str, query: dict[str, str], claims: dict[str, str] | None, method: str = "GET"
) -> dict[str, Any]:
    """What API Gateway's REST API (Lambda proxy, Cognito authorizer) sends."""
    return {
        "resource": "/v1/users/{user_id}/{proxy+}",
        "path": path,
        "httpMethod": method,
        "headers": {
            "Accept": "application/json",
            "Host": "abc123.execute-api.us-east-1.amazonaws.com",
            "User-Agent": "okhttp/4.12.0",
            "X-Forwarded-Proto": "https",
        },
        "multiValueHeaders": {
            "Accept": ["application/json"],
            "Host": ["abc123.execute-api.us-east-1.amazonaws.com"],
        },
        "queryStringParameters": query or None,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} or None,
        "pathParameters": {"user_id": path.split("/")[3], "proxy": "/".join(path.split("/")[4:])},
        "stageVariables": None,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "stage": "v1",
            "resourceId": "xyz",
            "resourcePath": "/v1/users/{user_id}/{proxy+}",
            "httpMethod": method,
            "path": f"/v1{path}",
            "protocol": "HTTP/1.1",
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "requestTimeEpoch": 1732410000000,
            "identity": {"sourceIp": "203.0.113.7", "userAgent": "okhttp/4.12.0"},
            **({"authorizer": {"claims": claims}} if claims is not None else {}),
        },
        "body": None,
        "isBase64Encoded": False,
    }


def http_v2_event(path: str, query: str, claims: dict[str, str] | None) -> dict[str, Any]:
    """What API Gateway's HTTP API (payload 2.0, JWT authorizer) sends."""
    return {
        "version": "2.0",
        "routeKey": "GET /v1/users/{user_id}/{proxy+}",
        "rawPath": path,
        "rawQueryString": query,
        "headers": {
            "accept": "application/json",
            "host": "abc123.execute-api.us-east-1.amazonaws.com",
            "user-agent": "okhttp/4.12.0",
            "x-forwarded-proto": "https",
        },
        "queryStringParameters": dict(p.split("=") for p in query.split("&")) if query else None,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "abc123",
            "http": {
                "method": "GET",
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.7",
                "userAgent": "okhttp/4.12.0",
            },
            "requestId": "JKJaXmPLvHcESHA=",
            "routeKey": "GET /v1/users/{user_id}/{proxy+}",
            "stage": "$default",
            "time": "24/Nov/2026:10:00:00 +0000",
            "timeEpoch": 1732442400000,
            **(
                {"authorizer": {"jwt": {"claims": claims, "scopes": None}}}
                if claims is not None
                else {}
            ),
        },
        "isBase64Encoded": False,
    }


@pytest.fixture
def handler(store_root: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    settings = Settings(store_root=store_root, model="test-model", store_fsync=False)
    ids, vectors, _ = grouped_vectors(np.random.default_rng(2), 4, 4, 6, dim=64, noise=0.3)
    Library.from_settings(settings).write("alice", "test-model", ids, vectors)
    monkeypatch.setenv("PHOTOCLUSTER_STORE_ROOT", str(store_root))
    monkeypatch.setenv("PHOTOCLUSTER_AUTH_MODE", "apigateway")
    get_settings.cache_clear()
    get_app.cache_clear()
    module = load_handler(HANDLER)
    get_settings.cache_clear()
    get_app.cache_clear()
    return module


def call(handler: ModuleType, event: dict[str, Any]) -> tuple[int, Any]:
    response = handler.handler(event, LocalContext())
    body = response["body"]
    return response["statusCode"], json.loads(body) if body else None


def test_rest_api_event_with_cognito_claims(handler: ModuleType) -> None:
    status, body = call(
        handler,
        rest_v1_event(
            "/v1/users/alice/clusters", {"high": "0.95"}, {"sub": "alice", "token_use": "access"}
        ),
    )
    assert status == 200
    assert body["n_images"] == 22 and body["tiers"][-1]["threshold"] == 0.95


def test_http_api_event_with_jwt_claims(handler: ModuleType) -> None:
    status, body = call(handler, http_v2_event("/v1/users/alice/stats", "", {"sub": "alice"}))
    assert status == 200 and body["n_images"] == 22


@pytest.mark.parametrize("shape", ["v1", "v2"])
def test_claims_for_another_user_are_403(handler: ModuleType, shape: str) -> None:
    event = (
        rest_v1_event("/v1/users/alice/clusters", {}, {"sub": "mallory"})
        if shape == "v1"
        else http_v2_event("/v1/users/alice/clusters", "", {"sub": "mallory"})
    )
    assert call(handler, event)[0] == 403


@pytest.mark.parametrize("shape", ["v1", "v2"])
def test_no_authorizer_context_is_401(handler: ModuleType, shape: str) -> None:
    event = (
        rest_v1_event("/v1/users/alice/clusters", {}, None)
        if shape == "v1"
        else http_v2_event("/v1/users/alice/clusters", "", None)
    )
    assert call(handler, event)[0] == 401


def test_bad_threshold_through_the_gateway_is_422(handler: ModuleType) -> None:
    status, body = call(
        handler, rest_v1_event("/v1/users/alice/clusters", {"low": "1.7"}, {"sub": "alice"})
    )
    assert status == 422 and "less than or equal to 1" in json.dumps(body)


def test_delete_through_the_gateway(handler: ModuleType) -> None:
    event = rest_v1_event("/v1/users/alice/images/img-00000", {}, {"sub": "alice"}, "DELETE")
    assert call(handler, event)[0] == 204
