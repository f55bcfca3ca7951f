"""A photo's coarse layout, in the spirit of a perceptual hash (pHash), as a unit vector.

Grayscale, squashed to 32x32, 2-D DCT; the lowest 10x10 frequencies less the constant term,
each set to +1 or -1 by whether it is above their median, then scaled to unit length. The
cosine of two such vectors is a linear function of the Hamming distance of the signs.
Grayscale, squashing and the low frequencies make it indifferent to what a CNN's pooled
features are most disturbed by (heavy JPEG, grayscale, blur, a thumbnail scaled back up),
and the spatial frequencies make it sensitive to what the CNN pools away: where things are
in the frame, which tells another shot of a scene from an edit of one photo.

:func:`fuse` weights it beside an encoder's vector so that one cosine of the concatenation
is ``(1 - w) * cos_encoder + w * cos_layout``. Plain numpy on the decoded picture, so the
torch and ONNX runtimes produce the same fused vectors.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from PIL import Image

#: Side of the grayscale square the DCT runs on.
LAYOUT_SIDE = 32
#: The lowest frequencies kept along each axis.
LAYOUT_FREQUENCIES = 10
#: Length of the descriptor: the kept block less its constant (DC) term.
LAYOUT_DIM = LAYOUT_FREQUENCIES * LAYOUT_FREQUENCIES - 1


def _dct_matrix(n: int) -> npt.NDArray[np.float64]:
    """The orthonormal DCT-II as a matrix: ``m @ x`` transforms the columns of ``x``."""
    frequency = np.arange(n)[:, None]
    position = np.arange(n)[None, :]
    matrix = np.cos(np.pi * (2 * position + 1) * frequency / (2 * n)) * np.sqrt(2 / n)
    matrix[0] /= np.sqrt(2)
    return np.asarray(matrix, dtype=np.float64)


_DCT = _dct_matrix(LAYOUT_SIDE)[:LAYOUT_FREQUENCIES]


def layout_vectors(images: Sequence[Image.Image]) -> npt.NDArray[np.float32]:
    """One unit descriptor per image, (len(images), LAYOUT_DIM)."""
    gray = np.empty((len(images), LAYOUT_SIDE, LAYOUT_SIDE), dtype=np.float64)
    for index, image in enumerate(images):
        small = image.convert("L").resize((LAYOUT_SIDE, LAYOUT_SIDE), Image.Resampling.BOX)
        gray[index] = np.asarray(small, dtype=np.float64)
    low = (_DCT @ gray @ _DCT.T).reshape(len(images), -1)[:, 1:]
    signs = np.where(low > np.median(low, axis=1, keepdims=True), 1.0, -1.0)
    return np.asarray(signs / np.sqrt(LAYOUT_DIM), dtype=np.float32)


def fuse(
    features: npt.NDArray[np.float32], layout: npt.NDArray[np.float32], weight: float
) -> npt.NDArray[np.float32]:
    """Unit ``features`` and unit ``layout`` side by side, scaled so that the cosine of two
    fused vectors is ``(1 - weight) * cos_features + weight * cos_layout``."""
    if not 0.0 < weight < 1.0:
        raise ValueError(f"the layout weight must be in (0, 1), got {weight}")
    fused = np.hstack([np.sqrt(1.0 - weight) * features, np.sqrt(weight) * layout])
    return np.asarray(fused, dtype=np.float32)
