"""A photo's ORB features for the geometric check (:mod:`photocluster.clustering.copies`):
computed once by ingest from the picture it decoded, for the picture and its mirror image,
and packed for the writer's payload and the user's features folder (``{user_id}.pcf/``).
The packed format lives here alone: a header, the points (float32) and the descriptors,
for the plain and then the mirrored picture; the writer keeps the plain part (:func:`kept`).
OpenCV is imported only where features are computed or a check runs.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image

FloatArray = npt.NDArray[np.float32]

KEYPOINTS = 500  # 256 keep half the bytes but miss strong zooms (README, Quality)
#: FAST's contrast for a corner (OpenCV's default is 20): ORB keeps the strongest corners
#: anyway, and at 20 a smooth photo (a lake, a sky, a road in the rain) has almost none.
FAST_THRESHOLD = 5


@dataclass(frozen=True)
class Keypoints:
    points: FloatArray  # (n, 2), x and y in pixels
    descriptors: npt.NDArray[np.uint8] | None  # (n, 32), ORB's binary descriptors
    shape: tuple[int, int]  # height, width


@dataclass(frozen=True)
class Features:
    """A photo's keypoints, and its mirrored picture's."""

    plain: Keypoints
    mirrored: Keypoints


def features(picture: Image.Image) -> Features:
    """The picture's keypoints, and its mirror image's: the same corners, mirrored (the
    detector is symmetric: detecting them again cost two thirds of the whole), described
    anew on the mirrored picture (ORB's descriptor is not mirror-invariant)."""
    cv2 = opencv()
    gray = np.asarray(picture.convert("L"))
    orb = cv2.ORB_create(nfeatures=KEYPOINTS, fastThreshold=FAST_THRESHOLD)
    found, descriptors = orb.detectAndCompute(gray, None)
    plain = _described(found, descriptors, gray.shape)
    width = gray.shape[1]
    mirrored_points = [
        cv2.KeyPoint(
            width - 1 - k.pt[0], k.pt[1], k.size, (180.0 - k.angle) % 360.0, k.response, k.octave
        )
        for k in found
    ]
    kept, mirrored_descriptors = orb.compute(np.ascontiguousarray(gray[:, ::-1]), mirrored_points)
    return Features(plain, _described(kept, mirrored_descriptors, gray.shape))


def _described(
    found: Sequence[object], descriptors: npt.NDArray[np.uint8] | None, shape: tuple[int, ...]
) -> Keypoints:
    points = np.asarray(opencv().KeyPoint_convert(found), dtype=np.float32).reshape(-1, 2)
    return Keypoints(points, descriptors, (shape[0], shape[1]))


@functools.cache
def opencv() -> Any:
    """OpenCV, imported where a check runs, on the calling thread alone: callers already
    work on several photos at once, and its own threads only contended with them (and
    hid their CPU from the per-stage costs)."""
    import cv2

    cv2.setNumThreads(1)
    return cv2


_MAGIC = b"PCORB1"
_HEADER = struct.Struct("<6sHHI")  # magic, height, width, number of points
_POINT_BYTES = 8 + 32  # x, y as float32; ORB's descriptor
#: The most points one picture's packed features may hold (ORB keeps at most KEYPOINTS).
MAX_POINTS = 2 * KEYPOINTS
#: The largest packed features: the plain and the mirrored picture's.
MAX_PACKED_BYTES = 2 * (_HEADER.size + MAX_POINTS * _POINT_BYTES)


class InvalidFeatures(ValueError):
    """Bytes that are not a photo's packed features."""


def encode(found: Features) -> bytes:
    """The features packed: for the plain and the mirrored picture, a header, the points
    (float32) and the descriptors."""
    return b"".join(_pack(k) for k in (found.plain, found.mirrored))


def decode(data: bytes) -> Features:
    """The features :func:`encode` packed; InvalidFeatures for anything else."""
    plain, used = _unpack(data, 0)
    mirrored, used = _unpack(data, used)
    if used != len(data):
        raise InvalidFeatures(f"{len(data) - used} bytes after the features")
    return Features(plain, mirrored)


def kept(data: bytes) -> bytes:
    """What the writer keeps of packed features (:func:`encode`'s): the picture's own points
    (an earlier photo is matched against a new photo's picture and its mirror image)."""
    _, used = _unpack(data, 0)
    return data[:used]


def decode_kept(data: bytes) -> Keypoints:
    """The points :func:`kept` kept (or the picture's own, of features packed whole, as
    kept before)."""
    plain, used = _unpack(data, 0)
    if used != len(data):
        _, used = _unpack(data, used)
    if used != len(data):
        raise InvalidFeatures(f"{len(data) - used} bytes after the features")
    return plain


def _pack(keypoints: Keypoints) -> bytes:
    n = len(keypoints.points) if keypoints.descriptors is not None else 0
    header = _HEADER.pack(_MAGIC, *keypoints.shape, n)
    if n == 0:
        return header
    assert keypoints.descriptors is not None
    points = np.ascontiguousarray(keypoints.points, dtype="<f4").tobytes()
    return header + points + np.ascontiguousarray(keypoints.descriptors, dtype=np.uint8).tobytes()


def _unpack(data: bytes, start: int) -> tuple[Keypoints, int]:
    if len(data) < start + _HEADER.size:
        raise InvalidFeatures("truncated header")
    magic, height, width, n = _HEADER.unpack_from(data, start)
    if magic != _MAGIC or not height or not width or n > MAX_POINTS:
        raise InvalidFeatures("not photocluster ORB features")
    start += _HEADER.size
    end = start + n * _POINT_BYTES
    if len(data) < end:
        raise InvalidFeatures("truncated points")
    points = np.frombuffer(data, "<f4", 2 * n, start).reshape(n, 2).astype(np.float32)
    descriptors = np.frombuffer(data, np.uint8, 32 * n, start + 8 * n).reshape(n, 32)
    return Keypoints(points, descriptors if n else None, (height, width)), end
