"""The geometric check (README, Quality): a copy lies inside its original or covers it;
another shot sticks out of it. Its features packed, and copies raised in the graph."""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageOps
from skimage import data as skdata

from photocluster.clustering import copies as check
from photocluster.clustering.graph import GraphParams, build_graph, update_graph
from photocluster.ids import encode_ids
from photocluster.library import Library
from photocluster.quality.check_report import average_groups

ASTRONAUT = Image.fromarray(skdata.astronaut())  # 512 x 512


def crop(box: tuple[int, int, int, int], size: int = 340) -> Image.Image:
    return ASTRONAUT.crop(box).resize((size, size), Image.Resampling.BICUBIC)


SHOT = crop((64, 64, 448, 448))


def test_a_crop_of_the_shot_is_a_copy_and_so_is_its_mirror() -> None:
    shot = check.features(SHOT)
    cropped = check.features(crop((160, 140, 380, 360)))  # a third of the shot's area
    assert check.is_copy(shot, cropped) and check.is_copy(cropped, shot)
    mirrored = check.features(ImageOps.mirror(crop((120, 100, 420, 400))))
    assert check.is_copy(shot, mirrored)
    found = check.match(shot.plain, cropped.plain)
    assert found is not None and found.contained >= check.CONTAINED


def test_the_check_does_not_depend_on_which_photo_came_first() -> None:
    # a 35% crop and the whole picture padded with white: matched crop -> padded, enough
    # inliers; padded -> crop, too few (found by uploading them in either order)
    side = round(512 * 0.35**0.5)
    cropped = ASTRONAUT.crop((256 - side // 2, 256 - side // 2, 256 + side // 2, 256 + side // 2))
    padded = Image.new("RGB", (912, 812), "white")
    padded.paste(ASTRONAUT, (200, 150))
    a, b = (check.features(_decoded(p)) for p in (cropped, padded))
    assert check.is_copy(a, b) == check.is_copy(b, a)
    assert check.is_copy(a, b)


def _decoded(picture: Image.Image) -> Image.Image:
    """The picture as ingest decodes it for the encoder and the check."""
    from photocluster.ingest.images import ENCODER_MIN_SIDE, ImageLimits, decode_image

    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=90)
    return decode_image(buffer.getvalue(), ImageLimits(), ENCODER_MIN_SIDE)


def test_another_shot_sticks_out_and_another_photo_does_not_match() -> None:
    shot = check.features(SHOT)
    moved = check.features(crop((0, 0, 384, 384)))  # the camera moved by a sixth, both ways
    found = check.match(shot.plain, moved.plain)
    assert found is not None and found.inliers >= check.MIN_INLIERS  # it does match...
    assert found.contained < check.CONTAINED and not check.is_copy(shot, moved)  # ...but sticks out
    coffee = Image.fromarray(skdata.coffee()).resize((340, 340))
    assert not check.is_copy(shot, check.features(coffee))
    flat = check.features(Image.new("RGB", (340, 340), (90, 140, 200)))  # no keypoints at all
    assert flat.plain.descriptors is None and not check.is_copy(shot, flat)


def test_only_candidates_are_checked_and_raising_never_lowers() -> None:
    found = [check.features(p) for p in (SHOT, crop((160, 140, 380, 360)), SHOT)]
    similarity = np.array([[1, 0.5, 0.1], [0.5, 1, 0.1], [0.1, 0.1, 1]], dtype=np.float32)
    accepted, candidates = check.verified_pairs(found, similarity, floor=0.3)
    assert (accepted, candidates) == ({(0, 1)}, 1)  # (0, 2) is identical but below the floor
    high = similarity.copy()
    high[0, 1] = high[1, 0] = 0.95
    out = check.raised(high, {(0, 1)}, to=0.9)
    assert out[0, 1] == out[1, 0] == np.float32(0.95) and out[0, 2] == np.float32(0.1)


def test_the_full_matrix_linkage_groups_as_the_stored_graph_does() -> None:
    # eval-verify compares the graph's groups with full-matrix ones: only the check may
    # make them differ
    rng = np.random.default_rng(5)
    centres = rng.normal(size=(6, 16))
    vectors = np.repeat(centres, 5, axis=0) + rng.normal(scale=0.6, size=(30, 16))
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    ids = [f"p{i}" for i in range(30)]
    graph = build_graph(encode_ids(ids), vectors, GraphParams(floor=0.2))
    for threshold in (0.3, 0.5, 0.7, 0.9):
        labels = graph.labels(threshold, "average")
        from_graph = {
            frozenset(i for i, label in zip(ids, labels, strict=True) if label == g)
            for g in set(labels.tolist())
        }
        full = average_groups(ids, vectors @ vectors.T, threshold)
        assert {frozenset(g) for g in full} == {g for g in from_graph if len(g) >= 2}


# --------------------------------------------------------------------- packed features


def test_features_survive_packing_and_anything_else_is_refused() -> None:
    shot = check.features(SHOT)
    back = check.decode(check.encode(shot))
    assert back.plain.shape == shot.plain.shape and check.is_copy(back, shot)
    assert np.array_equal(back.mirrored.points, shot.mirrored.points)
    flat = check.features(Image.new("RGB", (60, 40)))
    assert check.decode(check.encode(flat)).plain.descriptors is None
    packed = check.encode(shot)
    for bad in (b"", b"JPEG....", packed[:-1], packed + b"x", b"PCORB1" + bytes(10)):
        with pytest.raises(check.InvalidFeatures):
            check.decode(bad)


# --------------------------------------------------------------------- copies in the graph


def _raised_matrix(vectors: np.ndarray, pairs: list[tuple[int, int]], to: float) -> np.ndarray:
    sims = (vectors @ vectors.T).astype(np.float32)
    return check.raised(sims, set(pairs), to)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**16), split=st.integers(1, 29))
def test_copies_count_at_their_raised_similarity_in_every_linkage(seed: int, split: int) -> None:
    """The graph with copies, built at once or over two writes, groups as the full matrix
    with the copies raised does (average linkage); a copy below the floor joins too."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(6, 16))
    vectors = np.repeat(centres, 5, axis=0) + rng.normal(scale=0.8, size=(30, 16))
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    pairs = sorted({tuple(sorted(map(int, rng.choice(30, 2, replace=False)))) for _ in range(4)})
    u, v = (np.array(side, np.int64) for side in zip(*pairs, strict=True))
    ids = encode_ids([f"p{i}" for i in range(30)])
    params = GraphParams(floor=0.2, copy_similarity=0.9)
    whole = build_graph(ids, vectors, params, (u, v))
    first = (u < split) & (v < split)
    part = build_graph(ids[:split], vectors[:split], params, (u[first], v[first]))
    kept = np.ones(split, dtype=bool)
    grown = update_graph(part, ids, vectors, kept, 30 - split, (u, v))
    names = [f"p{i}" for i in range(30)]
    lifted = _raised_matrix(vectors, pairs, 0.9)
    for threshold in (0.3, 0.6, 0.85):
        expected = {frozenset(g) for g in average_groups(names, lifted, threshold)}
        for graph in (whole, grown):
            labels = graph.labels(threshold, "average")
            found = {
                frozenset(n for n, label in zip(names, labels, strict=True) if label == g)
                for g in set(labels.tolist())
            }
            assert {g for g in found if len(g) >= 2} == expected
            complete = graph.labels(threshold, "complete")
            inside = complete[:, None] == complete[None, :]
            assert (lifted[inside] >= np.float32(threshold) - 1e-6).all()
    single = whole.labels(0.9, "single")
    assert all(single[a] == single[b] for a, b in pairs)


# --------------------------------------------------------------------- the writer's check


def _packed(picture: Image.Image) -> bytes:
    return check.encode(check.features(picture))


def test_the_writer_checks_new_photos_and_copies_join_the_high_tier(library: Library) -> None:
    # cosine 0.4 to the shot: candidates (>= 0.30), below the graph's floor and every tier
    e = np.eye(3, dtype=np.float32)
    vectors = np.stack([e[0], 0.4 * e[0] + np.sqrt(0.84) * e[1], 0.4 * e[0] + np.sqrt(0.84) * e[2]])
    coffee = Image.fromarray(skdata.coffee()).resize((340, 340))
    library.write("u1", "test-model", ["shot.jpg"], vectors[:1], features=[_packed(SHOT)])
    crops = [_packed(crop((160, 140, 380, 360))), _packed(coffee)]
    library.write("u1", "test-model", ["crop.jpg", "coffee.jpg"], vectors[1:], features=crops)
    assert library.copies.read("u1") == {("crop.jpg", "shot.jpg")}
    high = library.clusters("u1").tiers[-1].groups
    assert high == [["crop.jpg", "shot.jpg"]] or high == [["shot.jpg", "crop.jpg"]]
    # a reader rebuilding the graph (stale, reindexed) keeps the copy
    library.graphs.path("u1").unlink()
    assert len(Library.from_settings(library.settings).clusters("u1").tiers[-1].groups) == 1
    assert len(library.reindex("u1").edge_u) == 1
    # replaced by a photo without features: its old pair and features go
    library.write("u1", "test-model", ["crop.jpg"], vectors[1:2] * 0.9 + 0.01, features=[None])
    assert library.copies.read("u1") == set() and library.clusters("u1").tiers[-1].groups == []
    # deleted: its features file goes too
    assert len(list(library.copies.folder("u1").iterdir())) == 2
    library.delete("u1", ["coffee.jpg"])
    assert len(list(library.copies.folder("u1").iterdir())) == 1


def test_unreadable_stored_features_only_skip_the_check(library: Library) -> None:
    vectors = np.array([[1, 0], [0.9, np.sqrt(0.19)]], dtype=np.float32)
    library.write("u1", "test-model", ["a.jpg"], vectors[:1], features=[_packed(SHOT)])
    (stored,) = library.copies.folder("u1").iterdir()
    stored.write_bytes(b"damaged")
    library.write("u1", "test-model", ["b.jpg"], vectors[1:], features=[_packed(SHOT)])
    assert library.copies.read("u1") == set()
    assert library.clusters("u1").n_images == 2


@pytest.mark.parametrize("dies_in", ["after_upsert", "_write", "keep"])
def test_a_writer_that_died_in_the_check_is_made_good_by_the_redelivery(
    library: Library, monkeypatch: pytest.MonkeyPatch, dies_in: str
) -> None:
    """Killed before the check, before the copies are written, or before the features are
    kept: the upload delivered again (the store has nothing to change) is checked."""
    vectors = np.array([[1, 0], [0.4, np.sqrt(0.84)]], dtype=np.float32)
    library.write("u1", "test-model", ["shot.jpg"], vectors[:1], features=[_packed(SHOT)])
    cropped = _packed(crop((160, 140, 380, 360)))

    def dies(*args: object, **kwargs: object) -> bool:
        raise OSError("the writer died here")

    with monkeypatch.context() as patch:
        patch.setattr(library.copies, dies_in, dies)
        with pytest.raises(OSError, match="died"):
            library.write("u1", "test-model", ["crop.jpg"], vectors[1:], features=[cropped])
    assert library.store.read("u1").n == 2
    again = library.write("u1", "test-model", ["crop.jpg"], vectors[1:], features=[cropped])
    assert again.unchanged == 1  # the store has nothing to change; the check runs all the same
    assert library.copies.read("u1") == {("crop.jpg", "shot.jpg")}
    assert sorted(library.clusters("u1").tiers[-1].groups[0]) == ["crop.jpg", "shot.jpg"]
    assert library.graphs.fresh("u1", edges=True) is not None
    assert library.copies.stored("u1", "crop.jpg") == cropped
    calls = []
    monkeypatch.setattr(library.copies, "_check", lambda *a: calls.append(a) or set())
    library.write("u1", "test-model", ["crop.jpg"], vectors[1:], features=[cropped])
    assert calls == []  # a duplicate delivery, once kept, checks nothing again
