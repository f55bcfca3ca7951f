"""Ingest events -> typed requests: S3 notifications (via SQS) and backfill messages.

The key layout (``{prefix}{user_id}/{filename}``, parsed and built) is
:mod:`photocluster.buckets`'s, which every path (the upload route, ingest, removal, the
gallery) uses, so each maps a key to the same image id.
"""

from __future__ import annotations

import json
import urllib.parse
from dataclasses import dataclass, replace
from typing import Any, Literal

from photocluster.buckets import parse_upload_key
from photocluster.errors import InvalidEvent, NotAnImageKey


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
    name = parse_upload_key(key, prefix)
    return ObjectRef(bucket, key, name.user_id, name.image_id, action, size, name.media_type)


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
