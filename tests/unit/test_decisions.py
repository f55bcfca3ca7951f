"""The decisions file: what a crash, damage or a flood of marks leave behind."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from photocluster.config import Settings
from photocluster.errors import InvalidDecision, StoreCorrupt, TooManyDecisions, UnknownImage
from photocluster.library import Library, decisions
from photocluster.store.files import temp_path


@pytest.fixture
def library(store_root: Path) -> Library:
    library = Library.from_settings(Settings(store_root=store_root, store_fsync=False))
    ids = [f"p{i}.jpg" for i in range(6)]
    library.write("u", "m", ids, np.random.default_rng(0).normal(size=(6, 8)))
    return library


def test_a_temp_file_left_by_a_writer_that_died_is_never_read_and_is_removed(
    library: Library,
) -> None:
    library.mark_not_similar("u", ["p0.jpg", "p1.jpg"])
    path = library.decisions.path("u")
    temp_path(path).write_text('{"format": 1, "not_similar": [["p2.jpg", "p3.jpg", 0]]}')
    assert list(library.decisions.read("u").not_similar) == [("p0.jpg", "p1.jpg")]
    library.mark_not_similar("u", ["p4.jpg", "p5.jpg"])
    assert not temp_path(path).exists()
    assert sorted(library.decisions.read("u").not_similar) == [
        ("p0.jpg", "p1.jpg"),
        ("p4.jpg", "p5.jpg"),
    ]


def test_a_damaged_file_is_an_error_of_the_store_not_an_empty_list(library: Library) -> None:
    library.decisions.path("u").write_text("{not json")
    with pytest.raises(StoreCorrupt):
        library.clusters("u")


def test_bad_decisions_change_nothing(library: Library, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(InvalidDecision):
        library.mark_not_similar("u", ["p0.jpg"])
    with pytest.raises(InvalidDecision):
        library.mark_not_similar("u", [f"x{i}.jpg" for i in range(101)])
    with pytest.raises(UnknownImage) as unknown:
        library.mark_not_similar("u", ["p0.jpg", "ghost.jpg", "gone.jpg"])
    assert unknown.value.image_ids == ("ghost.jpg", "gone.jpg")
    monkeypatch.setattr(decisions, "MAX_PAIRS", 3)
    assert library.mark_not_similar("u", ["p0.jpg", "p1.jpg", "p2.jpg"]) == (3, 3)
    with pytest.raises(TooManyDecisions):
        library.mark_not_similar("u", ["p3.jpg", "p4.jpg"])
    assert len(library.decisions.read("u").not_similar) == 3


def test_undoing_what_was_never_marked_writes_no_file(library: Library) -> None:
    assert library.unmark_not_similar("u", ["p0.jpg", "p1.jpg"]) == (0, 0)
    assert library.unmark_not_similar("nobody", ["p0.jpg", "p1.jpg"]) == (0, 0)
    assert not library.decisions.path("u").exists()
    assert not library.store.paths("nobody").data.parent.exists() or not any(
        library.store.paths("nobody").data.parent.glob("nobody*")
    )
