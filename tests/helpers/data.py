"""Synthetic embeddings with known group structure."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def grouped_vectors(
    rng: np.random.Generator,
    n_groups: int,
    group_size: int,
    n_singletons: int,
    dim: int,
    noise: float = 0.3,
) -> tuple[list[str], npt.NDArray[np.float32], list[int]]:
    """Unit vectors in tight groups around random centres plus unrelated singletons.

    Returns ids, vectors and the ground-truth group of each vector (-1 for singletons).
    """
    parts, truth = [], []
    for g in range(n_groups):
        centre = rng.standard_normal(dim)
        centre /= np.linalg.norm(centre)
        parts.append(centre + rng.normal(0, noise / np.sqrt(dim), (group_size, dim)))
        truth += [g] * group_size
    parts.append(rng.standard_normal((n_singletons, dim)))
    truth += [-1] * n_singletons
    vectors = np.concatenate(parts)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = [f"img-{i:05d}" for i in range(len(vectors))]
    return ids, vectors.astype(np.float32), truth
