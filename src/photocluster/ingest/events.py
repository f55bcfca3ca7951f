"""Ingest events -> typed requests: S3 notifications (via SQS) and backfill messages.

Key layout: ``{prefix}{user_id}/{stem}.{ext}``. The user id is the caller's identity and
must already satisfy the id rules; the image id is the stem when that is a valid id, and
otherwise a deterministic safe id derived from it (``Beach day é`` ->
``Beach-day-e-5c1f03a9d2``), so photos with spaces or accents in their names are ingested
and every path (upload, removal, gallery) maps a key to the same id.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
import urllib.parse
from dataclasses import dataclass
from typing import Any, Literal

from photocluster.errors import InvalidEvent, InvalidId, NotAnImageKey
from photocluster.ids import IMAGE_ID_MAX, is_valid_image_id, validate_user_id
from photocluster.ingest.images import IMAGE_EXTENSIONS


@dataclass(frozen=True)
class ObjectRef:
    """One object event: which object, whose, which image, created or removed."""

    bucket: str
    key: str
    user_id: str
    image_id: str
    action: Literal["upsert", "delete"]
    size: int | None = None


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


def image_id_for_stem(stem: str) -> str:
    """The image id of a file stem: the stem itself when valid, else a safe derived id."""
    if is_valid_image_id(stem):
        return stem
    ascii_stem = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", ascii_stem).strip(".-")[: IMAGE_ID_MAX - 12]
    digest = hashlib.blake2b(stem.encode("utf-8"), digest_size=5).hexdigest()
    return f"{slug}-{digest}" if slug else digest


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
        raise NotAnImageKey(f"key {key!r} is not {prefix}{{user_id}}/{{image}}.{{ext}}")
    user_part, filename = parts
    try:
        user_id = validate_user_id(user_part)
    except InvalidId as exc:
        raise InvalidEvent(f"key {key!r}: {exc}") from exc
    stem, dot, ext = filename.rpartition(".")
    if not dot or not stem:
        raise NotAnImageKey(f"key {key!r} has no file extension")
    if ext.lower() not in IMAGE_EXTENSIONS:
        raise NotAnImageKey(
            f"key {key!r}: extension .{ext} is not an image type we accept "
            f"({', '.join(sorted(IMAGE_EXTENSIONS))})"
        )
    return ObjectRef(bucket, key, user_id, image_id_for_stem(stem), action, size)


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
    except (KeyError, TypeError) as exc:
        raise InvalidEvent(f"S3 record without {exc}") from exc
    key = urllib.parse.unquote_plus(raw_key)
    if event_name.startswith("ObjectCreated:"):
        action: Literal["upsert", "delete"] = "upsert"
    elif event_name.startswith("ObjectRemoved:"):
        action = "delete"
    else:
        raise InvalidEvent(f"unexpected S3 event {event_name!r}")
    return parse_key(bucket, key, prefix, action, int(size) if size is not None else None)


def backfill_body(bucket: str, key: str) -> str:
    """The SQS message body the backfill path sends for one existing object."""
    return json.dumps({"bucket": bucket, "key": key})
