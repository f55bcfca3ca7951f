"""Decisions that stick: "not similar" through the API, and what it changes (clusters,
pairs, similar), across restarts, compaction, reindexing, re-uploads and deletions."""

from __future__ import annotations

import itertools
import json
import time

import numpy as np
from fastapi.testclient import TestClient

from photocluster.api.main import create_app
from photocluster.config import Settings
from photocluster.library import Library
from photocluster.store.records import ImageError, ImageRecord
from tests.helpers.api import auth, error_of, said

H = auth("alice")
Filled = tuple[Library, list[str], np.ndarray]


def mark(client: TestClient, ids: list[str], undo: bool = False) -> dict[str, int]:
    answer = client.request(
        "DELETE" if undo else "PUT",
        "/v1/users/alice/decisions/not-similar",
        json={"image_ids": ids},
        headers=H,
    )
    assert answer.status_code == 200, answer.text
    body: dict[str, int] = answer.json()
    return body


def medium_groups(client: TestClient) -> list[list[str]]:
    tiers = client.get("/v1/users/alice/clusters?tier=medium&limit=1000", headers=H).json()["tiers"]
    return [group["image_ids"] for group in tiers[0]["groups"]]


def all_groups(client: TestClient, linkage: str = "complete") -> list[list[str]]:
    body = client.get(f"/v1/users/alice/clusters?limit=1000&linkage={linkage}", headers=H).json()
    return [g["image_ids"] for tier in body["tiers"] for g in tier["groups"]]


def test_marking_two_photos_of_a_group_splits_them_and_keeps_the_rest_with_one(
    client: TestClient,
) -> None:
    group = next(g for g in medium_groups(client) if len(g) == 4)
    a, b, *rest = group
    assert mark(client, [a, b]) == {"changed": 1, "total": 1}
    for linkage in ("complete", "average", "single"):
        for found in all_groups(client, linkage):
            assert not {a, b} <= set(found), (linkage, found)
    (holder,) = [g for g in medium_groups(client) if set(rest) <= set(g)]
    assert len({a, b} & set(holder)) == 1  # a constraint, not a veto on the group

    pairs = client.get("/v1/users/alice/pairs?min_score=0&limit=1000", headers=H).json()
    assert {(p["a"], p["b"]) for p in pairs["pairs"]}.isdisjoint({(a, b), (b, a)})
    neighbours = client.get(f"/v1/users/alice/images/{a}/similar?k=5", headers=H).json()
    flags = {n["image_id"]: n["not_similar"] for n in neighbours["neighbors"]}
    assert flags[b] is True and not any(flags[i] for i in rest if i in flags)

    listed = client.get("/v1/users/alice/decisions", headers=H).json()
    assert listed["total"] == 1 and [(p["a"], p["b"]) for p in listed["not_similar"]] == [
        tuple(sorted((a, b)))
    ]
    assert mark(client, [a, b], undo=True) == {"changed": 1, "total": 0}
    assert group in medium_groups(client)


def test_a_decision_about_many_photos_marks_every_pair_and_is_idempotent(
    client: TestClient, filled_library: Filled
) -> None:
    ids = filled_library[1][:5]
    assert mark(client, ids) == {"changed": 10, "total": 10}
    assert mark(client, list(reversed(ids))) == {"changed": 0, "total": 10}
    for found in all_groups(client):
        assert len(set(found) & set(ids)) <= 1
    assert mark(client, ids[:2], undo=True) == {"changed": 1, "total": 9}
    assert mark(client, ids[:2], undo=True) == {"changed": 0, "total": 9}
    pages, cursor = [], None
    while True:
        query = "limit=4" + (f"&cursor={cursor}" if cursor else "")
        page = client.get(f"/v1/users/alice/decisions?{query}", headers=H).json()
        assert page["total"] == 9
        pages += [(p["a"], p["b"]) for p in page["not_similar"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(pages) == sorted(itertools.combinations(sorted(ids), 2))[1:]


def test_decisions_survive_restart_compaction_reindex_and_reupload(
    api_settings: Settings, client: TestClient, filled_library: Filled
) -> None:
    library, ids, vectors = filled_library
    group = next(g for g in medium_groups(client) if len(g) == 4)
    mark(client, group[:2])
    library.store.compact("alice")
    library.reindex("alice")
    row = ids.index(group[0])
    library.write("alice", "test-model", [group[0]], vectors[row : row + 1] * 0.999)
    restarted = TestClient(create_app(api_settings, Library.from_settings(api_settings)))
    for found in all_groups(restarted):
        assert not set(group[:2]) <= set(found)
    assert restarted.get("/v1/users/alice/decisions", headers=H).json()["total"] == 1


def test_deleting_a_photo_drops_its_decisions(client: TestClient, filled_library: Filled) -> None:
    a, b, c = filled_library[1][:3]
    mark(client, [a, b, c])
    assert client.delete(f"/v1/users/alice/images/{a}", headers=H).status_code == 204
    listed = client.get("/v1/users/alice/decisions", headers=H).json()
    assert [(p["a"], p["b"]) for p in listed["not_similar"]] == [tuple(sorted((b, c)))]


def test_bad_decisions_are_refused_saying_why_and_change_nothing(
    client: TestClient, filled_library: Filled
) -> None:
    ids = filled_library[1]
    url = "/v1/users/alice/decisions/not-similar"
    cases = [
        ({"image_ids": [ids[0]]}, 422, "invalid_request", "at least 2"),
        ({"image_ids": [ids[0], ids[0]]}, 422, "invalid_decision", "2 to 100 distinct"),
        ({"image_ids": [*ids[:2], "../etc/passwd"]}, 422, "invalid_request", "pattern"),
        ({"image_ids": [f"x{i}.jpg" for i in range(101)]}, 422, "invalid_request", "at most 100"),
        ({"image_ids": ids[:2], "also": 1}, 422, "invalid_request", "Extra inputs"),
        ({"ids": ids[:2]}, 422, "invalid_request", "image_ids"),
        ({"image_ids": [ids[0], "nope.jpg"]}, 404, "unknown_image", "nope.jpg"),
    ]
    for body, status, code, says in cases:
        answer = client.put(url, json=body, headers=H)
        assert says in said(error_of(answer, status, code)), (body, answer.text)
    unknown = error_of(client.put(url, json=cases[-1][0], headers=H), 404)
    assert unknown["details"] == [{"type": "unknown_image", "image_id": "nope.jpg"}]
    garbled = client.put(
        url, content=b"{not json", headers=H | {"content-type": "application/json"}
    )
    error_of(garbled, 400, "malformed_json")
    deep = b'{"image_ids":' + b"[" * 100_000 + b"]" * 100_000 + b"}"  # past the parser's depth
    nested = client.put(url, content=deep, headers=H | {"content-type": "application/json"})
    error_of(nested, 400, "malformed_json")
    assert client.get("/v1/users/alice/decisions", headers=H).json()["total"] == 0


def test_decisions_are_the_callers_own(client: TestClient, filled_library: Filled) -> None:
    ids = filled_library[1][:2]
    url = "/v1/users/alice/decisions/not-similar"
    error_of(client.put(url, json={"image_ids": ids}, headers=auth("bob")), 403, "forbidden")
    error_of(client.put(url, json={"image_ids": ids}), 401, "unauthorized")
    error_of(client.get("/v1/users/alice/decisions", headers=auth("bob")), 403, "forbidden")


def test_the_decisions_file_is_plain_json_beside_the_store(
    client: TestClient, filled_library: Filled
) -> None:
    ids = filled_library[1][:2]
    mark(client, ids)
    path = filled_library[0].store.paths("alice").decisions
    document = json.loads(path.read_text())
    assert document["format"] == 1 and [row[:2] for row in document["not_similar"]] == [ids]
    assert not list(path.parent.glob(".*.tmp"))


def test_decisions_are_only_between_photos_the_user_has_embedded(
    client: TestClient, filled_library: tuple[Library, list[str], np.ndarray]
) -> None:
    """Tickets asked for photos never uploaded (pending) or uploads that failed are in no
    group: a decision about them is refused, so 100 tickets cannot buy 4,950 pairs."""
    library, ids, _ = filled_library
    now = time.time()
    library.record(
        "alice",
        [
            ImageRecord("p.jpg", "pending", "uploads/alice/p.jpg", None, now, now, now + 600),
            ImageRecord(
                "f.jpg", "failed", "uploads/alice/f.jpg", ImageError("invalid_image", "x"), now, now
            ),
        ],
    )
    url = "/v1/users/alice/decisions/not-similar"
    refused = error_of(
        client.put(url, json={"image_ids": ["p.jpg", "f.jpg", ids[0]]}, headers=H), 404
    )
    assert refused["details"] == [
        {"type": "unknown_image", "image_id": "f.jpg"},
        {"type": "unknown_image", "image_id": "p.jpg"},
    ]
    assert client.get("/v1/users/alice/decisions", headers=H).json()["total"] == 0
