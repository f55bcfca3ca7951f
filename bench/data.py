"""A synthetic photo library with the structure the benchmarks need.

Real libraries are mostly unrelated photos plus bursts and near-duplicates, with loose
"topics" (the beach, the cat) in between. Vectors: a unit topic direction (200 topics),
plus per-image noise; a third of the images come in bursts of 2-8 near-duplicates of one
shot. Similarities then span 0 (unrelated) to ~0.98 (near-duplicates), like real encoders.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def library(n: int, dim: int = 768, seed: int = 0) -> tuple[list[str], npt.NDArray[np.float32]]:
    rng = np.random.default_rng(seed)
    topics = rng.standard_normal((200, dim))
    topics /= np.linalg.norm(topics, axis=1, keepdims=True)
    vectors = []
    while len(vectors) < n:
        topic = topics[rng.integers(len(topics))]
        shot = 0.55 * topic + rng.standard_normal(dim) / np.sqrt(dim)
        burst = int(rng.integers(2, 9)) if rng.random() < 0.12 else 1
        for _ in range(burst):
            vectors.append(shot + rng.uniform(0.1, 0.6) * rng.standard_normal(dim) / np.sqrt(dim))
    matrix = np.asarray(vectors[:n])
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    return [f"img-{i:06d}" for i in range(n)], matrix.astype(np.float32)
