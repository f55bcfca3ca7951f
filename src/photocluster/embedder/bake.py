"""bake-model's last step: the baked model's tiers calibrated and written beside its weights.

Apart from :mod:`~photocluster.embedder.loader` because it runs the evaluation harness,
which itself loads encoders through the loader.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

from photocluster.calibrations import CALIBRATION_FILE, ModelCalibration, calibration_json
from photocluster.config import OFFLINE_LAYOUT_WEIGHTS
from photocluster.embedder.base import model_id_of
from photocluster.embedder.loader import load_encoder
from photocluster.quality.sweep import calibrate_model


def calibrate_baked(
    dest: Path,
    seeds: Sequence[int] = (0, 1, 2),
    progress: bool = False,
    subjects: int | None = None,
) -> ModelCalibration:
    """Calibrate the tiers of the model baked in ``dest`` (torch, on the generated sets of
    ``seeds``) and write them beside its weights as ``calibration.json``."""
    model_id = model_id_of(dest)
    # EfficientNet-Lite0's folder holds no weights of its own: it loads by name.
    source = model_id if model_id in OFFLINE_LAYOUT_WEIGHTS else str(dest)
    load = functools.cache(functools.partial(load_encoder, source, runtime="torch"))
    measured = calibrate_model(load, seeds=tuple(seeds), progress=progress, subjects=subjects)
    calibration = ModelCalibration(
        **measured.model_dump(), model_id=model_id, runtime="torch", seeds=list(seeds)
    )
    (dest / CALIBRATION_FILE).write_bytes(calibration_json(calibration))
    return calibration
