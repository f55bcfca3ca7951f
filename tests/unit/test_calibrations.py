"""A model's calibration as a file, its copy on the store root, and which tiers win."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from photocluster.calibrations import (
    BUILT_IN,
    CALIBRATION_FILE,
    UNCALIBRATED,
    ModelCalibration,
    StoredCalibrations,
    calibration_json,
    read_calibration,
    store_file_name,
)
from photocluster.config import OFFLINE_MODEL, Settings, TierThresholds
from photocluster.embedder.loader import load_calibration
from photocluster.errors import InvalidCalibration, ModelMismatch
from photocluster.ingest.writer import handle_write
from photocluster.library import Library
from tests.helpers.data import grouped_vectors

MODEL = "vendor/some-vit"


def calibration(model: str = MODEL, low: float = 0.33, floor: float = 0.3) -> ModelCalibration:
    return ModelCalibration(
        model_id=model,
        runtime="torch",
        seeds=[0],
        thresholds=TierThresholds(low=low, medium=0.66, high=0.88),
        index_floor=floor,
        evidence="generated sets, seeds 0 pooled: low 0.33 P=0.900 R=0.950",
    )


def as_document(**changes: object) -> dict[str, object]:
    document: dict[str, object] = json.loads(calibration_json(calibration()))
    document.update(changes)
    return document


def test_the_file_round_trips_and_is_the_same_bytes_every_time(tmp_path: Path) -> None:
    path = tmp_path / CALIBRATION_FILE
    path.write_bytes(calibration_json(calibration()))
    assert read_calibration(path) == calibration()
    assert calibration_json(calibration()) == path.read_bytes()
    assert set(json.loads(path.read_text())) == {  # nothing that differs between builds
        "version",
        "model_id",
        "runtime",
        "seeds",
        "thresholds",
        "index_floor",
        "evidence",
    }


def test_a_missing_file_means_uncalibrated(tmp_path: Path) -> None:
    assert read_calibration(tmp_path / CALIBRATION_FILE) is None
    assert load_calibration(str(tmp_path)) is None
    assert load_calibration(OFFLINE_MODEL) is None  # a name, not a folder


@pytest.mark.parametrize(
    ("document", "said"),
    [
        (as_document(thresholds={"low": 0.5, "medium": 0.4, "high": 0.9}), "greater than 'low'"),
        (as_document(thresholds={"low": 0.5, "medium": 0.7, "high": 1.7}), "(0, 1]"),
        (as_document(thresholds={"low": 0.5, "medium": 0.7}), "thresholds.high"),
        (as_document(index_floor=0), "index_floor"),
        (as_document(seeds=[]), "seeds"),
        (as_document(runtime="gpu"), "runtime"),
        (as_document(evidence=" "), "evidence"),
        (as_document(note="hand-edited"), "note"),
        (as_document(version=2), "version"),
    ],
)
def test_a_corrupt_or_hand_edited_file_is_refused_naming_the_fault(
    tmp_path: Path, document: dict[str, object], said: str
) -> None:
    path = tmp_path / CALIBRATION_FILE
    path.write_text(json.dumps(document))
    with pytest.raises(InvalidCalibration) as raised:
        read_calibration(path)
    assert str(path) in str(raised.value) and said in str(raised.value)


def test_a_file_that_is_not_json_is_refused(tmp_path: Path) -> None:
    path = tmp_path / CALIBRATION_FILE
    path.write_text('{"thresholds": ')
    with pytest.raises(InvalidCalibration, match="Invalid JSON"):
        read_calibration(path)


def test_a_baked_folder_refuses_the_calibration_of_another_model(tmp_path: Path) -> None:
    (tmp_path / "photocluster.json").write_text(json.dumps({"model_id": "vendor/other"}))
    (tmp_path / CALIBRATION_FILE).write_bytes(calibration_json(calibration()))
    with pytest.raises(InvalidCalibration, match="vendor/other"):
        load_calibration(str(tmp_path))


def test_store_file_names_hold_no_slash_and_never_collide() -> None:
    names = {store_file_name(m) for m in ("a/b", "a_b", "a b", "../../etc", "/opt/ml/model")}
    assert len(names) == 5
    assert all("/" not in name and not name.startswith(".") for name in names)


def test_the_store_copy_is_written_once_then_only_when_it_changes(tmp_path: Path) -> None:
    stored = StoredCalibrations(tmp_path, fsync=False)
    assert stored.get(MODEL) is None and stored.version() is None
    assert stored.save(calibration())
    first = stored.path(MODEL).stat().st_mtime_ns
    assert not stored.save(calibration())
    assert stored.path(MODEL).stat().st_mtime_ns == first
    assert stored.get(MODEL) == calibration()
    assert stored.save(calibration(low=0.4))
    assert stored.get(MODEL) == calibration(low=0.4)  # another reader's cache sees it too
    assert list(stored.path(MODEL).parent.iterdir()) == [stored.path(MODEL)]  # no temp left


def test_a_hand_edited_store_copy_is_an_error_not_silently_used(tmp_path: Path) -> None:
    stored = StoredCalibrations(tmp_path, fsync=False)
    stored.save(calibration())
    document = json.loads(stored.path(MODEL).read_text())
    document["thresholds"]["high"] = 0.5
    stored.path(MODEL).write_text(json.dumps(document))
    with pytest.raises(InvalidCalibration, match="greater than 'medium'"):
        stored.get(MODEL)
    assert stored.save(calibration())  # the writer's next upsert repairs it
    assert stored.get(MODEL) == calibration()


# ------------------------------------------------------------------ which tiers win


def library_with(settings: Settings, stored: ModelCalibration | None = None) -> Library:
    library = Library.from_settings(settings)
    if stored is not None:
        library.calibrations.save(stored)
    return library


def test_a_model_with_nothing_runs_on_the_uncalibrated_defaults(settings: Settings) -> None:
    defaults = library_with(settings).tiers(MODEL)
    assert defaults.source == "uncalibrated" and defaults.runtime is None
    assert defaults.thresholds == UNCALIBRATED.thresholds.as_dict()
    assert defaults.index_floor == UNCALIBRATED.index_floor


def test_the_built_in_row_applies_without_a_persisted_calibration(settings: Settings) -> None:
    defaults = library_with(settings).tiers(OFFLINE_MODEL)
    assert defaults.source == "built-in"
    assert defaults.thresholds == BUILT_IN[OFFLINE_MODEL].thresholds.as_dict()


def test_the_persisted_calibration_beats_the_built_in_row(settings: Settings) -> None:
    library = library_with(settings, calibration(OFFLINE_MODEL))
    defaults = library.tiers(OFFLINE_MODEL)
    assert defaults.source == "baked" and defaults.seeds == [0] and defaults.runtime == "torch"
    assert library.tiers(OFFLINE_MODEL).asked() == {"low": 0.33, "medium": 0.66, "high": 0.88}
    assert defaults.index_floor == 0.3


def test_configured_overrides_beat_the_calibration_and_say_so(settings: Settings) -> None:
    library = library_with(settings.model_copy(update={"high": 0.95}), calibration())
    defaults = library.tiers(MODEL)
    assert defaults.thresholds == {"low": 0.33, "medium": 0.66, "high": 0.95}
    assert defaults.overridden == ["high"] and defaults.source == "baked"


def test_a_request_beats_everything(settings: Settings) -> None:
    library = library_with(settings.model_copy(update={"high": 0.95}), calibration())
    assert library.tiers(MODEL).asked({"high": 0.97}) == {"low": 0.33, "medium": 0.66, "high": 0.97}


def test_the_graph_floor_comes_from_the_persisted_calibration(settings: Settings) -> None:
    library = library_with(settings, calibration(floor=0.2))
    ids, vectors, _ = grouped_vectors(np.random.default_rng(3), 3, 3, 5, dim=16, noise=0.4)
    library.write("alice", MODEL, ids, vectors)
    assert library.stats("alice").graph_floor == 0.2


def test_a_new_calibration_changes_the_users_versions(settings: Settings) -> None:
    library = library_with(settings)
    ids, vectors, _ = grouped_vectors(np.random.default_rng(3), 2, 3, 2, dim=16, noise=0.4)
    library.write("alice", MODEL, ids, vectors)
    before = library.version("alice")
    library.calibrations.save(calibration())
    assert library.version("alice") != before


# ------------------------------------------------------------------ the writer


def upsert(model: str, stored: ModelCalibration | None) -> dict[str, object]:
    return {
        "op": "upsert",
        "user_id": "alice",
        "model": model,
        "calibration": stored.model_dump(mode="json") if stored else None,
        "items": [{"image_id": "a.jpg", "embedding": [0.6, 0.8]}],
    }


def test_the_writer_persists_the_calibration_sent_with_the_vectors(settings: Settings) -> None:
    library = Library.from_settings(settings)
    answer = handle_write(library, upsert(MODEL, calibration()), expected_model=MODEL)
    assert answer["ok"] is True
    reader = Library.from_settings(settings)  # another process, e.g. the API
    assert reader.calibrations.get(MODEL) == calibration()
    assert reader.tiers(MODEL).source == "baked"


def test_the_writer_refuses_a_calibration_of_another_model(settings: Settings) -> None:
    library = Library.from_settings(settings)
    answer = handle_write(library, upsert(MODEL, calibration("vendor/other")), MODEL)
    assert answer["ok"] is False and answer["error_type"] == ModelMismatch.__name__
    assert library.calibrations.get(MODEL) is None and not library.store.exists("alice")


def test_the_writer_refuses_a_calibration_with_broken_tiers(settings: Settings) -> None:
    payload = upsert(MODEL, calibration())
    payload["calibration"]["thresholds"]["low"] = 0.9  # type: ignore[index]
    answer = handle_write(Library.from_settings(settings), payload, MODEL)
    assert answer["ok"] is False and "calibration.thresholds" in str(answer["error"])


def test_an_uncalibrated_model_persists_nothing(settings: Settings) -> None:
    library = Library.from_settings(settings)
    assert handle_write(library, upsert(MODEL, None), MODEL)["ok"] is True
    assert library.calibrations.version() is None
