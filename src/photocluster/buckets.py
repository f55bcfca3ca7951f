"""Our S3 buckets: the uploads' key layout, parsed and built in this one place, and the
privacy every bucket we create gets.

Key layout: ``{prefix}{user_id}/{filename}``. The user id is the caller's identity and
must already satisfy the id rules; the image id is a pure function of the file name
(:func:`photocluster.ids.image_id_for_filename`), so every path (the upload route, ingest,
removal, the gallery, backfill) maps a key to the same id, and two keys never share one.
"""

from __future__ import annotations

import unicodedata
from typing import Any, NamedTuple

from photocluster.errors import InvalidEvent, InvalidId, NotAnImageKey, UnsupportedImage
from photocluster.ids import filename_of_image_id, image_id_for_filename, validate_user_id
from photocluster.images import MEDIA_TYPES, media_type_of

#: S3's limit on a key's length, in UTF-8 bytes.
KEY_MAX_BYTES = 1024


class UploadName(NamedTuple):
    """What an upload's key says: whose photo, which image, which type (None: an extension
    we do not accept)."""

    user_id: str
    image_id: str
    media_type: str | None


def user_folder(prefix: str, user_id: str) -> str:
    """``{prefix}{user_id}/``: where a user's uploads are, and nothing else is."""
    return f"{prefix}{validate_user_id(user_id)}/"


def parse_upload_key(key: str, prefix: str) -> UploadName:
    """Validate an object key against the upload layout and derive the ids."""
    if not key.startswith(prefix):
        raise NotAnImageKey(f"key {key!r} is outside the upload prefix {prefix!r}")
    parts = key[len(prefix) :].split("/")
    if len(parts) != 2 or not parts[1]:
        raise NotAnImageKey(f"key {key!r} is not {prefix}{{user_id}}/{{filename}}")
    user_part, filename = parts
    try:
        user_id = validate_user_id(user_part)
    except InvalidId as exc:
        raise InvalidEvent(f"key {key!r}: {exc}") from exc
    return UploadName(user_id, image_id_for_filename(filename), media_type_of(filename))


def file_name(key: str) -> str:
    """The file name an upload's key ends with (what a message about it shows)."""
    return key.rsplit("/", 1)[-1]


#: Characters a filename may not hold: control (Cc: C0, DEL, C1 such as U+0085), format
#: (Cf: bidirectional overrides such as U+202E, zero-width characters, the BOM), surrogates
#: (Cs), line and paragraph separators (Zl, Zp). They hide or reorder what a name shows.
HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def upload_key(prefix: str, user_id: str, filename: str, content_type: str) -> str:
    """The key a new upload of ``filename`` goes to (its NFC spelling), once the name and
    the declared content type are known to be an accepted image that S3 can hold."""
    name = unicodedata.normalize("NFC", filename)
    if not name.strip() or name in (".", ".."):
        raise InvalidEvent("filename must name a file")
    if "/" in name or "\\" in name:
        raise InvalidEvent("filename must not hold '/' or '\\'")
    hidden = next((c for c in name if unicodedata.category(c) in HIDDEN_CATEGORIES), None)
    if hidden is not None:
        raise InvalidEvent(
            f"filename must not hold control or format characters (U+{ord(hidden):04X}, "
            f"Unicode category {unicodedata.category(hidden)})"
        )
    media_type = media_type_of(name)
    if media_type is None:
        accepted = ", ".join(f".{ext}" for ext in MEDIA_TYPES)
        raise UnsupportedImage(f"{filename!r} is not a photo we accept: use a {accepted} file")
    if content_type.lower() != media_type:
        raise UnsupportedImage(
            f"content type {content_type!r} does not match {filename!r}: send {media_type!r}"
        )
    key = f"{user_folder(prefix, user_id)}{name}"
    if len(key.encode("utf-8")) > KEY_MAX_BYTES:
        raise InvalidEvent(f"filename is too long: S3 keys hold at most {KEY_MAX_BYTES} bytes")
    return key


def key_of_image(prefix: str, user_id: str, image_id: str, recorded: str | None) -> str | None:
    """The S3 key of the user's photo ``image_id``: as ``recorded`` (when it lies directly
    under the user's prefix), else the key an upload of the name the id spells would have
    had. None when neither names a key the upload layout allows: an id spelling a path
    (``a/../../bob/x.jpg``) or a name the upload route refuses names no object of the user."""
    folder = user_folder(prefix, user_id)
    if recorded is not None:
        name = recorded.removeprefix(folder)
        return recorded if recorded.startswith(folder) and name and "/" not in name else None
    filename = filename_of_image_id(image_id)
    media_type = media_type_of(filename) if filename is not None else None
    if filename is None or media_type is None:
        return None
    try:
        return upload_key(prefix, user_id, filename, media_type)
    except (InvalidEvent, UnsupportedImage):
        return None


def block_public_access(s3: Any, bucket: str) -> None:
    """Refuse every public ACL and policy on ``bucket`` (the state, the emulator's uploads)."""
    s3.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
