"""The cluster-api Lambda handler (Mangum) with real API Gateway proxy event shapes."""

from __future__ import annotations

import json
import time
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
ISSUER = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Ab12Cd34E"
CLIENT = "4f0b2kq3mexample7client"


def _rest_date(epoch: float) -> str:
    return time.strftime("%a %b %d %H:%M:%S UTC %Y", time.gmtime(epoch))


def cognito_claims(sub: str, lifetime_s: int = 3600, **changed: str) -> dict[str, str]:
    """An ID token's claims as a REST API's Cognito authorizer passes them: every value a
    string, iat and exp as dates."""
    now = time.time()
    return {
        "sub": sub,
        "aud": CLIENT,
        "iss": ISSUER,
        "token_use": "id",
        "cognito:username": sub,
        "email_verified": "true",
        "auth_time": str(int(now)),
        "iat": _rest_date(now),
        "exp": _rest_date(now + lifetime_s),
    } | changed


def jwt_authorizer_claims(sub: str, **changed: str) -> dict[str, str]:
    """An access token's claims as an HTTP API's JWT authorizer passes them."""
    now = int(time.time())
    return {
        "sub": sub,
        "client_id": CLIENT,
        "iss": ISSUER,
        "token_use": "access",
        "scope": "aws.cognito.signin.user.admin",
        "iat": str(now),
        "exp": str(now + 3600),
    } | changed


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
    monkeypatch.setenv("PHOTOCLUSTER_JWT_ISSUER", ISSUER)
    monkeypatch.setenv("PHOTOCLUSTER_JWT_AUDIENCE", CLIENT)
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
        rest_v1_event("/v1/users/alice/clusters", {"high": "0.95"}, jwt_authorizer_claims("alice")),
    )
    assert status == 200
    assert body["n_images"] == 22 and body["tiers"][-1]["threshold"] == 0.95


def test_http_api_event_with_jwt_claims(handler: ModuleType) -> None:
    status, body = call(
        handler, http_v2_event("/v1/users/alice/stats", "", jwt_authorizer_claims("alice"))
    )
    assert status == 200 and body["n_images"] == 22


@pytest.mark.parametrize("shape", ["v1", "v2"])
def test_claims_for_another_user_are_403(handler: ModuleType, shape: str) -> None:
    event = (
        rest_v1_event("/v1/users/alice/clusters", {}, cognito_claims("mallory"))
        if shape == "v1"
        else http_v2_event("/v1/users/alice/clusters", "", jwt_authorizer_claims("mallory"))
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
        handler, rest_v1_event("/v1/users/alice/clusters", {"low": "1.7"}, cognito_claims("alice"))
    )
    assert status == 422 and "less than or equal to 1" in json.dumps(body)


def test_delete_through_the_gateway(handler: ModuleType) -> None:
    event = rest_v1_event("/v1/users/alice/images/img-00000", {}, cognito_claims("alice"), "DELETE")
    assert call(handler, event)[0] == 204


def test_rest_api_event_with_an_id_tokens_claims(handler: ModuleType) -> None:
    status, body = call(
        handler, rest_v1_event("/v1/users/alice/stats", {}, cognito_claims("alice"))
    )
    assert status == 200 and body["n_images"] == 22


@pytest.mark.parametrize(
    ("claims", "says"),
    [
        (
            cognito_claims("alice", iss="https://cognito-idp.us-east-1.amazonaws.com/other"),
            "issuer",
        ),
        (cognito_claims("alice", aud="another-app-client"), "app client"),
        (jwt_authorizer_claims("alice", client_id="another-app-client"), "app client"),
        (cognito_claims("alice", token_use="access"), "app client"),  # no client_id
        (cognito_claims("alice", lifetime_s=30 * 86_400), "longer than the 86400 s"),
        (jwt_authorizer_claims("alice", exp="253402300799"), "longer than the 86400 s"),
    ],
)
def test_claims_the_authorizer_passes_but_the_app_does_not_are_401(
    handler: ModuleType, claims: dict[str, str], says: str
) -> None:
    """A REST API's Cognito authorizer takes any app client's token of the pool, and
    whatever lifetime the pool gives: the app checks issuer, audience and lifetime."""
    status, body = call(handler, rest_v1_event("/v1/users/alice/stats", {}, claims))
    assert status == 401 and says in body["error"]["message"]
