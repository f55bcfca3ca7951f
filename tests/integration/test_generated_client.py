"""A Python client generated from the API's OpenAPI document, calling the API on loopback.

openapi-python-client (make tools) writes the client; uvicorn serves the app in a thread.
"""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from fastapi import FastAPI

from photocluster.api.auth import make_token
from photocluster.api.main import create_app
from photocluster.config import Settings
from photocluster.library import Library
from tests.helpers.api import served_on_loopback
from tests.helpers.data import grouped_vectors
from tests.helpers.tools import generate_client

SECRET = "client-test-secret-of-at-least-32-chars!"
PACKAGE = "photocluster_client"


@pytest.fixture(scope="module")
def alice_groups(tmp_path_factory: pytest.TempPathFactory) -> tuple[Library, list[set[str]]]:
    """A library where alice has 6 groups of 4 near-duplicates among 44 photos; bob has 5."""
    settings = Settings(
        store_root=tmp_path_factory.mktemp("store"),
        model="test-model",
        store_fsync=False,
        jwt_secret=SECRET,
    )
    library = Library.from_settings(settings)
    ids, vectors, truth = grouped_vectors(np.random.default_rng(5), 6, 4, 20, dim=64, noise=0.4)
    library.write("alice", "test-model", ids, vectors)
    library.write("bob", "test-model", ids[:5], vectors[:5])
    groups = [{i for i, g in zip(ids, truth, strict=True) if g == group} for group in range(6)]
    return library, groups


@pytest.fixture(scope="module")
def app(alice_groups: tuple[Library, list[set[str]]]) -> FastAPI:
    library = alice_groups[0]
    return create_app(library.settings, library)


@pytest.fixture(scope="module")
def base_url(app: FastAPI) -> Iterator[str]:
    with served_on_loopback(app) as url:
        yield url


@pytest.fixture(scope="module")
def generated(app: FastAPI, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    return generate_client(app.openapi(), tmp_path_factory.mktemp("client"), PACKAGE)


@pytest.fixture(scope="module")
def client_package(generated: tuple[Path, str]) -> Iterator[ModuleType]:
    parent = str(generated[0].parent)
    sys.path.insert(0, parent)
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(parent)
        for name in [n for n in sys.modules if n == PACKAGE or n.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]


def operation(package: ModuleType, name: str) -> Any:
    """The generated module of one operation, whichever tag folder it was filed under."""
    package_dir = Path(package.__file__ or "").parent
    found = sorted(package_dir.glob(f"api/*/{name}.py"))
    assert len(found) == 1, f"no single api/*/{name}.py: give the route an operationId ({found})"
    return importlib.import_module(f"{PACKAGE}.api.{found[0].parent.name}.{name}")


def test_the_generator_prints_no_warnings(generated: tuple[Path, str]) -> None:
    package_dir, output = generated
    assert "Warning" not in output, output
    assert (package_dir / "client.py").exists() and (package_dir / "api").is_dir()


def test_routes_through_the_generated_client_typed_end_to_end(
    client_package: ModuleType, base_url: str, alice_groups: tuple[Library, list[set[str]]]
) -> None:
    client = client_package.AuthenticatedClient(
        base_url=base_url, token=make_token(SECRET, "alice"), raise_on_unexpected_status=True
    )
    models = importlib.import_module(f"{PACKAGE}.models")

    stats = operation(client_package, "get_stats").sync_detailed("alice", client=client)
    assert stats.status_code == 200, stats.content
    assert isinstance(stats.parsed, models.StatsResponse)
    assert (stats.parsed.n_images, stats.parsed.model) == (44, "test-model")

    images = operation(client_package, "list_images").sync_detailed("alice", client=client)
    assert images.status_code == 200, images.content
    assert isinstance(images.parsed, models.ImagesResponse)
    listed = json.loads(images.content)["images"]
    assert len(listed) == 44 and {image["status"] for image in listed} == {"ready"}

    clusters = operation(client_package, "list_clusters").sync_detailed("alice", client=client)
    assert clusters.status_code == 200, clusters.content
    parsed = clusters.parsed
    assert isinstance(parsed, models.ClustersResponse) and parsed.n_images == 44
    loosest = [set(group.image_ids) for group in parsed.tiers[0].groups]
    for near_duplicates in alice_groups[1]:
        assert any(near_duplicates <= found for found in loosest), (near_duplicates, loosest)

    a, b, *_ = sorted(next(iter(alice_groups[1])))
    mark = operation(client_package, "mark_not_similar").sync_detailed(
        "alice", client=client, body=models.NotSimilarRequest(image_ids=[a, b])
    )
    assert mark.status_code == 200 and (mark.parsed.changed, mark.parsed.total) == (1, 1)
    after = operation(client_package, "list_clusters").sync_detailed("alice", client=client)
    assert all(not {a, b} <= set(g.image_ids) for t in after.parsed.tiers for g in t.groups)


def test_the_generated_client_without_a_token_gets_401(
    client_package: ModuleType, base_url: str
) -> None:
    client = client_package.Client(base_url=base_url)
    stats = operation(client_package, "get_stats").sync_detailed("alice", client=client)
    assert stats.status_code == 401, stats.content
    models = importlib.import_module(f"{PACKAGE}.models")
    assert isinstance(stats.parsed, models.GetStatsError401)
    assert stats.parsed.error.code == "unauthorized"
