"""A user's images as the app sees them: statuses, late events, listing and pages."""

from __future__ import annotations

import time

import numpy as np
import pytest

from photocluster.errors import ImageNotReady, InvalidCursor, UnknownImage
from photocluster.library import Library
from photocluster.store.records import ImageError, ImageRecord

KEY = "uploads/u1/{}"


def vec(rng: np.random.Generator, n: int = 1) -> np.ndarray:
    return rng.standard_normal((n, 32))


def pending(image_id: str, expires: float | None = None) -> ImageRecord:
    now = time.time()
    return ImageRecord(image_id, "pending", KEY.format(image_id), None, now, now, expires)


def test_a_write_records_each_image_ready_with_its_key(
    library: Library, rng: np.random.Generator
) -> None:
    library.write("u1", "m", ["a.jpg"], vec(rng), keys=[KEY.format("a.jpg")], modified=[10.0])
    record = library.image("u1", "a.jpg")
    assert (record.status, record.key, record.object_modified) == ("ready", KEY.format("a.jpg"), 10)


def test_pending_then_ready_keeps_its_place_and_key(
    library: Library, rng: np.random.Generator
) -> None:
    library.record("u1", [pending("a.jpg")])
    created = library.image("u1", "a.jpg").created
    assert library.image("u1", "a.jpg").status == "pending"
    library.write("u1", "m", ["a.jpg"], vec(rng))  # no key given: the record keeps its own
    record = library.image("u1", "a.jpg")
    assert (record.status, record.key, record.created) == ("ready", KEY.format("a.jpg"), created)


def test_a_late_event_of_the_deleted_object_does_not_bring_it_back(
    library: Library, rng: np.random.Generator
) -> None:
    library.write("u1", "m", ["a.jpg"], vec(rng), modified=[10.0])
    library.delete("u1", ["a.jpg"], object_modified={"a.jpg": 10.0})
    result = library.write("u1", "m", ["a.jpg"], vec(rng), modified=[10.0])  # in-flight event
    assert result.stale == 1 and result.added == 0
    with pytest.raises(UnknownImage):
        library.image("u1", "a.jpg")
    again = library.write("u1", "m", ["a.jpg"], vec(rng), modified=[11.0])  # uploaded again
    assert again.added == 1 and library.image("u1", "a.jpg").status == "ready"


def test_a_failure_about_an_older_object_does_not_override_a_newer_upload(
    library: Library, rng: np.random.Generator
) -> None:
    library.write("u1", "m", ["a.jpg"], vec(rng), modified=[20.0])
    late = ImageRecord("a.jpg", "failed", None, ImageError("invalid_image", "x"), 0, 0, None, 10.0)
    assert library.record("u1", [late]) == [False]
    assert library.image("u1", "a.jpg").status == "ready"


def test_similar_says_not_ready_for_a_pending_or_failed_image(
    library: Library, rng: np.random.Generator
) -> None:
    library.write("u1", "m", ["a.jpg", "b.jpg"], vec(rng, 2))
    library.record("u1", [pending("c.jpg")])
    broken = ImageRecord("d.jpg", "failed", None, ImageError("too_large", "big"), 1, 1)
    library.record("u1", [broken])
    with pytest.raises(ImageNotReady, match="pending"):
        library.similar("u1", "c.jpg")
    with pytest.raises(ImageNotReady, match="failed"):
        library.similar("u1", "d.jpg")
    with pytest.raises(UnknownImage):
        library.similar("u1", "never.jpg")
    library.record("u2", [pending("x.jpg")])
    with pytest.raises(ImageNotReady):  # a user with no embedding stored yet
        library.similar("u2", "x.jpg")


def test_an_expired_upload_url_leaves_no_image_behind(library: Library) -> None:
    library.record("u1", [pending("gone.jpg", expires=time.time() - 1), pending("b.jpg")])
    assert [r.image_id for r in library.images("u1").images] == ["b.jpg"]
    assert library.counts("u1") == {"pending": 1, "ready": 0, "failed": 0}
    with pytest.raises(UnknownImage):
        library.image("u1", "gone.jpg")


def test_images_stored_before_records_existed_are_listed_ready(
    library: Library, rng: np.random.Generator
) -> None:
    library.store.upsert("u1", "m", ["old-1", "old-2"], vec(rng, 2))
    listed = library.images("u1").images
    assert {(r.image_id, r.status, r.key) for r in listed} == {
        ("old-1", "ready", None),
        ("old-2", "ready", None),
    }
    assert library.image("u1", "old-1").status == "ready"


def test_pages_cover_every_image_once_newest_first(
    library: Library, rng: np.random.Generator
) -> None:
    ids = [f"p{i:02d}.jpg" for i in range(23)]
    for image_id in ids:
        library.write("u1", "m", [image_id], vec(rng))
    library.record("u1", [pending("new.jpg")])
    seen, cursor = [], None
    while True:
        page = library.images("u1", limit=5, cursor=cursor)
        seen += [r.image_id for r in page.images]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == ["new.jpg", *reversed(ids)]
    ready = library.images("u1", status="ready", limit=1000).images
    assert [r.image_id for r in ready] == list(reversed(ids))


def test_a_cursor_the_api_did_not_give_is_refused(library: Library) -> None:
    library.record("u1", [pending("a.jpg")])
    for cursor in ("nonsense", "W10", "eyJ4IjoxfQ"):
        with pytest.raises(InvalidCursor):
            library.images("u1", cursor=cursor)


def test_deleting_an_image_never_seen_records_nothing(library: Library) -> None:
    result = library.delete("nobody", ["x.jpg"])
    assert result.missing == 1
    assert library.images("nobody").images == []
