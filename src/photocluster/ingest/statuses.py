"""What an upload's outcome means for its image's status, as the app reads it.

An image that will not be stored is recorded ``failed`` with a code; one that hit a
transient failure is ``pending`` (ingest saw it and will try again) until its last
receive, then ``failed``. The DLQ stays the operators' view; this is the app's.
"""

from __future__ import annotations

from typing import Any

from photocluster.ingest.batch import Item

#: Codes of the writer's refusals, by the error type it names (others: embed_failed).
WRITER_REFUSALS = {
    "ModelMismatch": "embed_failed",
    "DimensionMismatch": "embed_failed",
    "LibraryFull": "library_full",
}
#: The code of an image whose retries ran out (the message goes to the DLQ).
RETRIES_EXHAUSTED = "processing_failed"


def status_of(
    item: Item, receive_count: int, max_receives: int, now: float, grace_s: float
) -> dict[str, Any] | None:
    """The writer's ``record`` entry for ``item``, or None when the upsert or the delete
    already says it all (or there is nothing to say: an object deleted before ingest)."""
    if item.ref.action != "upsert" or item.outcome == "ok":
        return None
    if item.outcome == "skipped" and not item.code:  # deleted before ingest got to it
        return None
    entry: dict[str, Any] = {
        "image_id": item.ref.image_id,
        "key": item.ref.key,
        "modified": item.modified,
    }
    if item.outcome == "retry" and receive_count < max_receives:
        return entry | {"status": "pending", "expires": now + grace_s}
    code = RETRIES_EXHAUSTED if item.outcome == "retry" else item.code
    return entry | {"status": "failed", "error": {"code": code, "message": item.reason[:2000]}}
