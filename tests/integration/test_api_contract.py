"""The contract an app codes against: groups as objects with pages, one error format,
authentication first, a schema generators like, caching with ETags, CORS."""

from __future__ import annotations

import itertools
import re
from collections import Counter
from typing import Any

import numpy as np
import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from photocluster.api.contract import STATUS_OF
from photocluster.api.errors import CLIENT_ERRORS, ApiError
from photocluster.api.main import ROUTERS, create_app
from photocluster.api.openapi import query_parameters_of
from photocluster.config import Settings
from photocluster.library import Library
from tests.helpers.api import auth, error_of

H = auth("alice")
Filled = tuple[Library, list[str], np.ndarray]


def clusters(client: TestClient, query: str = "") -> dict[str, Any]:
    answer = client.get(f"/v1/users/alice/clusters?{query}", headers=H)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


# ---------------------------------------------------------------------- groups


def test_groups_have_a_stable_id_the_lowest_similarity_and_their_parent(
    api_settings: Settings, client: TestClient, filled_library: Filled
) -> None:
    _, ids, vectors = filled_library
    body = clusters(client)  # the default linkage: average
    complete = clusters(client, "linkage=complete")
    for tier in complete["tiers"]:  # every pair of a complete-linkage group passes
        assert all(group["score"] >= tier["threshold"] for group in tier["groups"])
    for looser, tier in itertools.pairwise([None, *body["tiers"]]):
        by_id = {g["id"]: set(g["image_ids"]) for g in looser["groups"]} if looser else {}
        for group in tier["groups"]:
            rows = [ids.index(i) for i in group["image_ids"]]
            similarity = vectors[rows] @ vectors[rows].T
            lowest = similarity[np.triu_indices(len(rows), 1)].min()
            assert group["score"] == pytest.approx(lowest, abs=1e-5)
            if body["linkage"] == "complete":  # average may carry a weaker pair
                assert group["score"] >= tier["threshold"]
            if looser is None:
                assert group["parent_id"] is None
            else:
                assert set(group["image_ids"]) <= by_id[group["parent_id"]]
    restarted = TestClient(create_app(api_settings, Library.from_settings(api_settings)))
    assert clusters(restarted) == body  # same ids in another process's app
    ids_by_members = {
        frozenset(g["image_ids"]): g["id"] for t in body["tiers"] for g in t["groups"]
    }
    assert len(set(ids_by_members.values())) == len(ids_by_members)


def test_groups_come_a_page_per_tier_with_totals_and_a_cursor_per_tier(
    client: TestClient,
) -> None:
    whole = clusters(client)
    first = clusters(client, "limit=2")
    for full, page in zip(whole["tiers"], first["tiers"], strict=True):
        assert page["total_groups"] == full["total_groups"] == len(full["groups"])
        assert page["total_images"] == sum(len(g["image_ids"]) for g in full["groups"])
        assert page["groups"] == full["groups"][:2]
        seen, cursor = list(page["groups"]), page["next_cursor"]
        while cursor:
            following = clusters(client, f"limit=2&cursor={cursor}")
            assert [t["name"] for t in following["tiers"]] == [full["name"]]
            seen += following["tiers"][0]["groups"]
            cursor = following["tiers"][0]["next_cursor"]
        assert seen == full["groups"]
    only = clusters(client, "tier=medium&limit=1")
    assert [t["name"] for t in only["tiers"]] == ["medium"]
    low_cursor = first["tiers"][0]["next_cursor"]
    answer = client.get(f"/v1/users/alice/clusters?tier=high&cursor={low_cursor}", headers=H)
    message = error_of(answer, 422, "invalid_cursor")["message"]
    assert message == "this cursor is for tier 'low', not 'high'"  # no Python repr
    for bad in ("garbage", "eyJ0IjoibG93IiwibyI6LTF9"):  # the second: offset -1
        error_of(
            client.get(f"/v1/users/alice/clusters?cursor={bad}", headers=H), 422, "invalid_cursor"
        )


def test_a_user_with_no_photos_gets_empty_tiers_in_the_same_shape(client: TestClient) -> None:
    body = client.get("/v1/users/carol/clusters", headers=auth("carol")).json()
    assert body["n_images"] == 0
    assert all(
        t["groups"] == [] and t["total_groups"] == 0 and t["next_cursor"] is None
        for t in body["tiers"]
    )


# ---------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("request_", "status", "code"),
    [
        (("GET", "/v1/users/alice/clusters?low=1.7", None), 422, "invalid_request"),
        (("GET", "/v1/users/alice/clusters?low=0.9&medium=0.8", None), 422, "invalid_thresholds"),
        (
            ("GET", "/v1/users/alice/clusters?low=0.5&low=0.9", None),
            422,
            "repeated_query_parameter",
        ),
        (("GET", "/v1/users/alice/clusters?foo=1", None), 422, "unknown_query_parameter"),
        (("GET", "/v1/users/alice/images?cursor=zzz", None), 422, "invalid_cursor"),
        (("GET", "/v1/users/alice/images/nope.jpg", None), 404, "unknown_image"),
        (("GET", "/v1/users/alice/nowhere", None), 404, "not_found"),
        (("PATCH", "/v1/users/alice/clusters", None), 405, "method_not_allowed"),
        (("GET", "/v1/users/bob/clusters", None), 403, "forbidden"),
        (("POST", "/v1/users/alice/uploads", b"{"), 400, "malformed_json"),
    ],
)
def test_every_error_has_one_shape_and_a_code(
    client: TestClient, request_: tuple[str, str, bytes | None], status: int, code: str
) -> None:
    method, url, body = request_
    headers = H | {"content-type": "application/json"}
    answer = client.request(method, url, content=body, headers=headers)
    error = error_of(answer, status, code)
    if code == "invalid_request":
        assert error["details"][0]["loc"] == ["query", "low"]
        assert error["message"].startswith("query low:")
    if status == 405:
        assert answer.headers["allow"] == "GET"


@pytest.mark.parametrize(
    "url",
    [
        "/v1/users/alice/clusters?foo=1",
        "/v1/users/alice/clusters?low=1.7",
        "/v1/users/alice/clusters?low=0.5&low=0.9",
        "/v1/users/..%2F..%2Fetc/clusters",
        "/v1/users/alice/images/..%2Fx/similar?k=0",
        "/v1/users/alice/nowhere",
    ],
)
def test_authentication_comes_first_whatever_the_query(client: TestClient, url: str) -> None:
    for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic x"}):
        answer = client.get(url, headers=headers)
        error = error_of(answer, 401, "unauthorized")
        assert "accepts" not in error["message"]  # nothing about the route leaks
        assert answer.headers["www-authenticate"] == "Bearer"
    garbled = client.post("/v1/users/alice/uploads", content=b"{", headers={"x": "y"})
    error_of(garbled, 401, "unauthorized")


# ---------------------------------------------------------------------- schema


def test_the_schema_names_every_operation_declares_bearer_auth_and_each_enum_once(
    client: TestClient,
) -> None:
    schema = client.get("/openapi.json").json()
    operations = [
        (path, method, operation)
        for path, methods in schema["paths"].items()
        for method, operation in methods.items()
    ]
    names = [operation["operationId"] for _, _, operation in operations]
    assert all(re.fullmatch(r"[a-z]+(?:[A-Z][a-z]+)*", name) for name in names), names
    assert len(set(names)) == len(names)
    assert {"listClusters", "getSimilarImages", "markNotSimilar", "listDecisions"} <= set(names)
    assert schema["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    for path, _, operation in operations:
        if path.startswith("/v1/users/"):
            assert operation["security"] == [{"bearerAuth": []}], path
            assert "401" in operation["responses"] and "422" in operation["responses"]
    components = schema["components"]["schemas"]
    enums = Counter(
        tuple(definition["enum"]) for definition in components.values() if "enum" in definition
    )
    assert all(count == 1 for count in enums.values()), enums
    assert not [name for name in components if "Type0" in name or "HTTPValidation" in name]
    assert _inline_enums(schema["paths"]) == []


def _codes(components: dict[str, Any], body_ref: str) -> dict[str, str]:
    """Each error code a response's body declares -> the schema of that error."""
    body = components[body_ref.rsplit("/", 1)[1]]["properties"]["error"]
    variants = [v["$ref"] for v in body.get("oneOf", [body])]
    found = {}
    for ref in variants:
        name = ref.rsplit("/", 1)[1]
        code = components[name]["properties"]["code"]
        for value in code.get("enum", [code.get("const")]):
            found[value] = name
    return found


def test_every_error_status_of_a_route_declares_its_codes_and_their_details(
    client: TestClient,
) -> None:
    """A generated client gets, per route and status, a union over ``error.code`` (an
    exhaustive switch) and typed details; a cached route declares If-None-Match, the ETag
    and its 304."""
    schema = client.get("/openapi.json").json()
    components = schema["components"]["schemas"]
    declared: dict[str, dict[str, str]] = {}
    for methods in schema["paths"].values():
        for operation in methods.values():
            codes = {}
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")):
                    ref = response["content"]["application/json"]["schema"]["$ref"]
                    found = _codes(components, ref)
                    assert {STATUS_OF[c] for c in found} == {int(status)}, (status, found)
                    assert set(response["description"].split(", ")) == set(found)
                    codes |= found
            declared[operation["operationId"]] = codes
    upload = declared["createUpload"]
    assert {"throttled", "too_large", "invalid_filename", "malformed_json"} <= set(upload)
    assert "unknown_image" not in upload and "image_not_ready" not in declared["getImage"]
    assert declared["markNotSimilar"]["unknown_image"] == "UnknownImageError"
    unknown = components["UnknownImageError"]["properties"]["details"]["anyOf"][0]["items"]
    assert unknown == {"$ref": "#/components/schemas/UnknownImageDetail"}
    assert components["UnknownImageDetail"]["required"] == ["type", "image_id"]
    assert declared["listClusters"]["threshold_below_floor"] == "ThresholdBelowFloorError"
    assert "floor" in components["BelowFloor"]["properties"]
    assert set(declared["getHealth"]) == {
        "invalid_request",
        "unknown_query_parameter",
        "repeated_query_parameter",
        "payload_too_large",
        "internal_error",
    }
    cached = {"listClusters", "listImages", "getImage", "getSimilarImages", "listPairs"}
    for path, methods in schema["paths"].items():
        for operation in methods.values():
            if operation["operationId"] not in cached | {"getStats", "listDecisions"}:
                continue
            headers = [p["name"] for p in operation["parameters"] if p["in"] == "header"]
            assert headers == ["If-None-Match"], path
            for status in ("200", "304"):
                assert set(operation["responses"][status]["headers"]) == {"ETag", "Cache-Control"}


def test_the_query_parameters_a_route_accepts_are_those_it_documents(client: TestClient) -> None:
    """The unknown-parameter check reads the routes' dependencies (the schema's generation
    cost a new instance's first request 0.2 s): the two lists must be the same."""
    schema = client.get("/openapi.json").json()
    checked = 0
    for route in (r for router in ROUTERS for r in router.routes):
        assert isinstance(route, APIRoute) and route.include_in_schema
        for method in route.methods:
            operation = schema["paths"][route.path_format][method.lower()]
            documented = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}
            assert query_parameters_of(route) == documented, route.path_format
            checked += 1
    assert checked >= 12


def test_every_code_the_api_raises_has_its_one_status() -> None:
    """An error's status comes from its code (contract.STATUS_OF), in one place."""
    for kind, code in CLIENT_ERRORS.items():
        assert (code or getattr(kind, "code", None)) in STATUS_OF, kind
    assert ApiError("forbidden", "no").status == 403
    with pytest.raises(KeyError):
        ApiError("a_code_with_no_status", "no")


def test_every_error_the_api_gives_is_one_its_route_declares(client: TestClient) -> None:
    """The answers of a few routes at their errors, checked against the declared codes."""
    schema = client.get("/openapi.json").json()
    components = schema["components"]["schemas"]

    def declared(path: str, method: str, status: int) -> set[str]:
        response = schema["paths"][path][method]["responses"][str(status)]
        return set(_codes(components, response["content"]["application/json"]["schema"]["$ref"]))

    cases = [
        ("get", "/v1/users/{user_id}/stats", "/v1/users/alice/stats", {}, None),
        ("get", "/v1/users/{user_id}/stats", "/v1/users/bob/stats", H, None),
        ("get", "/v1/users/{user_id}/stats", "/v1/users/alice/stats?x=1", H, None),
        (
            "get",
            "/v1/users/{user_id}/clusters",
            "/v1/users/alice/clusters?low=0.9&high=0.5",
            H,
            None,
        ),
        (
            "get",
            "/v1/users/{user_id}/images/{image_id}",
            "/v1/users/alice/images/nope.jpg",
            H,
            None,
        ),
        (
            "put",
            "/v1/users/{user_id}/decisions/not-similar",
            "/v1/users/alice/decisions/not-similar",
            H,
            b"{",
        ),
    ]
    for method, template, url, headers, body in cases:
        answer = client.request(method.upper(), url, headers=headers, content=body)
        assert answer.status_code >= 400, url
        code = answer.json()["error"]["code"]
        assert code in declared(template, method, answer.status_code), (url, code)


def _inline_enums(node: Any, where: str = "") -> list[str]:
    """Enums written out inside operations instead of referring to a component."""
    if isinstance(node, dict):
        found = [where] if "enum" in node else []
        return found + [hit for k, v in node.items() for hit in _inline_enums(v, f"{where}/{k}")]
    if isinstance(node, list):
        return [hit for i, v in enumerate(node) for hit in _inline_enums(v, f"{where}/{i}")]
    return []


# ---------------------------------------------------------------------- caching


def test_get_answers_carry_an_etag_and_304_when_the_copy_is_current(
    client: TestClient, filled_library: Filled
) -> None:
    library, ids, vectors = filled_library
    urls = [
        "/v1/users/alice/clusters",
        "/v1/users/alice/clusters?high=0.95",
        f"/v1/users/alice/images/{ids[0]}/similar",
        "/v1/users/alice/pairs",
        "/v1/users/alice/images",
        f"/v1/users/alice/images/{ids[0]}",
        "/v1/users/alice/stats",
        "/v1/users/alice/decisions",
    ]
    first = {url: client.get(url, headers=H) for url in urls}
    for url, answer in first.items():
        assert answer.headers["cache-control"] == "private, no-cache", url
        assert answer.headers["server-timing"].startswith("app;dur="), url
        again = client.get(url, headers=H)
        assert again.content == answer.content and again.headers["etag"] == answer.headers["etag"]
        cached = client.get(url, headers=H | {"If-None-Match": answer.headers["etag"]})
        assert cached.status_code == 304 and cached.content == b"", url
        assert cached.headers["etag"] == answer.headers["etag"]
    assert len({answer.headers["etag"] for answer in first.values()}) == len(urls)

    library.write("alice", "test-model", ["new.jpg"], vectors[:1])  # any write: all stale
    for url, answer in first.items():
        fresh = client.get(url, headers=H | {"If-None-Match": answer.headers["etag"]})
        assert fresh.status_code == 200 and fresh.headers["etag"] != answer.headers["etag"], url
    tag = client.get(urls[0], headers=H).headers["etag"]
    client.put("/v1/users/alice/decisions/not-similar", json={"image_ids": ids[:2]}, headers=H)
    assert client.get(urls[0], headers=H | {"If-None-Match": tag}).status_code == 200
    assert client.get(urls[0], headers=H | {"If-None-Match": "*"}).status_code == 304


def test_errors_are_never_cached(client: TestClient) -> None:
    answer = client.get("/v1/users/alice/images/nope.jpg", headers=H)
    assert answer.status_code == 404 and "etag" not in answer.headers


# ---------------------------------------------------------------------- CORS


def test_cors_for_the_configured_origins_only(
    api_settings: Settings, filled_library: Filled
) -> None:
    settings = api_settings.model_copy(update={"cors_origins": ["https://app.example"]})
    client = TestClient(create_app(settings, filled_library[0]))
    preflight = {
        "Origin": "https://app.example",
        "Access-Control-Request-Method": "PUT",
        "Access-Control-Request-Headers": "authorization, content-type",
    }
    url = "/v1/users/alice/decisions/not-similar"
    answer = client.options(url, headers=preflight)
    assert answer.status_code == 204 and answer.content == b""
    assert answer.headers["access-control-allow-origin"] == "https://app.example"
    assert "PUT" in answer.headers["access-control-allow-methods"]
    refused = client.options(url, headers=preflight | {"Origin": "https://evil.example"})
    error_of(refused, 400, "cors_not_allowed")
    simple = client.get("/v1/users/alice/stats", headers=H | {"Origin": "https://app.example"})
    assert simple.headers["access-control-allow-origin"] == "https://app.example"
    assert "ETag" in simple.headers["access-control-expose-headers"]
    plain = TestClient(create_app(api_settings, filled_library[0]))
    answer = plain.options(url, headers=preflight)
    assert "access-control-allow-origin" not in answer.headers
    # without origins configured, a preflight is still answered as CORS (it was a 401)
    assert "PHOTOCLUSTER_CORS_ORIGINS" in error_of(answer, 400, "cors_not_allowed")["message"]
    simple = plain.get("/v1/users/alice/stats", headers=H | {"Origin": "https://app.example"})
    assert simple.status_code == 200 and "access-control-allow-origin" not in simple.headers


def test_cors_origins_come_comma_separated_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PHOTOCLUSTER_CORS_ORIGINS", "https://a.example, https://b.example")
    assert Settings().cors_origins == ["https://a.example", "https://b.example"]
    monkeypatch.setenv("PHOTOCLUSTER_CORS_ORIGINS", "")
    assert Settings().cors_origins == []
