"""Fixtures of the API's integration tests: a library with two users, the app over it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from photocluster.api.main import create_app
from photocluster.config import Settings
from photocluster.library import Library
from tests.helpers.api import SECRET
from tests.helpers.data import grouped_vectors


@pytest.fixture
def api_settings(store_root: Path) -> Settings:
    return Settings(
        store_root=store_root,
        model="test-model",
        store_fsync=False,
        jwt_secret=SECRET,
        thumbnail_url_template="https://cdn.example/{user_id}/{image_id}.jpg",
    )


@pytest.fixture
def filled_library(api_settings: Settings) -> tuple[Library, list[str], np.ndarray]:
    library = Library.from_settings(api_settings)
    ids, vectors, _ = grouped_vectors(np.random.default_rng(5), 6, 4, 20, dim=64, noise=0.4)
    library.write("alice", "test-model", ids, vectors)
    library.write("bob", "test-model", ids[:5], vectors[:5])
    return library, ids, vectors


@pytest.fixture
def client(
    api_settings: Settings, filled_library: tuple[Library, list[str], np.ndarray]
) -> TestClient:
    return TestClient(create_app(api_settings, filled_library[0]))
