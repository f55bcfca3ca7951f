"""The model the local stack serves: the offline encoder baked as the SageMaker image bakes
its model (ONNX exports, the fidelity gate's runtime.json), once per machine and version.

The embedder image serves what bake-model chose; so do ``make up``, ``make demo`` and the
pipeline benchmark, from this folder, so the cost and the vectors measured locally are
those of production's runtime. The bake takes about 30 s; it is kept in
``PHOTOCLUSTER_MODEL_CACHE`` (default ``~/.cache/photocluster/models``), under a key of
everything that shapes it (this package's version, the export and gate code, torch and
onnxruntime), so a change to any of them bakes again.
"""

from __future__ import annotations

import hashlib
import shutil
from importlib import metadata
from pathlib import Path

from photocluster.config import OFFLINE_MODEL, Settings
from photocluster.embedder.fidelity import RUNTIME_FILE
from photocluster.store.lock import FileLock

#: Modules whose code shapes the baked folder.
_SHAPING = ("export.py", "fidelity.py", "efficientnet.py", "onnx_encoder.py", "loader.py")


def bake_key(model: str = OFFLINE_MODEL) -> str:
    """A digest of what the bake depends on (see the module docstring)."""
    digest = hashlib.sha256(model.encode())
    embedder = Path(__file__).resolve().parent.parent / "embedder"
    for name in _SHAPING:
        digest.update((embedder / name).read_bytes())
    for package in ("photocluster", "torch", "onnxruntime", "onnx"):
        try:
            digest.update(f"{package}={metadata.version(package)}".encode())
        except metadata.PackageNotFoundError:
            digest.update(f"{package}=none".encode())
    return digest.hexdigest()[:16]


def baked_offline_model(cache: Path | None = None, model: str = OFFLINE_MODEL) -> Path:
    """The folder of ``model`` baked for serving, baking it first when the cache lacks it
    (one process bakes while others wait on the lock; a bake that died is done again)."""
    from photocluster.embedder.fidelity import bake_served

    root = cache or Settings().model_cache
    root.mkdir(parents=True, exist_ok=True)
    folder = root / f"{model}-{bake_key(model)}"
    with FileLock(root / ".bake.lock", exclusive=True):
        if not (folder / RUNTIME_FILE).is_file():  # written last: a bake that died left none
            shutil.rmtree(folder, ignore_errors=True)
            bake_served(model, folder)
    return folder
