"""The geometric check (README, Quality): a copy lies inside its original or covers it;
another shot sticks out of it, and shows the same scene when at least half of one lies in
the other. Its features packed, and copies and scenes raised in the graph."""

from __future__ import annotations

import io
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageOps
from skimage import data as skdata

from photocluster.calibrations import resolve_tiers
from photocluster.clustering import copies as check
from photocluster.clustering import orb
from photocluster.clustering.graph import GraphParams, build_graph, update_graph
from photocluster.clustering.linkage import canonical_order
from photocluster.config import OFFLINE_MODEL, Settings
from photocluster.errors import StoreCorrupt
from photocluster.ids import encode_ids
from photocluster.library import Library
from photocluster.library.copies import Verified
from photocluster.quality.check_report import average_groups
from photocluster.quality.edits import screenshot

ASTRONAUT = Image.fromarray(skdata.astronaut())  # 512 x 512


def crop(box: tuple[int, int, int, int], size: int = 340) -> Image.Image:
    return ASTRONAUT.crop(box).resize((size, size), Image.Resampling.BICUBIC)


SHOT = crop((64, 64, 448, 448))


def test_a_crop_of_the_shot_is_a_copy_and_so_is_its_mirror() -> None:
    shot = orb.features(SHOT)
    cropped = orb.features(crop((160, 140, 380, 360)))  # a third of the shot's area
    assert check.is_copy(shot, cropped) and check.is_copy(cropped, shot)
    mirrored = orb.features(ImageOps.mirror(crop((120, 100, 420, 400))))
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
    a, b = (orb.features(_decoded(p)) for p in (cropped, padded))
    assert check.is_copy(a, b) == check.is_copy(b, a)
    assert check.is_copy(a, b)


def _decoded(picture: Image.Image) -> Image.Image:
    """The picture as ingest decodes it for the encoder and the check."""
    from photocluster.images import ENCODER_MIN_SIDE, ImageLimits, decode_image

    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=90)
    return decode_image(buffer.getvalue(), ImageLimits(), ENCODER_MIN_SIDE)


def test_another_shot_sticks_out_and_another_photo_does_not_match() -> None:
    shot = orb.features(SHOT)
    moved = orb.features(crop((0, 0, 384, 384)))  # the camera moved by a sixth, both ways
    found = check.match(shot.plain, moved.plain)
    assert found is not None and found.inliers >= check.MIN_INLIERS  # it does match...
    assert found.contained < check.CONTAINED and not check.is_copy(shot, moved)  # ...but sticks out
    assert check.relation(shot, moved) == check.relation(moved, shot) == check.SCENE
    corner = orb.features(crop((330, 330, 512, 512)))  # less than half of it in the shot
    assert check.relation(shot, corner) is None and check.relation(corner, shot) is None
    coffee = Image.fromarray(skdata.coffee()).resize((340, 340))
    assert not check.is_copy(shot, orb.features(coffee))
    flat = orb.features(Image.new("RGB", (340, 340), (90, 140, 200)))  # no keypoints at all
    assert flat.plain.descriptors is None and not check.is_copy(shot, flat)


def test_unrelated_screenshots_with_the_same_phone_bars_do_not_match() -> None:
    # the same screen, clock and bars around two unrelated photos: matched on the bars
    # alone, the identity maps one wholly inside the other (found by trying it)
    photos = [ASTRONAUT, Image.fromarray(skdata.coffee()), Image.fromarray(skdata.chelsea())]
    shots = [orb.features(_decoded(screenshot(p, random.Random(2)))) for p in photos]
    for a, b in ((0, 1), (0, 2), (1, 2)):
        assert check.relation(shots[a], shots[b]) is None
    # a screenshot of the shot itself is still its copy
    assert check.is_copy(orb.features(_decoded(screenshot(SHOT, random.Random(2)))), shots[0])


def test_only_candidates_are_checked_and_raising_never_lowers() -> None:
    found = [orb.features(p) for p in (SHOT, crop((160, 140, 380, 360)), SHOT)]
    similarity = np.array([[1, 0.5, 0.1], [0.5, 1, 0.1], [0.1, 0.1, 1]], dtype=np.float32)
    accepted, candidates = check.verified_pairs(found, similarity, floor=0.3)
    # (0, 2) is identical but below the floor
    assert (accepted, candidates) == (check.Accepted({(0, 1)}, set()), 1)
    high = similarity.copy()
    high[0, 1] = high[1, 0] = 0.95
    out = check.raised(high, {(0, 1)}, copy_to=0.9)
    assert out[0, 1] == out[1, 0] == np.float32(0.95) and out[0, 2] == np.float32(0.1)


def test_a_scene_pair_joins_the_copy_groups_of_its_photos() -> None:
    # 0-1 and 3-4 are copies; 1 and 3 show one scene: every pair across {0, 1} and {3, 4}
    # counts the scene's value at least; 2 and 5 are in neither
    similarity = np.full((6, 6), 0.2, dtype=np.float32)
    similarity[0, 3] = similarity[3, 0] = 0.7
    out = check.raised(similarity, {(0, 1), (3, 4)}, {(1, 3)}, copy_to=0.9, scene_to=0.5)
    assert out[0, 1] == out[3, 4] == np.float32(0.9)
    across = out[np.ix_([0, 1], [3, 4])]
    assert (across == np.array([[0.7, 0.5], [0.5, 0.5]], np.float32)).all()
    assert (out == out.T).all() and out[2, 5] == out[0, 2] == out[1, 5] == np.float32(0.2)
    tiers = resolve_tiers(Settings(), OFFLINE_MODEL, None).thresholds  # the built-in tiers
    assert check.scene_similarity(tiers["medium"], tiers["high"]) == check.SCENE_SIMILARITY
    # two copies of one photo show one scene at least, not a copy of each other
    chained = check.raised(similarity, {(0, 1), (1, 2)}, set(), copy_to=0.9, scene_to=0.5)
    assert chained[0, 2] == np.float32(0.5) and chained[0, 1] == chained[1, 2] == np.float32(0.9)


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
    shot = orb.features(SHOT)
    back = orb.decode(orb.encode(shot))
    assert back.plain.shape == shot.plain.shape and check.is_copy(back, shot)
    assert np.array_equal(back.mirrored.points, shot.mirrored.points)
    flat = orb.features(Image.new("RGB", (60, 40)))
    assert orb.decode(orb.encode(flat)).plain.descriptors is None
    packed = orb.encode(shot)
    for bad in (b"", b"JPEG....", packed[:-1], packed + b"x", b"PCORB1" + bytes(10)):
        with pytest.raises(orb.InvalidFeatures):
            orb.decode(bad)


def test_the_writer_keeps_the_pictures_own_points_half_of_what_ingest_sends() -> None:
    packed = _packed(SHOT)
    kept = orb.kept(packed)
    assert len(kept) < 0.55 * len(packed)
    points = orb.decode_kept(kept)
    assert np.array_equal(points.points, orb.decode(packed).plain.points)
    # features kept whole, before: their picture's own points are read
    assert np.array_equal(orb.decode_kept(packed).points, points.points)
    for bad in (b"", kept[:-1], kept + b"x", packed + b"x"):
        with pytest.raises(orb.InvalidFeatures):
            orb.decode_kept(bad)


@pytest.mark.parametrize("first", ["shot", "flipped"])
def test_a_flipped_copy_is_found_whichever_photo_came_first(library: Library, first: str) -> None:
    e = np.eye(2, dtype=np.float32)
    vectors = {"shot": e[0], "flipped": 0.4 * e[0] + np.sqrt(0.84) * e[1]}
    pictures = {"shot": SHOT, "flipped": ImageOps.mirror(crop((120, 100, 420, 400)))}
    for name in (first, *(n for n in pictures if n != first)):
        packed = [_packed(pictures[name])]
        library.write("u1", "test-model", [name], vectors[name][None], features=packed)
    assert library.copies.read("u1").copies == {("flipped", "shot")}


# --------------------------------------------------------------------- copies in the graph


def _random_pairs(rng: np.random.Generator, n: int) -> list[tuple[int, int]]:
    return sorted({tuple(sorted(map(int, rng.choice(30, 2, replace=False)))) for _ in range(n)})


def _rows(pairs: list[tuple[int, int]], below: int = 30) -> tuple[np.ndarray, np.ndarray]:
    kept = [(a, b) for a, b in pairs if a < below and b < below]
    return np.array([a for a, _ in kept], np.int64), np.array([b for _, b in kept], np.int64)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**16), split=st.integers(1, 29))
def test_copies_count_at_their_raised_similarity_in_every_linkage(seed: int, split: int) -> None:
    """The graph with copies and scenes, built at once or over two writes, groups as the
    full matrix raised (copies; the copy groups of scene pairs) does (average linkage); a
    copy below the floor joins too."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(6, 16))
    vectors = np.repeat(centres, 5, axis=0) + rng.normal(scale=0.8, size=(30, 16))
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    pairs = _random_pairs(rng, 6)
    scenes = [p for p in _random_pairs(rng, 3) if p not in pairs]
    ids = encode_ids([f"p{i}" for i in range(30)])
    params = GraphParams(floor=0.2, copy_similarity=0.9, scene_similarity=0.55)
    whole = build_graph(ids, vectors, params, _rows(pairs), _rows(scenes))
    part = build_graph(
        ids[:split], vectors[:split], params, _rows(pairs, split), _rows(scenes, split)
    )
    kept = np.ones(split, dtype=bool)
    grown = update_graph(part, ids, vectors, kept, 30 - split, _rows(pairs), _rows(scenes))
    names = [f"p{i}" for i in range(30)]
    sims = (vectors @ vectors.T).astype(np.float32)
    lifted = check.raised(sims, pairs, scenes, copy_to=0.9, scene_to=0.55)
    order = canonical_order(vectors)  # raised values tie: scipy breaks ties by row order
    in_order = lifted[np.ix_(order, order)]
    for threshold in (0.3, 0.5, 0.6, 0.85):
        ranked = average_groups([names[i] for i in order], in_order, threshold)
        expected = {frozenset(g) for g in ranked}
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


def test_groups_do_not_depend_on_the_order_photos_came_in() -> None:
    # a crop lies inside the shot and inside another shot: two copies at the same raised
    # value, a tie that complete linkage breaks one way or the other (found driving the API)
    rng = np.random.default_rng(11)
    vectors = rng.normal(size=(5, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    names = ["shot", "crop", "other-shot", "x", "y"]
    copies = [("crop", "shot"), ("crop", "other-shot")]
    found = []
    for order in ([0, 1, 2, 3, 4], [2, 1, 0, 4, 3], [1, 3, 2, 0, 4]):
        ids = [names[i] for i in order]
        at = {name: row for row, name in enumerate(ids)}
        u = np.array([at[a] for a, _ in copies], np.int64)
        v = np.array([at[b] for _, b in copies], np.int64)
        graph = build_graph(encode_ids(ids), vectors[order], GraphParams(floor=0.0), (u, v))
        found.append(
            {
                linkage: {
                    frozenset(n for n, g in zip(ids, labels, strict=True) if g == label)
                    for label in set(labels.tolist())
                }
                for linkage in ("complete", "average")
                for labels in [graph.labels(0.85, linkage)]
            }
        )
    assert found[0] == found[1] == found[2]


# --------------------------------------------------------------------- the writer's check


def _packed(picture: Image.Image) -> bytes:
    return orb.encode(orb.features(picture))


def test_the_writer_checks_new_photos_and_copies_join_the_high_tier(library: Library) -> None:
    # cosine 0.4 to the shot: candidates (>= 0.30), below the graph's floor and every tier
    e = np.eye(3, dtype=np.float32)
    vectors = np.stack([e[0], 0.4 * e[0] + np.sqrt(0.84) * e[1], 0.4 * e[0] + np.sqrt(0.84) * e[2]])
    coffee = Image.fromarray(skdata.coffee()).resize((340, 340))
    library.write("u1", "test-model", ["shot.jpg"], vectors[:1], features=[_packed(SHOT)])
    crops = [_packed(crop((160, 140, 380, 360))), _packed(coffee)]
    library.write("u1", "test-model", ["crop.jpg", "coffee.jpg"], vectors[1:], features=crops)
    assert library.copies.read("u1") == Verified(frozenset({("crop.jpg", "shot.jpg")}))
    high = library.clusters("u1").tiers[-1].groups
    assert high == [["crop.jpg", "shot.jpg"]] or high == [["shot.jpg", "crop.jpg"]]
    # a reader rebuilding the graph (stale, reindexed) keeps the copy
    library.graphs.path("u1").unlink()
    assert len(Library.from_settings(library.settings).clusters("u1").tiers[-1].groups) == 1
    assert len(library.reindex("u1").edge_u) == 1
    # replaced by a photo without features: its old pair and features go
    library.write("u1", "test-model", ["crop.jpg"], vectors[1:2] * 0.9 + 0.01, features=[None])
    assert library.copies.read("u1") == Verified()
    assert library.clusters("u1").tiers[-1].groups == []
    # deleted: its features file goes too
    assert len(list(library.copies.folder("u1").iterdir())) == 2
    library.delete("u1", ["coffee.jpg"])
    assert len(list(library.copies.folder("u1").iterdir())) == 1


def test_another_shot_joins_its_scene_at_the_medium_tier_and_not_the_high(
    library: Library,
) -> None:
    # the shot and a crop of it are copies; another shot (the camera moved) matches the
    # crop's copy group as one scene; their vectors alone (cosine 0.4) join nothing
    e = np.eye(4, dtype=np.float32)
    far = [0.4 * e[0] + np.sqrt(0.84) * e[k] for k in (1, 2, 3)]
    vectors = np.stack([e[0], far[0], far[1]])
    shots = [SHOT, crop((160, 140, 380, 360)), crop((0, 0, 384, 384))]
    names = ["shot.jpg", "crop.jpg", "other-shot.jpg"]
    library.write("u1", "test-model", names, vectors, features=[_packed(p) for p in shots])
    pairs = library.copies.read("u1")
    assert pairs.copies == {("crop.jpg", "shot.jpg")}
    assert ("other-shot.jpg", "shot.jpg") in pairs.scenes
    tiers = {t.name: t for t in library.clusters("u1").tiers}
    assert [sorted(g) for g in tiers["medium"].groups] == [sorted(names)]
    assert [sorted(g) for g in tiers["high"].groups] == [["crop.jpg", "shot.jpg"]]
    graph = library.graphs.fresh("u1", edges=True)
    assert graph is not None
    assert graph.params.scene_similarity == check.scene_similarity(
        tiers["medium"].threshold, tiers["high"].threshold
    )
    # a pair scores the same from the graph and computed on demand below its floor
    floor = graph.floor
    from_graph = {(p.a, p.b): p.score for p in library.pairs("u1", floor).pairs}
    on_demand = {(p.a, p.b): p.score for p in library.pairs("u1", 0.0).pairs if p.score >= floor}
    assert from_graph == on_demand and len(from_graph) == 2
    assert max(from_graph.values()) == np.float32(graph.params.copy_similarity)
    library.delete("u1", ["shot.jpg"])  # its pairs go with it
    assert library.copies.read("u1") == Verified()
    assert library.clusters("u1").tiers[1].groups == []


def test_a_copies_file_of_the_first_format_reads_as_copies_only(library: Library) -> None:
    path = library.copies.path("u1")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('{"format": 1, "copies": [["a.jpg", "b.jpg"]]}')
    assert library.copies.read("u1") == Verified(frozenset({("a.jpg", "b.jpg")}))
    for bad in ('{"format": 3, "copies": []}', '{"format": 2, "copies": [["a"]]}', "[]"):
        path.write_text(bad)
        with pytest.raises(StoreCorrupt):
            library.copies.read("u1")


def test_unreadable_stored_features_only_skip_the_check(library: Library) -> None:
    vectors = np.array([[1, 0], [0.9, np.sqrt(0.19)]], dtype=np.float32)
    library.write("u1", "test-model", ["a.jpg"], vectors[:1], features=[_packed(SHOT)])
    (stored,) = library.copies.folder("u1").iterdir()
    stored.write_bytes(b"damaged")
    library.write("u1", "test-model", ["b.jpg"], vectors[1:], features=[_packed(SHOT)])
    assert library.copies.read("u1") == Verified()
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
    assert library.copies.read("u1") == Verified(frozenset({("crop.jpg", "shot.jpg")}))
    assert sorted(library.clusters("u1").tiers[-1].groups[0]) == ["crop.jpg", "shot.jpg"]
    assert library.graphs.fresh("u1", edges=True) is not None
    assert library.copies.stored("u1", "crop.jpg") == orb.kept(cropped)
    calls = []
    monkeypatch.setattr(library.copies, "_check", lambda *a: calls.append(a) or Verified())
    library.write("u1", "test-model", ["crop.jpg"], vectors[1:], features=[cropped])
    assert calls == []  # a duplicate delivery, once kept, checks nothing again


def test_the_ratio_test_keeps_the_matches_opencv_gave_in_both_directions() -> None:
    """faiss's two nearest and the ratio test replace OpenCV's knnMatch: the same matches,
    in the same order, so RANSAC samples the same points."""
    import cv2

    a = orb.features(SHOT).plain
    b = orb.features(crop((160, 140, 380, 360))).plain
    assert a.descriptors is not None and b.descriptors is not None
    for query, train in ((a.descriptors, b.descriptors), (b.descriptors, a.descriptors)):
        pairs = cv2.BFMatcher(cv2.NORM_HAMMING).knnMatch(query, train, k=2)
        expected = [
            (p[0].queryIdx, p[0].trainIdx)
            for p in pairs
            if len(p) == 2 and p[0].distance < check.RATIO * p[1].distance
        ]
        rows, columns = check.ratio_matches(query, train)
        assert list(zip(rows.tolist(), columns.tolist(), strict=True)) == expected
        assert len(expected) >= check.MIN_INLIERS
    assert check.ratio_matches(a.descriptors, b.descriptors[:1])[0].size == 0  # one: none


def brute_force_ratio(queries: np.ndarray, trains: np.ndarray) -> list[tuple[int, int]]:
    """The ratio test by definition: every Hamming distance, each row's two smallest."""
    bits = np.unpackbits(queries[:, None, :] ^ trains[None, :, :], axis=2).sum(axis=2)
    found = []
    for row, distances in enumerate(bits):
        order = np.argsort(distances, kind="stable")
        first, second = distances[order[0]], distances[order[1]]
        if first < check.RATIO * second:
            found.append((row, int(order[0])))
    return found


@given(
    st.integers(2, 40),
    st.integers(2, 40),
    st.integers(0, 2**32 - 1),
)
@settings(max_examples=60, deadline=None)
def test_the_ratio_test_is_the_brute_force_one_with_ties_and_near_copies(
    n_queries: int, n_trains: int, seed: int
) -> None:
    """Ties (equal distances) never pass; a unique nearest is the one found, whatever the
    kernel: random descriptors, some trains near copies of queries, some repeated."""
    rng = np.random.default_rng(seed)
    queries = rng.integers(0, 256, (n_queries, 32), dtype=np.uint8)
    trains = rng.integers(0, 256, (n_trains, 32), dtype=np.uint8)
    near = min(n_queries, n_trains) // 2
    flips = (rng.random((near, 32, 8)) < 0.03).astype(np.uint8)
    trains[:near] = queries[:near] ^ np.packbits(flips, axis=2)[..., 0]
    if n_trains > near + 1:
        trains[near + 1] = trains[near]  # a repeated point: a tie for whoever is nearest it
    rows, columns = check.ratio_matches(queries, trains)
    assert list(zip(rows.tolist(), columns.tolist(), strict=True)) == brute_force_ratio(
        queries, trains
    )


def test_a_photo_is_checked_against_its_most_similar_candidates_only(
    library: Library, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At most CANDIDATES candidates, most similar first: a copy ranked past them is not
    checked (in a library of a few topics with many shots, every candidate is related, and
    each costs a check)."""
    from photocluster.library import copies as user_copies

    monkeypatch.setattr(user_copies, "CANDIDATES", 6)  # 16 unrelated pictures less
    coffee = Image.fromarray(skdata.coffee()).resize((340, 340))
    others = [coffee.rotate(angle) for angle in (90, 180, 270)] + [
        Image.fromarray(skdata.chelsea()).resize((340, 340)),
        Image.fromarray(skdata.rocket()).resize((340, 340)),
        Image.fromarray(skdata.immunohistochemistry()).resize((340, 340)),
        ImageOps.grayscale(coffee).convert("RGB"),
    ]
    rng = np.random.default_rng(0)
    base = rng.standard_normal(64).astype(np.float32)
    base /= np.linalg.norm(base)

    def at(cosine: float) -> np.ndarray:
        noise = rng.standard_normal(64).astype(np.float32)
        noise -= noise.dot(base) * base
        noise /= np.linalg.norm(noise)
        return cosine * base + np.sqrt(1 - cosine**2) * noise

    # the unrelated photos are the new photo's nearest (0.8 down), its copy the farthest (0.5)
    ids = [f"other{i}.jpg" for i in range(len(others))] + ["shot.jpg"]
    vectors = np.stack([at(0.8 - 0.01 * i) for i in range(len(others))] + [at(0.5)])
    library.write("u1", "test-model", ids, vectors, features=[_packed(p) for p in [*others, SHOT]])
    assert len(others) > user_copies.CANDIDATES
    new = base[None]
    library.write(
        "u1", "test-model", ["crop.jpg"], new, features=[_packed(crop((160, 140, 380, 360)))]
    )
    found = library.copies.read("u1")
    assert not [p for p in found.copies | found.scenes if "crop.jpg" in p]  # shot: 8th
    library.write("u1", "test-model", ["again.jpg"], vectors[-1:], features=[_packed(SHOT)])
    assert ("again.jpg", "shot.jpg") in library.copies.read("u1").copies  # its nearest: found


def test_a_write_says_what_its_check_and_graph_cost(library: Library) -> None:
    e = np.eye(2, dtype=np.float32)
    library.write("u1", "test-model", ["shot.jpg"], e[:1], features=[_packed(SHOT)])
    cropped = _packed(crop((160, 140, 380, 360)))
    result = library.write(
        "u1", "test-model", ["crop.jpg"], (0.6 * e[0] + 0.8 * e[1])[None], features=[cropped]
    )
    assert set(result.cpu_ms) == {"store", "copy_check", "graph"}
    assert result.cpu_ms["copy_check"] > 0 and all(ms >= 0 for ms in result.cpu_ms.values())
