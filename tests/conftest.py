"""Fixtures shared by every test folder."""

from __future__ import annotations

import os

# Tests never reach a model hub; set before anything imports transformers.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from pathlib import Path

import numpy as np
import pytest

from photocluster.config import Settings
from photocluster.library import Library
from photocluster.store import Store


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture
def store_root(tmp_path: Path) -> Path:
    root = tmp_path / "store"
    root.mkdir()
    return root


@pytest.fixture
def settings(store_root: Path) -> Settings:
    return Settings(store_root=store_root, model="test-model", store_fsync=False)


@pytest.fixture
def store(settings: Settings) -> Store:
    return Library.from_settings(settings).store


@pytest.fixture
def library(settings: Settings) -> Library:
    return Library.from_settings(settings)
