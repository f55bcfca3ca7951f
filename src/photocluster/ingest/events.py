"""Ingest events -> typed requests: S3 notifications (via SQS) and backfill messages.

Key layout: ``{prefix}{user_id}/{filename}``. The user id is the caller's identity and
must already satisfy the id rules; the image id is a pure function of the file name
(:func:`photocluster.ids.image_id_for_filename`), so every path (the upload route, ingest,
removal, the gallery) maps a key to the same id, and two keys never share one.
"""

from __future__ import annotations

import json
import unicodedata
import urllib.parse
from dataclasses import dataclass, replace
from typing import Any, Literal

from photocluster.errors import InvalidEvent, InvalidId, NotAnImageKey, UnsupportedImage
from photocluster.ids import filename_of_image_id, image_id_for_filename, validate_user_id
from photocluster.ingest.images import MEDIA_TYPES, media_type_of

#: S3's limit on a key's length, in UTF-8 bytes.
KEY_MAX_BYTES = 1024


@dataclass(frozen=True)
class ObjectRef:
    """One object event: which object, whose, which image, created or removed.

    ``media_type`` is the image type its extension names, None when the extension is not
    one we accept (the upload is then recorded as failed, ``unsupported_type``).
    """

    bucket: str
    key: str
    user_id: str
    image_id: str
    action: Literal["upsert", "delete"]
    size: int | None = None
    media_type: str | None = None
    etag: str | None = None  # of the object the event is about (S3 notifications)
    version_id: str | None = None  # in a versioned bucket


@dataclass(frozen=True)
class TestEvent:
    """The ``s3:TestEvent`` S3 sends when a notification is configured: acknowledged."""

    bucket: str


@dataclass(frozen=True)
class Unusable:
    """A record that cannot be ingested: skipped (NotAnImageKey) or reported (InvalidEvent)."""

    key: str | None
    error: NotAnImageKey | InvalidEvent


Parsed = ObjectRef | TestEvent | Unusable


def parse_key(
    bucket: str,
    key: str,
    prefix: str,
    action: Literal["upsert", "delete"] = "upsert",
    size: int | None = None,
) -> ObjectRef:
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
    image_id = image_id_for_filename(filename)
    return ObjectRef(bucket, key, user_id, image_id, action, size, media_type_of(filename))


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
    key = f"{prefix}{validate_user_id(user_id)}/{name}"
    if len(key.encode("utf-8")) > KEY_MAX_BYTES:
        raise InvalidEvent(f"filename is too long: S3 keys hold at most {KEY_MAX_BYTES} bytes")
    return key


def key_of_image(prefix: str, user_id: str, image_id: str, recorded: str | None) -> str | None:
    """The S3 key of the user's photo ``image_id``: as ``recorded`` (when it lies directly
    under the user's prefix), else the key an upload of the name the id spells would have
    had. None when neither names a key the upload layout allows: an id spelling a path
    (``a/../../bob/x.jpg``) or a name the upload route refuses names no object of the user."""
    folder = f"{prefix}{validate_user_id(user_id)}/"
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


def parse_body(body: str, prefix: str) -> list[Parsed]:
    """The events in one SQS message body (an S3 notification or a backfill message), one
    per record; a record that cannot be used comes back as :class:`Unusable`."""
    try:
        document = json.loads(body)
    except ValueError:
        return [Unusable(None, InvalidEvent(f"message body is not JSON: {body[:80]!r}"))]
    if not isinstance(document, dict):
        return [Unusable(None, InvalidEvent("message body is not a JSON object"))]
    if document.get("Event") == "s3:TestEvent":
        return [TestEvent(str(document.get("Bucket", "")))]
    if "Records" in document:
        records = document["Records"]
        if not isinstance(records, list) or not records:
            return [Unusable(None, InvalidEvent("S3 notification without records"))]
        return [_guard(lambda r=record: parse_record(r, prefix), record) for record in records]
    if "bucket" in document and "key" in document:  # backfill
        bucket, key = document["bucket"], document["key"]
        if not isinstance(bucket, str) or not isinstance(key, str):
            return [Unusable(None, InvalidEvent("backfill message needs string bucket and key"))]
        return [_guard(lambda: parse_key(bucket, key, prefix), {"key": key})]
    return [Unusable(None, InvalidEvent("neither an S3 notification nor a backfill message"))]


def _guard(parse: Any, record: Any) -> Parsed:
    try:
        return parse()  # type: ignore[no-any-return]
    except (NotAnImageKey, InvalidEvent) as exc:
        return Unusable(_key_of(record), exc)


def _key_of(record: Any) -> str | None:
    """The (decoded) key of a record, for reports about it."""
    if not isinstance(record, dict):
        return None
    if isinstance(record.get("key"), str):
        return str(record["key"])
    raw = record.get("s3", {}).get("object", {}).get("key")
    return urllib.parse.unquote_plus(raw) if isinstance(raw, str) else None


def parse_record(record: Any, prefix: str) -> ObjectRef:
    """One S3 notification record -> ObjectRef (keys arrive URL-encoded, '+' is a space)."""
    try:
        event_name = str(record["eventName"])
        bucket = str(record["s3"]["bucket"]["name"])
        raw_key = str(record["s3"]["object"]["key"])
        size = record["s3"]["object"].get("size")
        etag = record["s3"]["object"].get("eTag")
        version_id = record["s3"]["object"].get("versionId")
    except (KeyError, TypeError, AttributeError) as exc:
        raise InvalidEvent(f"S3 record without {exc}") from exc
    key = urllib.parse.unquote_plus(raw_key)
    if event_name.startswith("ObjectCreated:"):
        action: Literal["upsert", "delete"] = "upsert"
    elif event_name.startswith("ObjectRemoved:"):
        action = "delete"
    else:
        raise InvalidEvent(f"unexpected S3 event {event_name!r}")
    ref = parse_key(bucket, key, prefix, action, int(size) if size is not None else None)
    return replace(
        ref,
        etag=str(etag) if etag else None,
        version_id=str(version_id) if version_id and version_id != "null" else None,
    )


def backfill_body(bucket: str, key: str) -> str:
    """The SQS message body the backfill path sends for one existing object."""
    return json.dumps({"bucket": bucket, "key": key})
