"""The listing index: a page of images from it (and the catalog lines it does not cover) is
the page a full parse of the catalog gives, and an index of another catalog is never read."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from photocluster.config import Settings
from photocluster.library import Library
from photocluster.library import images as listing_pages
from photocluster.store import listing
from photocluster.store.records import ImageError, ImageRecord

USER = "u1"
IDS = [f"p{i}.jpg" for i in range(12)]

Operation = tuple[str, int, float]
operations = st.lists(
    st.tuples(
        st.sampled_from(["pending", "expired", "ready", "failed", "delete", "index"]),
        st.integers(0, len(IDS) - 1),
        st.sampled_from([100.0, 200.0, 200.0, 300.0]),  # ties: ordered by id
    ),
    max_size=40,
)


def fresh(store_root: Path) -> Library:
    """A new process's library: nothing of the catalog parsed yet."""
    return Library.from_settings(Settings(store_root=store_root, model="m", store_fsync=False))


def apply(library: Library, ops: list[Operation], rng: np.random.Generator) -> None:
    for kind, which, created in ops:
        image_id = IDS[which]
        if kind == "index":
            if library.store.exists(USER):
                with library.store.transaction(USER) as tx:
                    assert tx.snapshot is not None
                    library.records.reindex(USER, tx.snapshot.ids)
        elif kind == "ready":
            library.write(USER, "m", [image_id], rng.standard_normal((1, 8)))
        elif kind == "delete":
            library.delete(USER, [image_id])
        else:
            failed = kind == "failed"
            expires = None if failed else created if kind == "expired" else time.time() + 3600
            error = ImageError("corrupt", "not an image") if failed else None
            status = "failed" if failed else "pending"
            key = f"k/{image_id}"
            library.record(
                USER, [ImageRecord(image_id, status, key, error, created, created, expires)]
            )


def walk(page_of: object, status: str | None, limit: int) -> list[ImageRecord]:
    seen, cursor = [], None
    while True:
        page = page_of(status, limit, cursor)  # type: ignore[operator]
        seen += page.images
        if page.next_cursor is None:
            return seen
        cursor = page.next_cursor


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=operations, limit=st.integers(1, 5))
def test_a_page_from_the_index_is_the_page_of_the_whole_catalog(
    tmp_path_factory: pytest.TempPathFactory, ops: list[Operation], limit: int
) -> None:
    root = tmp_path_factory.mktemp("store")
    half = len(ops) // 2  # an index of the first half; the catalog's later lines after it
    apply(fresh(root), [*ops[:half], ("index", 0, 0.0), *ops[half:]], np.random.default_rng(0))
    now = time.time()
    indexed, whole = fresh(root), fresh(root)
    catalog = indexed.store.paths(USER).catalog
    if catalog.exists() and indexed.store.paths(USER).listing.exists():
        loaded = listing.load(catalog, indexed.store.paths(USER).listing)
        assert loaded is not None  # the index is read, not bypassed
        os.close(loaded[1])
    every = [*IDS, "never-seen.jpg"]
    from_catalog = whole.records.files.latest(whole.records.path(USER), every)
    assert indexed.records.latest(USER, every) == from_catalog  # tombstones included
    assert indexed.records.latest(USER, IDS[:1]) == {
        k: v for k, v in from_catalog.items() if k == IDS[0]
    }
    for status in (None, "pending", "ready", "failed"):
        from_index = walk(lambda s, n, c: indexed.records.page(USER, s, n, c, now), status, limit)
        reference = walk(
            lambda s, n, c: listing_pages.page(whole.records.listing(USER, now), s, n, c),
            status,
            limit,
        )
        assert from_index == reference


def test_the_writer_keeps_the_index_and_a_new_process_lists_from_it(
    store_root: Path, rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(listing, "MIN_BYTES", 1024)
    writer = fresh(store_root)
    ids = [f"photo-{i:03d}" for i in range(60)]
    for image_id in ids:
        writer.write(USER, "m", [image_id], rng.standard_normal((1, 8)))
    paths = writer.store.paths(USER)
    loaded = listing.load(paths.catalog, paths.listing)
    assert loaded is not None
    index, fd = loaded
    os.close(fd)
    assert len(index) > 10  # rebuilt as the catalog grew, not at its first lines only
    reader = fresh(store_root)
    first = reader.images(USER, limit=5)
    assert [r.image_id for r in first.images] == list(reversed(ids))[:5]
    assert not reader.records.files.parsed(paths.catalog)  # the page came from the index
    writer.delete(USER, [ids[-1]])
    writer.record(USER, [ImageRecord("late.jpg", "failed", None, ImageError("corrupt", "x"), 1, 1)])
    listed = walk(lambda s, n, c: reader.images(USER, s, n, c), None, 7)
    assert [r.image_id for r in listed] == [*reversed(ids[:-1]), "late.jpg"]


def test_photos_stored_without_records_are_listed_ready_from_the_index(
    library: Library, rng: np.random.Generator, store_root: Path
) -> None:
    library.store.upsert(USER, "m", ["old-1", "old-2"], rng.standard_normal((2, 8)))
    library.write(USER, "m", ["new"], rng.standard_normal((1, 8)))
    library.reindex(USER)
    listed = fresh(store_root).images(USER).images
    assert [(r.image_id, r.status) for r in listed] == [
        ("new", "ready"),
        ("old-1", "ready"),
        ("old-2", "ready"),
    ]


def test_an_index_of_another_catalog_or_a_damaged_one_is_not_read(
    library: Library, rng: np.random.Generator, store_root: Path
) -> None:
    library.write(USER, "m", ["a", "b"], rng.standard_normal((2, 8)))
    library.reindex(USER)
    paths = library.store.paths(USER)
    index = paths.listing.read_bytes()
    data = paths.catalog.read_bytes()
    # another file with the same lines, as a compaction makes it: written beside the old one
    # and renamed over it, so its inode cannot be the old one's (unlinking first and
    # writing anew let the filesystem hand the freed inode back: this test failed so)
    before = paths.catalog.stat().st_ino
    replacement = paths.catalog.with_name(paths.catalog.name + ".new")
    replacement.write_bytes(data)
    os.replace(replacement, paths.catalog)
    assert paths.catalog.stat().st_ino != before
    assert listing.load(paths.catalog, paths.listing) is None
    paths.catalog.write_bytes(data[:-10])  # shorter than what the index covers
    assert listing.load(paths.catalog, paths.listing) is None
    for damaged in (b"PCLIST02garbage", index[:-3], b"PCLIST01" + index[8:]):
        paths.listing.write_bytes(damaged)
        assert listing.load(paths.catalog, paths.listing) is None
    listed = fresh(store_root).images(USER).images  # the catalog parsed: b has no record
    assert [(r.image_id, r.key) for r in listed] == [("a", None), ("b", None)]


def test_a_compaction_rebuilds_the_index(
    store_root: Path, rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(listing, "MIN_BYTES", 1 << 30)  # only a compaction builds it
    library = fresh(store_root)
    library.write(USER, "m", ["kept"], rng.standard_normal((1, 8)))
    library.reindex(USER)
    for i in range(80):  # upload URLs asked again and again: superseded lines
        expires = time.time() + 3600 + i
        library.record(USER, [ImageRecord("again", "pending", "k", None, 5.0, 5.0, expires)])
    paths = library.store.paths(USER)
    assert paths.catalog.read_bytes().count(b"\n") < 80  # compacted
    loaded = listing.load(paths.catalog, paths.listing)
    assert loaded is not None
    index, fd = loaded
    os.close(fd)
    assert len(index) == 2  # of the compacted catalog (later lines are parsed after it)
    assert [r.image_id for r in fresh(store_root).images(USER).images] == ["kept", "again"]


def test_a_writer_that_dies_after_a_compaction_leaves_no_index_of_the_old_catalog(
    store_root: Path, rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    library = fresh(store_root)
    library.write(USER, "m", ["kept"], rng.standard_normal((1, 8)))
    library.reindex(USER)
    paths = library.store.paths(USER)

    def dies(*args: object, **kwargs: object) -> None:
        raise SystemExit("killed")

    monkeypatch.setattr(listing, "build", dies)

    def asked_again(i: int) -> None:
        expires = time.time() + 3600 + i
        library.record(USER, [ImageRecord("again", "pending", "k", None, 5.0, 5.0, expires)])

    for i in range(62):  # with the line of "kept", a compaction is due at the 64th
        asked_again(i)
    assert paths.listing.exists()
    with pytest.raises(SystemExit):
        asked_again(62)
    assert not paths.listing.exists()
    assert [r.image_id for r in fresh(store_root).images(USER).images] == ["kept", "again"]


def test_the_index_counts_the_catalogs_lines_for_the_compaction_check(
    store_root: Path, rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from photocluster.store import catalog

    monkeypatch.setattr(listing, "MIN_BYTES", 1024)
    library = fresh(store_root)
    for i in range(40):
        library.write(USER, "m", [f"photo-{i:03d}"], rng.standard_normal((1, 8)))
    paths = library.store.paths(USER)
    assert listing.lines(paths.catalog, paths.listing) == paths.catalog.read_bytes().count(b"\n")

    def counted(path: Path) -> int:
        raise AssertionError("a writer with an index read the whole catalog to count lines")

    monkeypatch.setattr(catalog, "_count_lines", counted)
    writer = fresh(store_root)  # a new process: it has not parsed the catalog
    writer.write(USER, "m", ["one-more"], rng.standard_normal((1, 8)))
    assert listing.lines(paths.catalog, paths.listing) == paths.catalog.read_bytes().count(b"\n")
