"""An upload's object in S3: its bytes read within the size limit (what a failed read means
for the upload, by S3's error code), and the tag that lets the bucket's lifecycle rule
delete an upload that failed for good.
"""

from __future__ import annotations

import logging
from typing import Any

from photocluster.errors import ImageTooLarge
from photocluster.ingest.batch import Item, Outcome
from photocluster.ingest.events import ObjectRef

log = logging.getLogger(__name__)

#: What a failed S3 GetObject means for the upload, by error code (others: retry).
_S3_ERRORS: dict[str, tuple[Outcome, str]] = {
    "NoSuchKey": ("skipped", ""),
    "404": ("skipped", ""),
    "NotFound": ("skipped", ""),
    "AccessDenied": ("reported", "unreadable"),
    "403": ("reported", "unreadable"),
    "InvalidObjectState": ("reported", "unreadable"),
}
_GONE = "object no longer exists (deleted before ingest)"

#: The tag an object gets once its upload failed for good as one of REJECTED_CODES; the
#: bucket's lifecycle rule (Terraform's storage module) deletes such objects after
#: ``rejected_upload_days``. The image's status keeps saying why.
REJECTED_TAG = {"Key": "photocluster-status", "Value": "rejected"}
REJECTED_CODES = frozenset({"too_large", "invalid_image", "unsupported_type"})


def download(s3: Any, item: Item, max_bytes: int) -> bytes | None:
    """The object's bytes, or None with the item failed as S3's error says."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        response = s3.get_object(Bucket=item.ref.bucket, Key=item.ref.key)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        outcome, status_code = _S3_ERRORS.get(code, ("retry", ""))
        item.fail(outcome, _GONE if outcome == "skipped" else exc, status_code)
        return None
    except BotoCoreError as exc:
        item.fail("retry", exc)
        return None
    modified = response.get("LastModified")
    item.modified = modified.timestamp() if modified is not None else None
    item.etag = str(response.get("ETag", "")).strip('"') or None
    item.version_id = response.get("VersionId") or None
    return _read_body(item, response, max_bytes)


def _read_body(item: Item, response: dict[str, Any], max_bytes: int) -> bytes | None:
    """At most the size limit of the object's bytes (an oversized one is reported)."""
    from botocore.exceptions import BotoCoreError

    size = int(response.get("ContentLength") or 0)
    body = response["Body"]
    try:
        if size > max_bytes:
            too_large = ImageTooLarge(f"{size:,} bytes is over the limit of {max_bytes:,} bytes")
            item.fail("reported", too_large)
            return None
        return bytes(body.read(max_bytes + 1))
    except BotoCoreError as exc:
        item.fail("retry", exc)
        return None
    finally:
        body.close()


def mark_rejected(s3: Any, items: list[Item]) -> None:
    """Tag the objects of uploads that failed for good, so the lifecycle rule removes
    them: the version judged, else the object only while it still holds the bytes judged
    (same ETag as the download, or the event's): a photo put again since is not touched."""
    from botocore.exceptions import BotoCoreError, ClientError

    for item in items:
        ref = item.ref
        if ref.action != "upsert" or item.outcome == "retry" or item.code not in REJECTED_CODES:
            continue
        target = {"Bucket": ref.bucket, "Key": ref.key}
        version, etag = item.version_id or ref.version_id, item.etag or ref.etag
        try:
            if version and version != "null":
                target["VersionId"] = version
            elif etag is None or _etag(s3, ref) != etag:
                log.info("not tagging %s: not the object its event named", ref.key)
                continue
            s3.put_object_tagging(**target, Tagging={"TagSet": [REJECTED_TAG]})
        except (BotoCoreError, ClientError) as exc:  # it stays until deleted by hand
            log.warning("could not tag the rejected upload %s: %s", ref.key, exc)


def _etag(s3: Any, ref: ObjectRef) -> str | None:
    from botocore.exceptions import ClientError

    try:
        head = s3.head_object(Bucket=ref.bucket, Key=ref.key)
    except ClientError:
        return None
    return str(head.get("ETag", "")).strip('"') or None
