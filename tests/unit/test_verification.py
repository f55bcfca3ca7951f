"""The geometric check (README, Quality): a copy lies inside its original or covers it;
another shot sticks out of it."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageOps
from skimage import data as skdata

from photocluster.clustering.graph import GraphParams, build_graph
from photocluster.ids import encode_ids
from photocluster.quality import verification as check
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
