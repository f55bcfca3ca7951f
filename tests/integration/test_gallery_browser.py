"""The gallery page in headless Chromium: real server, presigned thumbnails from S3 (moto)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import boto3
import httpx
import numpy as np
import pytest
from PIL import Image

from photocluster.api.auth import make_token
from photocluster.config import Settings
from photocluster.library import Library
from tests.helpers.data import grouped_vectors
from tests.helpers.images import jpeg
from tests.helpers.procs import Server, free_port, python_argv

SECRET = "browser-test-secret-at-least-32-characters"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(
    CHROMIUM is None,
    reason="chromium is not installed (make browser installs "
    "Debian's chromium; apt was unavailable)",
)
def test_gallery_renders_thumbnails_in_chromium(aws: str, tmp_path: Path) -> None:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="gallery")
    stems, vectors, _ = grouped_vectors(np.random.default_rng(4), 4, 4, 4, dim=64, noise=0.3)
    ids = [f"{stem}.jpg" for stem in stems]  # an image's id is its file's name
    for index, image_id in enumerate(ids):
        s3.put_object(
            Bucket="gallery", Key=f"uploads/alice/{image_id}", Body=jpeg(index, size=(160, 120))
        )
    store = tmp_path / "store"
    Library.from_settings(Settings(store_root=store, model="m")).write("alice", "m", ids, vectors)

    port = free_port()
    server = Server(
        python_argv("-m", "photocluster.cli", "api-serve", "--port", str(port)),
        {
            "PHOTOCLUSTER_STORE_ROOT": str(store),
            "PHOTOCLUSTER_JWT_SECRET": SECRET,
            "PHOTOCLUSTER_BUCKET": "gallery",
        },
        tmp_path / "api.log",
    )
    try:
        url = f"http://127.0.0.1:{port}"
        server.wait_until(lambda: httpx.get(f"{url}/health").status_code == 200, timeout=60)
        page = f"{url}/v1/users/alice/gallery?access_token={make_token(SECRET, 'alice')}"
        assert "X-Amz-Signature" in httpx.get(page).text  # presigned thumbnail URLs
        shot = tmp_path / "gallery.png"
        assert CHROMIUM is not None
        subprocess.run(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--disable-quic",
                f"--user-data-dir={tmp_path / 'chrome'}",
                "--hide-scrollbars",
                "--window-size=1280,900",
                "--virtual-time-budget=5000",
                f"--screenshot={shot}",
                page,
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
    finally:
        server.stop()
    pixels = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert pixels.std() > 20  # not a blank page
    saturated = (pixels.max(axis=2) - pixels.min(axis=2)) > 80
    assert saturated.mean() > 0.02  # colourful thumbnails loaded, not only grey text
