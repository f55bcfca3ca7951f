"""One image's record as the catalog file holds it: a JSON object a line (the last line of
an image wins), and the parsing of those lines (:mod:`photocluster.store.catalog` keeps the
files; :mod:`photocluster.store.listing` indexes them)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np

log = logging.getLogger(__name__)

Status = Literal["pending", "ready", "failed", "deleted"]
STATUSES: tuple[Status, ...] = ("pending", "ready", "failed", "deleted")


class ImageError(NamedTuple):
    """Why an image failed: a stable ``code`` to branch on, a ``message`` for people."""

    code: str
    message: str


# A NamedTuple, not a dataclass: a cold read builds one per image (20,000 for a big
# library), and a tuple is built several times faster than a frozen dataclass.
class ImageRecord(NamedTuple):
    """What the catalog knows of one image.

    ``created`` is when the image was first recorded (its place in listings, kept across
    updates); ``expires`` (pending only) when an unused upload URL's record disappears;
    ``object_modified`` the S3 LastModified of the latest object the record knows of;
    ``deleted_modified`` that of the latest object deleted (events of it, or of older ones,
    arriving late must change nothing).
    """

    image_id: str
    status: Status
    key: str | None = None
    error: ImageError | None = None
    created: float = 0.0
    updated: float = 0.0
    expires: float | None = None
    object_modified: float | None = None
    deleted_modified: float | None = None

    def visible(self, now: float) -> bool:
        """Shown in listings: not a tombstone, not the record of an upload URL never used."""
        if self.status == "deleted":
            return False
        return not (self.status == "pending" and self.expires is not None and self.expires < now)

    def to_line(self) -> bytes:
        body = {k: v for k, v in self._asdict().items() if v is not None}
        if self.error is not None:
            body["error"] = self.error._asdict()
        return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ImageRecord:
        error = data.get("error")
        return cls(
            data["image_id"],
            data["status"],
            data.get("key"),
            ImageError(error["code"], error["message"]) if error else None,
            data.get("created", 0.0),
            data.get("updated", 0.0),
            data.get("expires"),
            data.get("object_modified"),
            data.get("deleted_modified"),
        )

    def then(self, new: ImageRecord) -> ImageRecord:
        """``new`` as the next record of this image: it keeps the creation time, and what
        the new record does not know (the key, the objects' times)."""
        deleted = [t for t in (self.deleted_modified, new.deleted_modified) if t is not None]
        return new._replace(
            created=self.created,
            key=new.key or self.key,
            object_modified=new.object_modified or self.object_modified,
            deleted_modified=max(deleted) if deleted else None,
        )

    def same_state(self, other: ImageRecord) -> bool:
        """Nothing but the times differ (a duplicate delivery, say)."""
        return (self.status, self.key, self.error, self.object_modified, self.expires) == (
            other.status,
            other.key,
            other.error,
            other.object_modified,
            other.expires,
        )


def last_line_of(data: bytes, image_id: str, path: Path) -> ImageRecord | None:
    """The record of the last readable line of ``image_id`` in ``data`` (complete lines,
    each after a newline), or None."""
    needle = b'\n{"image_id":' + json.dumps(image_id).encode() + b","
    end = len(data)
    while (at := data.rfind(needle, 0, end)) >= 0:
        record = parse_line(data[at + 1 : data.index(b"\n", at + 1)], path)
        if record is not None and record.image_id == image_id:
            return record
        end = at
    return None


def parse_lines(data: bytes, path: Path) -> list[ImageRecord]:
    try:  # one json.loads over the whole tail (one C call) instead of one per line
        items = json.loads(b"[" + data.rstrip(b"\n").replace(b"\n", b",") + b"]")
        return [ImageRecord.from_json(item) for item in items]
    except (ValueError, TypeError):
        return [record for line in data.splitlines() if (record := parse_line(line, path))]


def parse_with_offsets(data: bytes, path: Path) -> list[tuple[ImageRecord, int, int]]:
    """Each record of ``data`` (complete lines) with where its line starts and its length
    (without the newline); damaged lines are skipped."""
    ends = np.flatnonzero(np.frombuffer(data, np.uint8) == ord("\n"))
    starts = np.concatenate(([0], ends[:-1] + 1)) if len(ends) else ends
    lengths = ends - starts
    try:
        items = json.loads(b"[" + data.rstrip(b"\n").replace(b"\n", b",") + b"]")
        if len(items) == len(ends):
            records = [ImageRecord.from_json(item) for item in items]
            return list(zip(records, starts.tolist(), lengths.tolist(), strict=True))
    except (ValueError, TypeError):
        pass
    found = []
    for start, length in zip(starts.tolist(), lengths.tolist(), strict=True):
        record = parse_line(data[start : start + length], path)
        if record is not None:
            found.append((record, start, length))
    return found


def parse_line(line: bytes, path: Path) -> ImageRecord | None:
    try:
        return ImageRecord.from_json(json.loads(line))
    except (ValueError, TypeError):
        log.warning("catalog %s: skipping a damaged line", path)
        return None
