"""User and image id rules: the one implementation every path, key and route uses.

Ids become file names, S3 key parts and URL path segments, so they are restricted to a small
character set that cannot express a path (no ``/``, no ``\\``, no leading dot, so no
``..``), with a bounded length that also fixes the width of the id field in the store's
records. Image ids may also hold ``~``, the escape character of the rule that derives an
image id from the uploaded file's name (:func:`image_id_for_filename`).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from photocluster.errors import InvalidId

#: Longest allowed user id and image id, in characters (ASCII, so also in bytes).
USER_ID_MAX = 128
IMAGE_ID_MAX = 128

_USER_ID_RE = re.compile(rf"[A-Za-z0-9_-][A-Za-z0-9._-]{{0,{USER_ID_MAX - 1}}}")
_IMAGE_ID_RE = re.compile(rf"[A-Za-z0-9_~-][A-Za-z0-9._~-]{{0,{IMAGE_ID_MAX - 1}}}")

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
        extra = ", '~'" if pattern is _IMAGE_ID_RE else ""
        raise InvalidId(
            f"{kind} {shown!r} is not allowed: use letters, digits, '.', '_'{extra} or '-', "
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


def positions(ids: IdArray, names: Sequence[str]) -> npt.NDArray[np.int64]:
    """Where each of ``names`` sits in ``ids`` (-1 for a name not there)."""
    if not len(names) or not len(ids):
        return np.full(len(names), -1, dtype=np.int64)
    wanted = np.array([n.encode("ascii") for n in names], dtype=ID_DTYPE)
    order = np.argsort(ids, kind="stable")
    found = np.minimum(np.searchsorted(ids[order], wanted), len(ids) - 1)
    at = order[found]
    return np.where(ids[at] == wanted, at, -1).astype(np.int64)


# --------------------------------------------------------------------- file name -> image id

#: Characters a file name keeps as they are in its image id (a leading '.' is escaped).
_KEPT = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-")
#: A name whose escaped form is longer than the id limit keeps this much of it, then
#: ``~~`` and the first 32 hex digits of the SHA-256 of the whole name.
_CUT_PREFIX = IMAGE_ID_MAX - 2 - 32
_ESCAPE = re.compile(r"~([0-9A-F]{2})")


def image_id_for_filename(filename: str) -> str:
    """The image id of an uploaded file's name (the last part of its S3 key).

    The name is NFC-normalised (so its NFC and NFD spellings are one image), then every
    UTF-8 byte of a character outside ``A-Z a-z 0-9 . _ -``, and a leading ``.``, is
    written ``~XX`` (upper-case hex): ``IMG_0001.jpg`` -> ``IMG_0001.jpg``,
    ``Beach day é.jpg`` -> ``Beach~20day~20~C3~A9.jpg``. Two different names never share
    an id. An escaped name longer than 128 characters is cut at a character to at most 94
    and ends in ``~~`` and the first 32 hex digits of the SHA-256 of the whole NFC name
    (escaped names never hold ``~~``, so the two forms cannot meet).
    """
    name = unicodedata.normalize("NFC", filename)
    parts = [
        char if char in _KEPT and not (index == 0 and char == ".") else _escaped(char)
        for index, char in enumerate(name)
    ]
    image_id = "".join(parts)
    if len(image_id) <= IMAGE_ID_MAX:
        return image_id
    prefix = ""
    for part in parts:
        if len(prefix) + len(part) > _CUT_PREFIX:
            break
        prefix += part
    return f"{prefix}~~{hashlib.sha256(name.encode('utf-8')).hexdigest()[:32]}"


def filename_of_image_id(image_id: str) -> str | None:
    """The file name an image id was derived from; None for a cut (``~~``) id, whose
    name is only in the image's record, or an id no file name gives."""
    if "~~" in image_id:
        return None
    raw = _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), image_id).encode("latin-1")
    try:
        name = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return name if image_id_for_filename(name) == image_id else None


def _escaped(char: str) -> str:
    return "".join(f"~{byte:02X}" for byte in char.encode("utf-8"))
