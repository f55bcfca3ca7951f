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

TINY_VIT_ID = "test/tiny-vit"


@pytest.fixture(scope="session")
def tiny_vit_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random-weight ViT saved with save_pretrained, loaded like a real checkpoint.

    Random weights say nothing about similarity quality: tests using it check mechanics.
    """
    import json

    import torch
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    from photocluster.encoder import MODEL_META_FILE

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny-vit")
    config = ViTConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        image_size=32,
        patch_size=8,
    )
    ViTModel(config).save_pretrained(folder)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    (folder / MODEL_META_FILE).write_text(json.dumps({"model_id": TINY_VIT_ID}))
    return folder


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
