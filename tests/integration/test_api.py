"""The cluster API over ASGI (httpx) with a real store on disk."""

from __future__ import annotations

import re
import time
from pathlib import Path

import jwt
import numpy as np
import pytest
from fastapi.testclient import TestClient

from photocluster.api.auth import make_token
from photocluster.api.main import create_app
from photocluster.config import Settings
from photocluster.errors import AuthNotConfigured
from photocluster.library import Library
from photocluster.store.records import ImageError, ImageRecord
from tests.helpers.api import SECRET, auth, error_of, said


def test_health_says_only_ok_without_a_token(client: TestClient) -> None:
    """Liveness for anyone; the version and the deployment's tiers only to a caller with
    a valid token (they told an anonymous prober which model and release it faced)."""
    assert client.get("/health").json() == {"status": "ok"}
    forged = {"Authorization": "Bearer not-a-token"}
    assert client.get("/health", headers=forged).json() == {"status": "ok"}
    known = client.get("/health", headers=auth("alice")).json()
    assert set(known) == {"status", "version", "tiers"} and known["tiers"]["thresholds"]


def test_clusters(
    client: TestClient, filled_library: tuple[Library, list[str], np.ndarray]
) -> None:
    response = client.get("/v1/users/alice/clusters", headers=auth("alice"))
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"user_id", "n_images", "model", "linkage", "exact", "tiers"}
    assert body["n_images"] == 44 and body["model"] == "test-model"
    assert [t["name"] for t in body["tiers"]] == ["low", "medium", "high"]
    expected = filled_library[0].clusters("alice").tiers
    assert [[g["image_ids"] for g in t["groups"]] for t in body["tiers"]] == [
        t.groups for t in expected
    ]
    assert "server-timing" in response.headers


def test_caller_thresholds_and_linkage(client: TestClient) -> None:
    body = client.get(
        "/v1/users/alice/clusters?low=0.5&medium=0.7&high=0.95&linkage=single&min_size=3",
        headers=auth("alice"),
    ).json()
    assert [t["threshold"] for t in body["tiers"]] == [0.5, 0.7, 0.95]
    assert body["linkage"] == "single"
    assert all(len(g["image_ids"]) >= 3 for t in body["tiers"] for g in t["groups"])


def test_average_linkage_groups_and_their_scores(
    client: TestClient, filled_library: tuple[Library, list[str], np.ndarray]
) -> None:
    library, ids, vectors = filled_library
    query = "low=0.5&medium=0.7&high=0.9&linkage=average"
    response = client.get(f"/v1/users/alice/clusters?{query}", headers=auth("alice"))
    assert response.status_code == 200
    body = response.json()
    assert body["linkage"] == "average"
    expected = library.clusters("alice", {"low": 0.5, "medium": 0.7, "high": 0.9}, "average")
    assert [[g["image_ids"] for g in t["groups"]] for t in body["tiers"]] == [
        t.groups for t in expected.tiers
    ]
    assert any(t["groups"] for t in body["tiers"])
    for group in (g for t in body["tiers"] for g in t["groups"]):
        rows = [ids.index(i) for i in group["image_ids"]]
        similarity = vectors[rows] @ vectors[rows].T
        lowest = similarity[np.triu_indices(len(rows), 1)].min()
        assert group["score"] == pytest.approx(min(max(lowest, 0.0), 1.0), abs=1e-5)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("low=1.7", "less than or equal to 1"),
        ("low=0", "greater than 0"),
        ("low=0.9&medium=0.8", "must be greater than 'low'"),
        ("high=abc", "valid number"),
        ("linkage=ward", "'complete', 'single' or 'average'"),
        ("min_size=0", "greater than or equal to 1"),
        ("low=nan", "finite number"),
        ("medium=0.5", "must be greater than 'low'"),
    ],
)
def test_bad_thresholds_get_422_with_a_clear_message(
    client: TestClient, query: str, message: str
) -> None:
    response = client.get(f"/v1/users/alice/clusters?{query}", headers=auth("alice"))
    assert message in said(error_of(response, 422))


def test_scores_that_are_not_finite_numbers_get_422(client: TestClient) -> None:
    for path in (
        "pairs?min_score=nan",
        "pairs?max_score=inf",
        "images/a.jpg/similar?min_score=nan",
    ):
        response = client.get(f"/v1/users/alice/{path}", headers=auth("alice"))
        assert "finite number" in said(error_of(response, 422))


def test_a_threshold_below_the_floor_on_a_large_library_is_422_naming_the_floor(
    api_settings: Settings, filled_library: tuple[Library, list[str], np.ndarray]
) -> None:
    bounded = api_settings.model_copy(update={"on_demand_max_images": 10})  # alice has 44
    client = TestClient(create_app(bounded, Library.from_settings(bounded)))
    floor = Library.from_settings(bounded).tiers("test-model").index_floor
    for path in (f"clusters?low={floor / 2}", f"pairs?min_score={floor / 2}"):
        response = client.get(f"/v1/users/alice/{path}", headers=auth("alice"))
        error = error_of(response, 422, "threshold_below_floor")
        assert error["details"][0]["floor"] == floor
        assert f"floor {floor}" in error["message"]
    assert client.get(f"/v1/users/bob/clusters?low={floor / 2}", headers=auth("bob")).is_success


def test_a_folder_where_a_users_file_should_be_is_503_not_a_bare_500(
    client: TestClient, filled_library: tuple[Library, list[str], np.ndarray]
) -> None:
    filled_library[0].store.paths("carol").data.mkdir(parents=True)
    for path in ("clusters", "stats", "images", "images/a.jpg/similar"):
        response = client.get(f"/v1/users/carol/{path}", headers=auth("carol"))
        error = error_of(response, 503, "store_unavailable")
        assert error["message"] == "the photo library could not be read"


def test_no_token_is_401(client: TestClient) -> None:
    response = client.get("/v1/users/alice/clusters")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "token",
    [
        "not-a-jwt",
        jwt.encode(
            {"sub": "alice", "exp": int(time.time()) + 60},
            "another-secret-of-32-chars-at-least",
            algorithm="HS256",
        ),
        jwt.encode({"sub": "alice"}, SECRET, algorithm="HS256"),  # no expiry
        jwt.encode({"sub": "alice", "exp": int(time.time()) - 3600}, SECRET, algorithm="HS256"),
        jwt.encode({"exp": int(time.time()) + 60}, SECRET, algorithm="HS256"),  # no subject
        "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZSJ9.",  # alg=none, unsigned
        jwt.encode({"sub": "alice", "exp": int(time.time()) + 60}, SECRET),  # no iat
        make_token(SECRET, "alice", ttl_s=86_400 + 3600),  # longer than a day
        jwt.encode({"sub": "alice", "iat": 0, "exp": 253402300799}, SECRET),  # year 9999
        jwt.encode({"sub": "alice", "iat": int(time.time()) + 3600, "exp": 2**40}, SECRET),
    ],
)
def test_invalid_tokens_are_401(client: TestClient, token: str) -> None:
    response = client.get("/v1/users/alice/clusters", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401


def test_another_users_photos_are_403(client: TestClient) -> None:
    for path in ("clusters", "stats", "pairs", "gallery", "images/img-00000/similar"):
        assert client.get(f"/v1/users/alice/{path}", headers=auth("bob")).status_code == 403
    assert client.delete("/v1/users/alice/images/img-00000", headers=auth("bob")).status_code == 403


@pytest.mark.parametrize(
    "path",
    [
        "/v1/users/..%2F..%2Fetc/clusters",
        "/v1/users/%2E%2E/clusters",
        "/v1/users/.hidden/clusters",
        "/v1/users/" + "a" * 200 + "/clusters",
        "/v1/users/%C3%A9/clusters",
        "/v1/users/a%00b/clusters",
        "/v1/users/a%20b/clusters",
        "/v1/users/%EF%BD%81/clusters",
        "/v1/users/alice/images/..%2F..%2Fx/similar",
        "/v1/users/alice/images/.x/similar",
    ],
)
def test_path_tricks_are_4xx_and_touch_no_file(
    client: TestClient, store_root: Path, path: str
) -> None:
    before = sorted(str(p) for p in store_root.parent.rglob("*"))
    sub = path.split("/")[3]
    response = client.get(path, headers=auth(sub))
    assert 400 <= response.status_code < 500
    assert sorted(str(p) for p in store_root.parent.rglob("*")) == before


def test_a_user_without_photos_gets_empty_tiers(client: TestClient) -> None:
    body = client.get("/v1/users/carol/clusters", headers=auth("carol")).json()
    assert body["n_images"] == 0 and all(t["groups"] == [] for t in body["tiers"])
    stats = client.get("/v1/users/carol/stats", headers=auth("carol")).json()
    assert stats["n_images"] == 0


def test_similar(client: TestClient, filled_library: tuple[Library, list[str], np.ndarray]) -> None:
    _, ids, vectors = filled_library
    body = client.get(f"/v1/users/alice/images/{ids[0]}/similar?k=3", headers=auth("alice")).json()
    assert body["image_id"] == ids[0]
    order = np.argsort(-(vectors @ vectors[0]))[1:4]
    assert [n["image_id"] for n in body["neighbors"]] == [ids[i] for i in order]
    assert (
        client.get("/v1/users/alice/images/nope/similar", headers=auth("alice")).status_code == 404
    )
    assert (
        client.get("/v1/users/carol/images/nope/similar", headers=auth("carol")).status_code == 404
    )
    assert (
        client.get(
            f"/v1/users/alice/images/{ids[0]}/similar?k=0", headers=auth("alice")
        ).status_code
        == 422
    )


def test_pairs_are_paginated(client: TestClient) -> None:
    first = client.get("/v1/users/alice/pairs?min_score=0.6&limit=3", headers=auth("alice")).json()
    assert len(first["pairs"]) == 3 and first["next_offset"] == 3 and first["total"] > 3
    rest = client.get(
        "/v1/users/alice/pairs?min_score=0.6&limit=1000&offset=3", headers=auth("alice")
    ).json()
    assert rest["next_offset"] is None
    scores = [p["score"] for p in first["pairs"] + rest["pairs"]]
    assert scores == sorted(scores, reverse=True) and len(scores) == first["total"]
    bad = client.get("/v1/users/alice/pairs?min_score=0.9&max_score=0.5", headers=auth("alice"))
    assert bad.status_code == 422


def test_deleting_for_a_user_with_nothing_stored_creates_no_file(
    client: TestClient, filled_library: tuple[Library, list[str], np.ndarray]
) -> None:
    store = filled_library[0].store
    response = client.delete("/v1/users/dave/images/a.jpg", headers=auth("dave"))
    assert response.status_code in (200, 204, 404), response.text
    assert response.status_code == 204
    assert not store.paths("dave").lock.exists() and not store.paths("dave").catalog.exists()


def test_delete_is_idempotent(
    client: TestClient, filled_library: tuple[Library, list[str], np.ndarray]
) -> None:
    _, ids, _ = filled_library
    for _ in range(2):
        assert (
            client.delete(f"/v1/users/alice/images/{ids[0]}", headers=auth("alice")).status_code
            == 204
        )
    assert (
        client.get(f"/v1/users/alice/images/{ids[0]}/similar", headers=auth("alice")).status_code
        == 404
    )
    assert client.get("/v1/users/alice/stats", headers=auth("alice")).json()["n_images"] == 43


def test_stats(client: TestClient) -> None:
    stats = client.get("/v1/users/alice/stats", headers=auth("alice")).json()
    assert stats["n_images"] == 44 and stats["dim"] == 64 and stats["graph_fresh"]


@pytest.mark.parametrize(
    "url",
    [
        "/v1/users/alice/clusters?hihg=0.9",
        "/v1/users/alice/clusters?high=0.9&linkage=single&user=bob",
        "/v1/users/alice/images/img-00000/similar?limit=3",
        "/v1/users/alice/stats?verbose=1",
        "/v1/users/alice/gallery?hihg=0.9",
    ],
)
def test_a_misspelt_query_parameter_is_422_not_a_silent_default(
    client: TestClient, url: str
) -> None:
    error = error_of(client.get(url, headers=auth("alice")), 422, "unknown_query_parameter")
    assert "unknown query parameter" in error["message"] and "accepts:" in error["message"]


@pytest.mark.parametrize("kind", ["unknown", "repeated"])
def test_an_error_about_parameters_does_not_grow_with_the_query(
    client: TestClient, kind: str
) -> None:
    # issue 33: a 50 KB query of unknown names got a 338 KB error echoing every one
    if kind == "unknown":
        query = "&".join(f"{'x' * 500}{i}=1" for i in range(100))
    else:
        query = "&".join(["high=0.9"] * 2 + [f"low=0.{i}" for i in range(2, 4)])
    answer = client.get(f"/v1/users/alice/clusters?{query}", headers=auth("alice"))
    error = error_of(answer, 422, f"{kind}_query_parameter")
    assert len(answer.content) < 2_000
    if kind == "unknown":
        assert "and 95 more" in error["message"] and len(error["details"]) == 5


def test_declared_query_parameters_are_all_accepted(client: TestClient) -> None:
    token = make_token(SECRET, "alice")
    for url in (
        "/v1/users/alice/clusters?low=0.5&medium=0.6&high=0.9&linkage=single&min_size=2",
        "/v1/users/alice/images/img-00000/similar?k=3&min_score=0.1",
        "/v1/users/alice/pairs?min_score=0.5&max_score=1&limit=5&offset=0",
        f"/v1/users/alice/gallery?access_token={token}&high=0.9&linkage=complete",
    ):
        assert client.get(url, headers=auth("alice")).status_code == 200, url


def test_openapi_and_docs(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert "/v1/users/{user_id}/clusters" in spec["paths"]
    docs = client.get("/docs")
    assert docs.status_code == 200 and "/openapi.json" in docs.text
    # swagger-ui from the package's own files: nothing from a CDN, and it works offline
    assert "http" not in docs.text.replace("http-equiv", "")
    for asset in re.findall(r"""(?:src|href)=['"]([^'"]+)['"]""", docs.text):
        assert asset.startswith("/docs/assets/"), asset
        assert client.get(asset).status_code == 200, asset
    assert client.get("/redoc").status_code == 404  # redoc would load from a CDN
    # nor does the page send the schema's URL to swagger's validator, and its CSP says so
    assert '"validatorUrl": null' in docs.text
    csp = docs.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "connect-src 'self'" in csp and "http" not in csp


def test_a_trailing_slash_is_404_not_a_redirect_built_from_the_host_header(
    client: TestClient,
) -> None:
    answer = client.get(
        "/v1/users/alice/stats/",
        headers={**auth("alice"), "Host": "evil.example"},
        follow_redirects=False,
    )
    assert answer.status_code == 404 and "location" not in answer.headers


def test_gallery_shows_groups_as_thumbnails(client: TestClient) -> None:
    page = client.get("/v1/users/alice/gallery", headers=auth("alice"))
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "https://cdn.example/alice/img-00000.jpg" in page.text
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "default-src 'none'" in page.headers["content-security-policy"]
    token = make_token(SECRET, "alice")
    assert client.get(f"/v1/users/alice/gallery?access_token={token}").status_code == 200
    assert client.get("/v1/users/alice/gallery?access_token=bad").status_code == 401


def test_scores_and_thresholds_are_what_the_schema_says_they_are(client: TestClient) -> None:
    """A group's score is its weakest pair: at least the threshold with complete linkage
    (the schema said so for every linkage; average groups fall below it), and the gallery
    shows it as such."""
    schema = client.get("/openapi.json").json()["components"]["schemas"]
    assert "average linkage" in schema["TierGroups"]["properties"]["threshold"]["description"]
    assert "weakest pair" in schema["Group"]["properties"]["score"]["description"]
    for linkage in ("complete", "average"):
        body = client.get(f"/v1/users/alice/clusters?linkage={linkage}", headers=auth("alice"))
        for tier in body.json()["tiers"]:
            for group in tier["groups"]:
                if linkage == "complete":
                    assert group["score"] >= tier["threshold"] - 1e-6, (tier["name"], group)
    page = client.get("/v1/users/alice/gallery", headers=auth("alice")).text
    first = body.json()["tiers"][0]["groups"][0]  # average linkage, the gallery's default
    assert f"weakest pair {first['score']:.2f}" in page and "with average" in page


def test_the_gallery_nests_the_tiers_and_lists_the_unrelated_and_the_failed(
    client: TestClient, filled_library: tuple[Library, list[str], np.ndarray]
) -> None:
    library, ids, _ = filled_library
    now = time.time()
    failure = ImageError("invalid_image", "not a recognisable image file")
    library.record("alice", [ImageRecord("broken.jpg", "failed", None, failure, now, now)])
    body = client.get("/v1/users/alice/clusters", headers=auth("alice")).json()
    low = {i for group in body["tiers"][0]["groups"] for i in group["image_ids"]}
    unrelated = sorted(set(ids) - low)
    page = client.get("/v1/users/alice/gallery", headers=auth("alice")).text
    groups, rest = page.split('<section id="unrelated">')
    assert groups.index('class="group tier-low"') < groups.index('class="group tier-medium"')
    nested = [g for g in body["tiers"][1]["groups"] if g["parent_id"]]
    assert nested and groups.count('class="group tier-medium"') == len(body["tiers"][1]["groups"])
    listed, failed = rest.split('<section id="failed">')
    assert unrelated and all(f'title="{i}"' in listed for i in unrelated)
    assert not any(f'title="{i}"' in listed for i in low)
    assert 'title="broken.jpg">broken.jpg</span>: invalid_image' in failed


def test_the_app_never_starts_without_authentication(store_root: Path) -> None:
    with pytest.raises(AuthNotConfigured, match="no authentication configured"):
        create_app(Settings(store_root=store_root))
    with pytest.raises(AuthNotConfigured, match="at least 32"):
        create_app(Settings(store_root=store_root, auth_mode="jwt", jwt_secret="short"))
    with pytest.raises(AuthNotConfigured, match="PHOTOCLUSTER_JWT_ISSUER"):
        create_app(Settings(store_root=store_root, auth_mode="apigateway"))
    with pytest.raises(AuthNotConfigured, match="PHOTOCLUSTER_JWT_AUDIENCE"):
        create_app(Settings(store_root=store_root, auth_mode="apigateway", jwt_issuer="https://i"))
    assert create_app(GATEWAY.model_copy(update={"store_root": store_root})) is not None


GATEWAY = Settings(auth_mode="apigateway", jwt_issuer="https://i", jwt_audience="app")


def test_apigateway_mode_refuses_requests_without_an_authorizer(store_root: Path) -> None:
    client = TestClient(create_app(GATEWAY.model_copy(update={"store_root": store_root})))
    assert client.get("/v1/users/alice/clusters", headers=auth("alice")).status_code == 401


def test_a_token_valid_for_longer_than_a_day_is_refused_saying_so(client: TestClient) -> None:
    token = make_token(SECRET, "alice", ttl_s=365 * 86_400)
    answer = client.get("/v1/users/alice/stats", headers={"Authorization": f"Bearer {token}"})
    assert error_of(answer, 401, "unauthorized")["message"] == (
        "token valid for longer than the 86400 s this API accepts"
    )


def test_a_configured_audience_and_issuer_are_required(
    api_settings: Settings, filled_library: tuple[Library, list[str], np.ndarray]
) -> None:
    settings = api_settings.model_copy(
        update={"jwt_audience": "app-one, app-two", "jwt_issuer": "https://issuer.example"}
    )
    client = TestClient(create_app(settings, filled_library[0]))

    def status(**claims: str) -> int:
        token = make_token(SECRET, "alice", **claims)
        headers = {"Authorization": f"Bearer {token}"}
        return client.get("/v1/users/alice/stats", headers=headers).status_code

    assert status(aud="app-two", iss="https://issuer.example") == 200
    assert status(aud="app-three", iss="https://issuer.example") == 401
    assert status(aud="app-one", iss="https://other.example") == 401
    assert status(aud="app-one") == 401
    assert status(iss="https://issuer.example") == 401
