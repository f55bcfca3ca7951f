"""A model's calibrated tiers as files, and which tiers a request of that model gets.

``bake-model`` writes ``calibration.json`` beside the weights; the embedder reports it with
every answer; the writer keeps a copy per model on the store root (EFS), where the API,
which has no model files, reads it. The default tiers of a model resolve, in order: the
``PHOTOCLUSTER_LOW/MEDIUM/HIGH`` overrides > that persisted calibration > the built-in
``config.CALIBRATIONS`` row > ``config.UNCALIBRATED`` (a request's own thresholds come first
of all: :meth:`photocluster.library.Library.thresholds`).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import ConfigDict, Field, ValidationError, field_validator

from photocluster.config import (
    CALIBRATIONS,
    ENCODER_RUNTIMES,
    TIER_NAMES,
    Calibration,
    EncoderRuntime,
    Settings,
    calibration_for,
)
from photocluster.errors import InvalidCalibration
from photocluster.store.files import FileVersion, version_of, write_file_unlocked

#: Written by ``bake-model`` beside the weights.
CALIBRATION_FILE = "calibration.json"
#: The folder of the store root holding one calibration per model (beside the users'
#: two-hex-digit shard folders, which it cannot collide with).
STORE_FOLDER = "models"

CalibrationSource = Literal["baked", "built-in", "uncalibrated"]


class ModelCalibration(Calibration):
    """A :class:`Calibration` as bake-model writes it: for which model, on which runtime
    and generated sets. Strict: a hand-edited file with a typo is refused, not half-read."""

    model_config = ConfigDict(extra="forbid")

    version: Literal[1] = 1
    model_id: str = Field(min_length=1, max_length=256)
    runtime: EncoderRuntime
    seeds: list[int] = Field(min_length=1)
    index_floor: float = Field(gt=0, le=1)

    @field_validator("evidence")
    @classmethod
    def _evidence_said(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("evidence must say what the thresholds were measured on")
        return value


def calibration_json(calibration: ModelCalibration) -> bytes:
    """The file's bytes: fields in a fixed order, no timestamp, so one model baked twice gives the
    same file (reproducible builds, and the writer's "changed?" test is a byte compare)."""
    return (calibration.model_dump_json(indent=2) + "\n").encode()


def read_calibration(path: Path) -> ModelCalibration | None:
    """The calibration stored at ``path``; None when there is none (the model is then
    uncalibrated). InvalidCalibration, naming the file and the fault, when it is corrupt."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise InvalidCalibration(f"{path}: unreadable: {exc}") from exc
    return parse_calibration(raw, str(path))


def parse_calibration(raw: bytes | str, where: str) -> ModelCalibration:
    """A calibration from its JSON; InvalidCalibration naming ``where`` and the first fault."""
    try:
        return ModelCalibration.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field_name = ".".join(str(part) for part in first["loc"]) or "(document)"
        raise InvalidCalibration(
            f"{where}: {field_name}: {first['msg']} (rerun bake-model to recalibrate)"
        ) from None


def store_file_name(model_id: str) -> str:
    """A file name for ``model_id`` (ids hold slashes, local paths anything): its readable
    part, then a digest of the whole id so that two ids never share a file."""
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", model_id).strip("._")[:80] or "model"
    digest = hashlib.sha256(model_id.encode()).hexdigest()[:16]
    return f"{readable}-{digest}.json"


@dataclass
class StoredCalibrations:
    """The per-model calibrations on the store root: saved by the writer, read by every
    reader (each read costs one stat; the file is parsed again only when it changed)."""

    root: Path
    fsync: bool = True
    _seen: dict[Path, tuple[FileVersion, ModelCalibration | None]] = field(
        default_factory=dict, repr=False
    )

    def path(self, model_id: str) -> Path:
        return self.root / STORE_FOLDER / store_file_name(model_id)

    def get(self, model_id: str) -> ModelCalibration | None:
        """The persisted calibration of ``model_id``, or None (InvalidCalibration if the
        file is corrupt or names another model)."""
        path = self.path(model_id)
        key = version_of(path)
        if key is None:
            return None
        seen = self._seen.get(path)
        if seen is not None and seen[0] == key:
            return seen[1]
        calibration = read_calibration(path)
        if calibration is not None and calibration.model_id != model_id:
            raise InvalidCalibration(
                f"{path}: holds the calibration of {calibration.model_id!r}, not {model_id!r}"
            )
        self._seen[path] = (key, calibration)
        return calibration

    def version(self) -> int | None:
        """What changes whenever any model's calibration is saved (a rename in the folder
        changes its mtime): answers that used default tiers are stale after it."""
        try:
            return (self.root / STORE_FOLDER).stat().st_mtime_ns
        except FileNotFoundError:
            return None

    def served_by(self, model_id: str) -> EncoderRuntime | None:
        """The runtime that embedded ``model_id``'s latest photos (as the embedder said), or
        None before the first (or from an embedder that did not say)."""
        try:
            runtime = self._served_path(model_id).read_text().strip()
        except OSError:
            return None
        return runtime if runtime in ENCODER_RUNTIMES else None

    def note_served(self, model_id: str, runtime: EncoderRuntime) -> bool:
        """Record the runtime the embedder served ``model_id`` with; only when it changed
        (True then): every upsert calls this, and when nothing changed it costs one read."""
        if self.served_by(model_id) == runtime:
            return False
        path = self._served_path(model_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_file_unlocked(path, runtime.encode(), fsync=self.fsync)
        return True

    def _served_path(self, model_id: str) -> Path:
        return self.path(model_id).with_suffix(".runtime")

    def save(self, calibration: ModelCalibration) -> bool:
        """Persist ``calibration`` atomically; only when it changed (True then). Every
        upsert calls this: when nothing changed it costs one stat."""
        try:
            if self.get(calibration.model_id) == calibration:
                return False
        except InvalidCalibration:
            pass  # a damaged copy is replaced by the one the embedder vouches for
        path = self.path(calibration.model_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_file_unlocked(path, calibration_json(calibration), fsync=self.fsync)
        return True


@dataclass(frozen=True)
class TierDefaults:
    """The tiers a request of ``model`` gets when it names none, and where they come from."""

    model: str
    #: baked: the calibration bake-model wrote with the weights (persisted by the writer);
    #: built-in: the row of config.CALIBRATIONS; uncalibrated: the design's starting values.
    source: CalibrationSource
    thresholds: dict[str, float]
    #: The tiers set by PHOTOCLUSTER_LOW/MEDIUM/HIGH instead of the calibration.
    overridden: list[str]
    index_floor: float
    evidence: str
    runtime: EncoderRuntime | None = None
    seeds: list[int] | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "model": self.model,
            "source": self.source,
            "thresholds": self.thresholds,
            "overridden": self.overridden,
            "index_floor": self.index_floor,
            "evidence": self.evidence,
            "runtime": self.runtime,
            "seeds": self.seeds,
        }


def tier_defaults(settings: Settings, model: str, stored: ModelCalibration | None) -> TierDefaults:
    """The default tiers of ``model`` given its persisted calibration (None: none)."""
    calibration = stored or calibration_for(model)
    source: CalibrationSource = (
        "baked" if stored else "built-in" if model in CALIBRATIONS else "uncalibrated"
    )
    return TierDefaults(
        model=model,
        source=source,
        thresholds=settings.thresholds_for(model, calibration),
        overridden=[name for name in TIER_NAMES if getattr(settings, name) is not None],
        index_floor=settings.floor_for(model, calibration),
        evidence=calibration.evidence,
        runtime=stored.runtime if stored else None,
        seeds=list(stored.seeds) if stored else None,
    )
