"""User and image id rules: the one implementation every path, key and route uses.

Ids become file names and S3 key parts, so they are restricted to a small character set
that cannot express a path (no ``/``, no ``\\``, no leading dot, so no ``..``), with a
bounded length that also fixes the width of the id field in the store's records.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from photocluster.errors import InvalidId

#: Longest allowed user id and image id, in characters (ASCII, so also in bytes).
USER_ID_MAX = 128
IMAGE_ID_MAX = 128

_ID_PATTERN = r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,%d}"
_USER_ID_RE = re.compile(_ID_PATTERN % (USER_ID_MAX - 1))
_IMAGE_ID_RE = re.compile(_ID_PATTERN % (IMAGE_ID_MAX - 1))

#: Image ids as the store and the graph hold them: fixed-width, NUL-padded ASCII.
IdArray = npt.NDArray[np.bytes_]
ID_DTYPE = f"S{IMAGE_ID_MAX}"

#: The same rule as a JSON-schema/OpenAPI pattern, for FastAPI path parameters.
USER_ID_REGEX = f"^{_USER_ID_RE.pattern}$"
IMAGE_ID_REGEX = f"^{_IMAGE_ID_RE.pattern}$"


def _check(kind: str, value: object, pattern: re.Pattern[str], max_len: int) -> str:
    if not isinstance(value, str):
        raise InvalidId(f"{kind} must be a string, got {type(value).__name__}")
    if not value:
        raise InvalidId(f"{kind} must not be empty")
    if len(value) > max_len:
        raise InvalidId(f"{kind} is {len(value)} characters long; the limit is {max_len}")
    if pattern.fullmatch(value) is None:
        shown = value if len(value) <= 40 else value[:40] + "..."
        raise InvalidId(
            f"{kind} {shown!r} is not allowed: use letters, digits, '.', '_' or '-', "
            "not starting with '.'"
        )
    return value


def validate_user_id(value: object) -> str:
    """Return ``value`` if it is a safe user id, else raise :class:`InvalidId`."""
    return _check("user id", value, _USER_ID_RE, USER_ID_MAX)


def validate_image_id(value: object) -> str:
    """Return ``value`` if it is a safe image id, else raise :class:`InvalidId`."""
    return _check("image id", value, _IMAGE_ID_RE, IMAGE_ID_MAX)


def is_valid_image_id(value: object) -> bool:
    """True when ``value`` passes :func:`validate_image_id`."""
    try:
        validate_image_id(value)
    except InvalidId:
        return False
    return True


def encode_ids(ids: Sequence[str]) -> IdArray:
    """Validate image ids and encode them into a fixed-width array (the store's id field)."""
    for image_id in ids:
        validate_image_id(image_id)
    return np.array([i.encode("ascii") for i in ids], dtype=ID_DTYPE)


def decode_ids(ids: IdArray) -> list[str]:
    """Python strings of a fixed-width id array (ASCII by validation)."""
    return [raw.decode("ascii") for raw in ids.tolist()]
