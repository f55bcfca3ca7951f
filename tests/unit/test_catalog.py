"""The catalog file: an append-only log of image records, read incrementally."""

from __future__ import annotations

from pathlib import Path

from photocluster.store.catalog import TOMBSTONE_TTL_S, CatalogFiles
from photocluster.store.records import ImageError, ImageRecord


def rec(image_id: str, status: str = "ready", **fields: object) -> ImageRecord:
    return ImageRecord(image_id, status, **fields)  # type: ignore[arg-type]


def test_the_last_record_of_an_image_wins(tmp_path: Path) -> None:
    path = tmp_path / "u.pci"
    files = CatalogFiles(fsync=False)
    files.append(path, [rec("a", "pending", key="uploads/u/a.jpg"), rec("b")])
    files.append(path, [rec("a", "failed", error=ImageError("invalid_image", "truncated"))])
    records = files.records(path)
    assert records["a"].status == "failed" and records["a"].error == ImageError(
        "invalid_image", "truncated"
    )
    assert records["b"].status == "ready"


def test_a_reader_sees_what_another_process_appended(tmp_path: Path) -> None:
    path = tmp_path / "u.pci"
    reader, writer = CatalogFiles(fsync=False), CatalogFiles(fsync=False)
    writer.append(path, [rec("a")])
    assert set(reader.records(path)) == {"a"}
    writer.append(path, [rec("b"), rec("a", "failed")])
    assert {k: r.status for k, r in reader.records(path).items()} == {"a": "failed", "b": "ready"}


def test_a_torn_line_is_ignored_then_truncated_by_the_next_writer(tmp_path: Path) -> None:
    path = tmp_path / "u.pci"
    files = CatalogFiles(fsync=False)
    files.append(path, [rec("a")])
    with path.open("ab") as handle:  # a crash in the middle of an append
        handle.write(b'{"image_id":"b","sta')
    assert set(CatalogFiles().records(path)) == {"a"}
    files.append(path, [rec("c")])
    assert set(CatalogFiles().records(path)) == {"a", "c"}
    assert path.read_bytes().count(b"\n") == 2 and b'"b"' not in path.read_bytes()


def test_a_damaged_line_is_skipped_not_fatal(tmp_path: Path) -> None:
    path = tmp_path / "u.pci"
    path.write_bytes(rec("a").to_line() + b"not json\n" + rec("b").to_line())
    assert set(CatalogFiles().records(path)) == {"a", "b"}


def test_non_ascii_keys_survive_the_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "u.pci"
    CatalogFiles().append(path, [rec("x", key="uploads/u/Beach day é\n.jpg")])
    assert CatalogFiles().records(path)["x"].key == "uploads/u/Beach day é\n.jpg"


def test_compaction_drops_superseded_lines_expired_uploads_and_old_tombstones(
    tmp_path: Path,
) -> None:
    path = tmp_path / "u.pci"
    files = CatalogFiles(fsync=False)
    now = 1_000_000.0
    for round_ in range(40):
        files.append(path, [rec("a", updated=now), rec("b", "failed", updated=now + round_)])
    files.append(path, [rec("unused-url", "pending", expires=now - 1)])
    files.append(path, [rec("old-delete", "deleted", updated=now - TOMBSTONE_TTL_S - 1)])
    files.append(path, [rec("recent-delete", "deleted", updated=now)])
    inode = path.stat().st_ino
    files.compact_if_due(path, now)
    assert path.stat().st_ino != inode  # rewritten, by rename
    assert set(files.records(path)) == {"a", "b", "recent-delete"}
    assert path.read_bytes().count(b"\n") == 3
    assert files.records(path)["b"].updated == now + 39


def test_the_record_of_an_upload_url_never_used_is_hidden_once_it_expires() -> None:
    pending = rec("a", "pending", expires=100.0)
    assert pending.visible(99.0) and not pending.visible(101.0)
    assert not rec("a", "deleted").visible(0.0)


def test_a_process_that_parsed_nothing_finds_the_last_line_of_each_image_asked_for(
    tmp_path: Path,
) -> None:
    path = tmp_path / "u.pci"
    path.write_bytes(
        rec("a", "pending").to_line()
        + rec("ab").to_line()  # an id that starts like another
        + rec("a", "failed", error=ImageError("invalid_image", "x")).to_line()
        + rec("b").to_line()
        + b'{"image_id":"a","status":"ready","crea'  # a torn line: not a record
    )
    cold = CatalogFiles(fsync=False)
    found = cold.latest(path, ["a", "b", "c"])
    assert {k: r.status for k, r in found.items()} == {"a": "failed", "b": "ready"}
    assert cold.memory.get(("catalog", path)) is None  # nothing was parsed whole
    assert found["a"] == CatalogFiles().records(path)["a"]


def test_a_damaged_last_line_of_an_image_gives_the_one_before(tmp_path: Path) -> None:
    path = tmp_path / "u.pci"
    path.write_bytes(rec("a", "pending").to_line() + b'{"image_id":"a",oops\n')
    assert CatalogFiles().latest(path, ["a"])["a"].status == "pending"


def test_a_process_that_parsed_nothing_checks_compaction_by_counting_lines(
    tmp_path: Path,
) -> None:
    path = tmp_path / "u.pci"
    now = 1_000_000.0
    path.write_bytes(b"".join(rec(f"i{i}", updated=now).to_line() for i in range(100)) * 2)
    cold = CatalogFiles(fsync=False)
    cold.compact_if_due(path, now, images=101)  # fewer lines than twice the photos: skipped
    assert path.read_bytes().count(b"\n") == 200 and cold.memory.get(("catalog", path)) is None
    CatalogFiles(fsync=False).compact_if_due(path, now, images=90)  # counted, parsed: due
    assert path.read_bytes().count(b"\n") == 100


def test_the_unfinished_images_are_found_without_a_parse(tmp_path: Path) -> None:
    path = tmp_path / "u.pci"
    lines = [rec(f"r{i}").to_line() for i in range(200)]
    lines += [rec("p", "pending", expires=50.0).to_line(), rec("f", "failed").to_line()]
    lines += [rec("later", "pending").to_line(), rec("later").to_line()]  # ready since
    lines += [rec("odd", key='x","status":"pending"').to_line()]  # the words inside a key
    path.write_bytes(b"".join(lines))
    cold = CatalogFiles(fsync=False)
    version, found = cold.unfinished(path)
    assert sorted(r.image_id for r in found) == ["f", "p"]
    assert cold.memory.get(("catalog", path)) is None  # nothing was parsed whole
    parsed = CatalogFiles(fsync=False)
    parsed.records(path)
    again, listed = parsed.unfinished(path)
    assert again == version and sorted(listed) == sorted(found)
