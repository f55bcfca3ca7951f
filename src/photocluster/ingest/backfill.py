"""Backfill: enqueue images already in the bucket, as if they had just been uploaded.

Lists ``{prefix}[{user}/]`` and sends one backfill message per image key to the ingest
queue, ten per SendMessageBatch call. With a state file it is resumable: the last key
sent is recorded after every batch and the next run starts after it. Keys that are not
image uploads are counted and skipped. In production the same messages can come from
API Gateway's ``POST /v1/ingest`` (an SQS service integration).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from photocluster.buckets import parse_upload_key, user_folder
from photocluster.errors import InvalidEvent, NotAnImageKey
from photocluster.ingest.events import backfill_body
from photocluster.store.files import write_file_unlocked

log = logging.getLogger(__name__)


@dataclass
class BackfillReport:
    listed: int = 0
    sent: int = 0
    skipped: int = 0
    failed: int = 0
    last_key: str | None = None
    failed_keys: list[str] = field(default_factory=list)


def _load_state(path: Path | None) -> BackfillReport:
    if path is None or not path.exists():
        return BackfillReport()
    data = json.loads(path.read_text())
    return BackfillReport(**{k: v for k, v in data.items() if k in BackfillReport.__annotations__})


def _save_state(path: Path | None, report: BackfillReport) -> None:
    if path is None:
        return
    write_file_unlocked(path, json.dumps(asdict(report)).encode())


def _keys(s3: Any, bucket: str, prefix: str, start_after: str | None) -> Iterator[str]:
    paginator = s3.get_paginator("list_objects_v2")
    kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
    if start_after:
        kwargs["StartAfter"] = start_after
    for page in paginator.paginate(**kwargs):
        for item in page.get("Contents", []):
            yield str(item["Key"])


def backfill(
    s3: Any,
    sqs: Any,
    bucket: str,
    queue_url: str,
    prefix: str = "uploads/",
    user: str | None = None,
    state_file: Path | None = None,
    limit: int | None = None,
    progress: bool = True,
) -> BackfillReport:
    """Send every image key under the prefix (or one user's) to the ingest queue."""
    list_prefix = user_folder(prefix, user) if user else prefix
    report = _load_state(state_file)
    bar = tqdm(desc="backfill", unit=" keys", disable=not progress, initial=report.sent)
    try:
        keys = _image_keys(s3, bucket, prefix, list_prefix, report)
        for batch in _batches(keys, report, limit):
            failed = _send(sqs, queue_url, bucket, batch)
            report.sent += len(batch) - len(failed)
            report.failed += len(failed)
            report.failed_keys += failed
            report.last_key = batch[-1]
            _save_state(state_file, report)
            bar.update(len(batch) - len(failed))
    finally:
        bar.close()
    return report


def _image_keys(
    s3: Any, bucket: str, prefix: str, list_prefix: str, report: BackfillReport
) -> Iterator[str]:
    """The image keys after the last one sent; other keys are counted as skipped."""
    for key in _keys(s3, bucket, list_prefix, report.last_key):
        report.listed += 1
        try:
            if parse_upload_key(key, prefix).media_type is None:
                raise NotAnImageKey(f"{key!r} is not a photo type we accept")
        except (NotAnImageKey, InvalidEvent) as exc:
            log.info("backfill skips %s: %s", key, exc)
            report.skipped += 1
            continue
        yield key


def _batches(keys: Iterator[str], report: BackfillReport, limit: int | None) -> Iterator[list[str]]:
    """Batches of ten (SendMessageBatch's most), stopping once ``limit`` keys are sent or
    pending (the caller counts a batch as sent before the next one is made)."""
    batch: list[str] = []
    for key in keys:
        batch.append(key)
        if len(batch) == 10:
            yield batch
            batch = []
        if limit is not None and report.sent + len(batch) >= limit:
            break
    if batch:
        yield batch


def _send(sqs: Any, queue_url: str, bucket: str, batch: list[str]) -> list[str]:
    """Send one batch (one more try for the entries SQS refuses); the keys that failed."""
    entries = [
        {"Id": str(i), "MessageBody": backfill_body(bucket, key)} for i, key in enumerate(batch)
    ]
    response = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
    failed = {int(f["Id"]) for f in response.get("Failed", [])}
    if failed:
        retry = [entries[i] for i in sorted(failed)]
        again = sqs.send_message_batch(QueueUrl=queue_url, Entries=retry)
        failed = {int(f["Id"]) for f in again.get("Failed", [])}
    return [batch[i] for i in sorted(failed)]
