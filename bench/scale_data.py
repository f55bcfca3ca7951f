"""A user's library shaped like a real one, at any size: seeded unit vectors (issue 28).

A library is topics (the beach trip, the cat, the garden): ordinary topics of 25-75 shots,
plus a few very large ones, and within every topic a share of its photos taken as bursts
of 2-8 near-duplicates. Each photo's vector is a sum of unit directions, then normalised::

    sqrt(g) * G  +  sqrt(t) * T[topic]  +  sqrt(1 - g - t) * S[shot]  (+ c * E[photo] in a burst)

G is shared by every photo (``g`` = 0.10: unrelated photos are not orthogonal either), T is
the topic's direction (``t`` drawn per topic so that two shots of a topic score 0.40-0.50),
S is the shot's own, and a burst's members are one shot plus a little noise of their own
(``c**2`` drawn per burst in [0.02, 0.09], so that its members score 1 / (1 + c**2)).

Measured with :func:`measure_cosines` (5,000 pairs each, shape ``typical``, N = 20,000,
dim = 1,379, seed 0; the other shapes within 0.01; the unit test checks these ranges at a
smaller N), cosine of two photos:

==============================  ======  ======  ======
pair                            p5      median  p95
==============================  ======  ======  ======
same burst                      0.921   0.947   0.977
same topic, different shots     0.387   0.447   0.499
different topics                0.058   0.101   0.144
==============================  ======  ======  ======

The lowest of every consecutive pair in a burst is 0.906 at N = 100,000 (every shape).
The ``efficientnet-lite0-layout`` tiers (0.38 / 0.46 / 0.56, graph floor 0.33) therefore see
topics at the low tier, bursts at every tier, and no pair across topics in the graph.
Photos are in upload order: a burst's members are consecutive, topics interleave.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

#: Length of the local stack's default model's vectors (``efficientnet-lite0-layout``:
#: 1,280 pooled features + 99 layout terms, ``photocluster.embedder.efficientnet.vector_dim``).
DIM = 1379
#: Cosine of two unrelated photos (the shared direction's weight).
BACKGROUND = 0.10
#: Cosine of two shots of one topic, drawn per topic.
TOPIC_COSINE = (0.40, 0.50)
#: A burst member's own noise, squared, drawn per burst: members score 1 / (1 + c**2).
BURST_NOISE2 = (0.02, 0.09)
#: Photos generated per chunk (bounds the temporary memory at any N).
_CHUNK_UNITS = 4096


@dataclass(frozen=True)
class Shape:
    """How a library's photos split into topics and bursts."""

    name: str
    summary: str
    topic_size: tuple[int, int] = (25, 75)  # ordinary topics, inclusive
    big_per_100k: float = 3.0  # very large topics per 100,000 photos (at least one)
    big_size: tuple[int, int] = (500, 3000)
    big_share_max: float = 0.08  # the very large topics together hold at most this share
    burst_share: float = 0.2  # of every topic's photos
    burst_size: tuple[int, int] = (2, 8)


SHAPES: dict[str, Shape] = {
    shape.name: shape
    for shape in (
        Shape("typical", "topics of ~50, 3 topics of 500-3,000 per 100k, a fifth in bursts"),
        Shape(
            "big-topics",
            "5 topics of 3,000-4,000 per 100k (at most 20% of N), the rest as typical",
            big_per_100k=5.0,
            big_size=(3000, 4000),
            big_share_max=0.2,
        ),
        Shape("bursty", "as typical, but 60% of every topic in bursts", burst_share=0.6),
    )
}


@dataclass(frozen=True)
class ScaleLibrary:
    """Ids, unit vectors (float32), and the labels that made them (for checks)."""

    ids: list[str]
    vectors: npt.NDArray[np.float32]
    topic: npt.NDArray[np.int64]  # topic of each photo; topics 0..n_big-1 are the big ones
    burst: npt.NDArray[np.int64]  # the burst each photo belongs to, or -1


def image_id(index: int) -> str:
    """``img-000123``: the ids of a generated library."""
    return f"img-{index:06d}"


def generate(n: int, shape: str | Shape = "typical", dim: int = DIM, seed: int = 0) -> ScaleLibrary:
    """A library of ``n`` photos of ``shape``; the same arguments give the same library."""
    spec = SHAPES[shape] if isinstance(shape, str) else shape
    rng = np.random.default_rng(seed)
    sizes = _topic_sizes(n, spec, rng)
    unit_topic, unit_size, unit_burst = _units(sizes, spec, rng)
    order = rng.permutation(len(unit_size))
    unit_topic, unit_size, unit_burst = unit_topic[order], unit_size[order], unit_burst[order]
    vectors = _vectors(dim, len(sizes), unit_topic, unit_size, unit_burst, rng)
    photo_unit = np.repeat(np.arange(len(unit_size)), unit_size)
    burst = np.where(unit_burst[photo_unit] > 0, photo_unit, -1)
    return ScaleLibrary(
        [image_id(i) for i in range(n)], vectors, unit_topic[photo_unit].astype(np.int64), burst
    )


def _topic_sizes(n: int, spec: Shape, rng: np.random.Generator) -> list[int]:
    """The big topics' sizes first, then ordinary topics until ``n`` photos."""
    count = max(1, round(spec.big_per_100k * n / 100_000))
    big = rng.integers(spec.big_size[0], spec.big_size[1] + 1, size=count).astype(float)
    cap = spec.big_share_max * n
    if big.sum() > cap:
        big *= cap / big.sum()
    sizes = [max(1, int(s)) for s in big]
    left = n - sum(sizes)
    while left > 0:
        size = min(left, int(rng.integers(spec.topic_size[0], spec.topic_size[1] + 1)))
        sizes.append(size)
        left -= size
    return sizes


def _units(
    sizes: list[int], spec: Shape, rng: np.random.Generator
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Shots of every topic: (topic, photos, burst noise c**2 or 0 for a single shot)."""
    topic, size, noise = [], [], []
    for index, photos in enumerate(sizes):
        in_bursts = round(spec.burst_share * photos)
        while in_bursts >= spec.burst_size[0]:
            burst = min(in_bursts, int(rng.integers(spec.burst_size[0], spec.burst_size[1] + 1)))
            topic.append(index)
            size.append(burst)
            noise.append(rng.uniform(*BURST_NOISE2))
            in_bursts -= burst
            photos -= burst
        topic += [index] * photos
        size += [1] * photos
        noise += [0.0] * photos
    return np.array(topic, np.int64), np.array(size, np.int64), np.array(noise)


def _vectors(
    dim: int,
    n_topics: int,
    unit_topic: npt.NDArray[np.int64],
    unit_size: npt.NDArray[np.int64],
    unit_noise: npt.NDArray[np.float64],
    rng: np.random.Generator,
) -> npt.NDArray[np.float32]:
    """The unit vectors, a chunk of shots at a time (module docstring's sum)."""
    shared = _directions(rng, 1, dim)[0]
    topics = _directions(rng, n_topics, dim)
    weight = rng.uniform(*TOPIC_COSINE, size=n_topics) - BACKGROUND
    out = np.empty((int(unit_size.sum()), dim), np.float32)
    start = 0
    for first in range(0, len(unit_size), _CHUNK_UNITS):
        chunk = slice(first, first + _CHUNK_UNITS)
        sizes = unit_size[chunk]
        shot_weight = np.sqrt(weight[unit_topic[chunk]])[:, None]
        shots = (
            math.sqrt(BACKGROUND) * shared
            + shot_weight * topics[unit_topic[chunk]]
            + np.sqrt(1 - BACKGROUND - shot_weight**2) * _directions(rng, len(sizes), dim)
        )
        photos = np.repeat(shots, sizes, axis=0)
        own = np.sqrt(np.repeat(unit_noise[chunk], sizes))[:, None]
        photos += own * _directions(rng, len(photos), dim)
        photos /= np.linalg.norm(photos, axis=1, keepdims=True)
        out[start : start + len(photos)] = photos
        start += len(photos)
    return out


def _directions(rng: np.random.Generator, n: int, dim: int) -> npt.NDArray[np.float32]:
    """``n`` random unit vectors (nearly orthogonal to each other at this ``dim``)."""
    vectors = rng.standard_normal((n, dim), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors


def new_photos(library: ScaleLibrary, count: int, seed: int) -> npt.NDArray[np.float32]:
    """``count`` photos to add, each another shot of a burst of an existing one (cosine
    about 0.95 to it)."""
    rng = np.random.default_rng(seed)
    rows = library.vectors[rng.integers(len(library.ids), size=count)]
    noise = _directions(rng, count, rows.shape[1])
    photos = rows + 0.22 * noise
    return np.asarray(photos / np.linalg.norm(photos, axis=1, keepdims=True), np.float32)


def measure_cosines(
    library: ScaleLibrary, pairs: int = 5000, seed: int = 1
) -> dict[str, tuple[float, float, float]]:
    """(p5, median, p95) of the cosine of random pairs: same burst, same topic but
    different shots, different topics."""
    rng = np.random.default_rng(seed)
    n = len(library.ids)
    shot = np.where(library.burst >= 0, library.burst, n + np.arange(n))
    in_burst = np.flatnonzero(library.burst >= 0)
    a = rng.choice(in_burst, pairs * 4) if len(in_burst) else np.zeros(0, np.int64)
    burst_b = _mate(rng, library.burst, a)
    a2 = rng.integers(n, size=pairs * 4)
    topic_b = _mate(rng, library.topic, a2)
    a3, b3 = rng.integers(n, size=(2, pairs * 4))
    kinds = {
        "same burst": (a, burst_b, a != burst_b),
        "same topic, different shots": (a2, topic_b, shot[a2] != shot[topic_b]),
        "different topics": (a3, b3, library.topic[a3] != library.topic[b3]),
    }
    out = {}
    for name, (left, right, keep) in kinds.items():
        i, j = left[keep][:pairs], right[keep][:pairs]
        scores = np.einsum("ij,ij->i", library.vectors[i], library.vectors[j])
        p5, median, p95 = np.percentile(scores, [5, 50, 95])
        out[name] = (float(p5), float(median), float(p95))
    return out


def _mate(
    rng: np.random.Generator, label: npt.NDArray[np.int64], a: npt.NDArray[np.int64]
) -> npt.NDArray[np.int64]:
    """A random photo with the same ``label`` (>= 0) as each of ``a`` (maybe itself)."""
    order = np.argsort(label, kind="stable")
    first = np.searchsorted(label[order], label[a], side="left")
    count = np.searchsorted(label[order], label[a], side="right") - first
    return order[first + (rng.random(len(a)) * count).astype(np.int64)]


if __name__ == "__main__":
    for name in SHAPES:
        lib = generate(20_000, name)
        print(name, {k: tuple(round(x, 3) for x in v) for k, v in measure_cosines(lib).items()})
