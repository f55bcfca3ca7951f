"""The one tier resolver: which thresholds a request of a model gets, and a model's
calibration as a file.

Vocabulary (code and README alike): a model's *calibration* is its tier file
(``calibration.json``: the three thresholds, the graph's floor and the evidence for them);
*bake* (``photocluster bake-model``) saves a model's weights and writes its calibration;
the *sweep* (:mod:`photocluster.quality.sweep`, ``make calibrate``) searches the thresholds
a calibration records, on the generated sets.

``bake-model`` writes the calibration beside the weights; the embedder reports it with
every answer; the writer keeps a copy per model on the store root (EFS), where the API,
which has no model files, reads it. :func:`resolve_tiers` is the only place that decides
tiers; the routes, the writer's graph, the CLI and the quality tools all call it. In order:
a request's own thresholds > the ``PHOTOCLUSTER_LOW/MEDIUM/HIGH`` overrides > the model's
persisted calibration > its built-in row (:data:`BUILT_IN`) > :data:`UNCALIBRATED`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from photocluster.config import (
    ENCODER_RUNTIMES,
    OFFLINE_MODEL,
    TIER_NAMES,
    EncoderRuntime,
    Settings,
    TierThresholds,
    check_thresholds,
)
from photocluster.errors import InvalidCalibration, InvalidThresholds
from photocluster.store.files import FileVersion, version_of, write_file_unlocked

#: Written by ``bake-model`` beside the weights.
CALIBRATION_FILE = "calibration.json"
#: The folder of the store root holding one calibration per model (beside the users'
#: two-hex-digit shard folders, which it cannot collide with).
STORE_FOLDER = "models"

CalibrationSource = Literal["baked", "built-in", "uncalibrated"]


class Calibration(BaseModel):
    """Default tiers of one encoder, and the figures that justify them."""

    thresholds: TierThresholds
    #: Lowest similarity kept in the write-time neighbour graph; queries below it are
    #: answered by on-demand computation (exact, slower).
    index_floor: float
    evidence: str


#: Per-encoder calibrations for models used without a baked one, from the sweep (`make
#: calibrate`, README, Quality) of the graded sets of the calibration sources, seeds 0-2
#: pooled, at the default linkage; `make eval` checks them on held-out sources and seeds.
BUILT_IN: dict[str, Calibration] = {
    OFFLINE_MODEL: Calibration(
        thresholds=TierThresholds(low=0.38, medium=0.46, high=0.56),
        index_floor=0.33,
        evidence=(
            "average linkage, calibration sources, seeds 0-2 pooled (1599 images): "
            "low 0.38 P=0.878 R=0.675; medium 0.46 P=0.974 R=0.628; high 0.56 P=0.980 "
            "R=0.673. Held-out evaluation sources, seeds 3 and 4: high P=1.000/0.984 "
            "R=0.721/0.663"
        ),
    ),
    "efficientnet-lite0": Calibration(
        thresholds=TierThresholds(low=0.70, medium=0.85, high=0.93),
        index_floor=0.65,
        evidence=(
            "graded sets of the calibration sources, seeds 0, 1, 2, average linkage, pooled: "
            "low 0.70 P=0.874 R=0.624; medium 0.85 P=0.968 R=0.388; high 0.93 P=0.995 "
            "R=0.284. Held-out sources, seeds 3 and 4: high P=1.000/0.923 R=0.267/0.246"
        ),
    ),
}
#: For an encoder without a calibration row (e.g. the production ViT, whose weights cannot
#: be downloaded on the machines that ran the evaluation): the design's starting values.
UNCALIBRATED = Calibration(
    thresholds=TierThresholds(low=0.60, medium=0.75, high=0.90),
    index_floor=0.5,
    evidence="uncalibrated design defaults (bake the model with `photocluster bake-model`)",
)


def built_in(model: str) -> Calibration:
    """The built-in calibration of ``model``, or the uncalibrated defaults."""
    return BUILT_IN.get(model, UNCALIBRATED)


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
    #: built-in: the model's row of BUILT_IN; uncalibrated: the design's starting values.
    source: CalibrationSource
    thresholds: dict[str, float]
    #: The tiers set by PHOTOCLUSTER_LOW/MEDIUM/HIGH instead of the calibration.
    overridden: list[str]
    #: Lowest similarity the write-time neighbour graph keeps (PHOTOCLUSTER_INDEX_FLOOR or
    #: the calibration's, never above the lowest tier).
    index_floor: float
    evidence: str
    runtime: EncoderRuntime | None = None
    seeds: list[int] | None = None

    def asked(self, requested: Mapping[str, float | None] | None = None) -> dict[str, float]:
        """The tiers of a request: these defaults, with the values it gives instead."""
        tiers = dict(self.thresholds)
        for name, value in (requested or {}).items():
            if name not in tiers:
                raise InvalidThresholds(f"unknown tier {name!r}; tiers are {list(tiers)}")
            if value is not None:
                tiers[name] = value
        return check_thresholds(tiers)

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


def resolve_tiers(settings: Settings, model: str, stored: ModelCalibration | None) -> TierDefaults:
    """The default tiers of ``model`` and its graph's floor, given its persisted calibration
    (None: none): the overrides in ``settings`` > ``stored`` > its built-in row > none."""
    calibration = stored or built_in(model)
    source: CalibrationSource = (
        "baked" if stored else "built-in" if model in BUILT_IN else "uncalibrated"
    )
    thresholds = calibration.thresholds.as_dict()
    overridden: list[str] = [name for name in TIER_NAMES if getattr(settings, name) is not None]
    for name in overridden:
        thresholds[name] = getattr(settings, name)
    check_thresholds(thresholds)
    floor = settings.index_floor if settings.index_floor is not None else calibration.index_floor
    return TierDefaults(
        model=model,
        source=source,
        thresholds=thresholds,
        overridden=overridden,
        index_floor=min(floor, min(thresholds.values())),
        evidence=calibration.evidence,
        runtime=stored.runtime if stored else None,
        seeds=list(stored.seeds) if stored else None,
    )
