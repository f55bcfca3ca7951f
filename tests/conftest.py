"""Fixtures shared by every test folder."""

from __future__ import annotations

import os

# Tests never reach a model hub; set before anything imports transformers.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from collections.abc import Iterator
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

    from photocluster.embedder.base import MODEL_META_FILE

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


@pytest.fixture(scope="session")
def baked_vit(tmp_path_factory: pytest.TempPathFactory, tiny_vit_dir: Path) -> Path:
    """The tiny ViT as bake-model writes it: weights plus ONNX fp32 and int8."""
    from photocluster.embedder.loader import bake_model

    folder = tmp_path_factory.mktemp("baked-vit")
    bake_model(str(tiny_vit_dir), folder)
    return folder


@pytest.fixture(scope="session")
def baked_effnet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """EfficientNet-Lite0 as bake-model writes it (the int8 export takes ~20 s)."""
    from photocluster.config import OFFLINE_MODEL
    from photocluster.embedder.loader import bake_model

    folder = tmp_path_factory.mktemp("baked-effnet")
    bake_model(OFFLINE_MODEL, folder)
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


@pytest.fixture(scope="session")
def moto_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """moto in server mode on a free loopback port, for the whole session."""
    from tests.helpers.aws import start_moto

    server, url = start_moto(tmp_path_factory.mktemp("moto") / "moto.log")
    try:
        yield url
    finally:
        server.stop()


@pytest.fixture
def aws(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A clean emulated AWS account, reached by boto3 through AWS_ENDPOINT_URL."""
    from tests.helpers.aws import aws_env, reset_moto

    reset_moto(moto_url)
    for key, value in aws_env(moto_url).items():
        monkeypatch.setenv(key, value)
    return moto_url


@pytest.fixture(scope="session")
def tiny_embedder(tmp_path_factory: pytest.TempPathFactory, tiny_vit_dir: Path) -> Iterator[str]:
    """The real inference server (services/embedder/serve) with the tiny ViT."""
    import httpx

    from tests.helpers.procs import REPO, Server, free_port, python_argv

    port = free_port()
    folder = tmp_path_factory.mktemp("embedder")
    server = Server(
        python_argv(str(REPO / "services" / "embedder" / "serve")),
        {
            "PHOTOCLUSTER_MODEL": str(tiny_vit_dir),
            "PHOTOCLUSTER_MODEL_DIR": str(folder / "no-sagemaker-artifacts"),
            "PHOTOCLUSTER_EMBEDDER_PORT": str(port),
            "PHOTOCLUSTER_EMBED_BATCH_MAX": "8",
            "PHOTOCLUSTER_ENCODER_THREADS": "1",
        },
        folder / "embedder.log",
    )
    url = f"http://127.0.0.1:{port}"
    try:
        server.wait_until(lambda: httpx.get(f"{url}/ping").status_code == 200)
        yield url
    finally:
        server.stop()
