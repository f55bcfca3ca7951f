"""Ingest: one SQS batch of upload events -> embeddings in each user's store.

Per batch: parse every message; download and prepare the images in parallel (size cap,
decode, orient, shrink, re-encode); one endpoint request for all of them; one writer call
per user. Each message then ends in one of four ways:

* **ok**: stored (or deleted), or a duplicate delivery that changed nothing;
* **skipped**: nothing to do, logged: ``s3:TestEvent``, a key that is not an image upload,
  an object deleted before we got to it;
* **reported**: permanently bad (a corrupt or non-image file, an oversized image, a bad
  user id, a payload the writer refuses): sent once to the dead-letter queue with the
  reason, and acknowledged (see :mod:`photocluster.ingest.reporting` for why);
* **retry**: a transient failure (throttled endpoint after its retries, S3 or writer
  unavailable): returned in ``batchItemFailures`` so SQS redelivers only those messages,
  and moves them to the DLQ after the queue's maximum receives.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

from photocluster.errors import (
    EndpointError,
    EndpointRejected,
    ImageTooLarge,
    InvalidImage,
    NotAnImageKey,
    PhotoclusterError,
)
from photocluster.ingest.endpoint import EmbeddingEndpoint
from photocluster.ingest.events import ObjectRef, TestEvent, Unusable, parse_body
from photocluster.ingest.images import ImageLimits, prepare_for_embedding
from photocluster.ingest.reporting import FailureReporter
from photocluster.ingest.writer import WriterClient

log = logging.getLogger(__name__)

Status = Literal["ok", "skipped", "reported", "retry"]
_SEVERITY = {"ok": 0, "skipped": 1, "reported": 2, "retry": 3}
#: What a failed S3 GetObject means for the upload, by error code (others: retry).
_S3_ERROR_STATUS: dict[str, Status] = {
    "NoSuchKey": "skipped",
    "404": "skipped",
    "NotFound": "skipped",
    "AccessDenied": "reported",
    "403": "reported",
    "InvalidObjectState": "reported",
}
_GONE = "object no longer exists (deleted before ingest)"


@dataclass(frozen=True)
class QueueMessage:
    """One SQS message as the ingest function sees it."""

    message_id: str
    body: str
    receive_count: int = 1


@dataclass
class _Item:
    message: int  # index of its message in the batch
    ref: ObjectRef
    prepared: bytes | None = None
    embedding: list[float] | None = None
    model: str = ""
    status: Status = "ok"
    reason: str = ""
    error_type: str = ""

    def fail(self, status: Status, error: BaseException | str) -> None:
        self.status = status
        self.reason = str(error)
        self.error_type = type(error).__name__ if isinstance(error, BaseException) else status


@dataclass
class BatchResult:
    """What happened to each message; ``failures`` go back to SQS for redelivery."""

    outcomes: dict[str, Status] = field(default_factory=dict)
    reasons: dict[str, list[str]] = field(default_factory=dict)

    @property
    def failures(self) -> list[str]:
        return [mid for mid, status in self.outcomes.items() if status == "retry"]

    def lambda_response(self) -> dict[str, Any]:
        return {"batchItemFailures": [{"itemIdentifier": mid} for mid in self.failures]}


@dataclass
class Ingest:
    """Processes SQS batches of upload events (see the module docstring)."""

    s3: Any
    endpoint: EmbeddingEndpoint
    writer: WriterClient
    reporter: FailureReporter
    limits: ImageLimits
    upload_prefix: str = "uploads/"
    embed_side: int = 512
    embed_batch_max: int = 32
    threads: int = 4

    def process(self, messages: Sequence[QueueMessage]) -> BatchResult:
        """Run one batch through every step; each message ends ok, skipped, reported or
        retry (see the module docstring)."""
        started = time.perf_counter()
        result = BatchResult()
        items: list[_Item] = []
        for index, message in enumerate(messages):
            result.outcomes[message.message_id] = "ok"
            for parsed in parse_body(message.body, self.upload_prefix):
                self._classify(index, message, parsed, items, result)

        uploads = [item for item in items if item.ref.action == "upsert"]
        self._prepare(uploads)
        self._embed([item for item in uploads if item.status == "ok"])
        self._write([item for item in items if item.status == "ok"])
        self._settle(messages, items, result)
        log.info(
            "ingest batch: %d messages, %d images, %s in %.0f ms",
            len(messages),
            len(items),
            _count(result.outcomes),
            (time.perf_counter() - started) * 1e3,
        )
        return result

    # --------------------------------------------------------------------- steps

    def _classify(
        self,
        index: int,
        message: QueueMessage,
        parsed: object,
        items: list[_Item],
        result: BatchResult,
    ) -> None:
        """An image event becomes an item of the batch; anything else is settled now."""
        if isinstance(parsed, ObjectRef):
            items.append(_Item(index, parsed))
        elif isinstance(parsed, TestEvent):
            log.info("acknowledging s3:TestEvent for bucket %s", parsed.bucket)
        elif isinstance(parsed, Unusable):
            mid = message.message_id
            result.outcomes[mid] = _worse(result.outcomes[mid], self._unusable(message, parsed))

    def _unusable(self, message: QueueMessage, parsed: Unusable) -> Status:
        if isinstance(parsed.error, NotAnImageKey):
            log.info("skipping %s: %s", parsed.key, parsed.error)
            return "skipped"
        return self._send_report(
            {
                "error_type": type(parsed.error).__name__,
                "error": str(parsed.error),
                "key": parsed.key,
                "message_id": message.message_id,
                "original_body": message.body[:4000],
            }
        )

    def _prepare(self, uploads: list[_Item]) -> None:
        if not uploads:
            return
        with ThreadPoolExecutor(max_workers=min(self.threads, len(uploads))) as pool:
            list(pool.map(self._prepare_one, uploads))

    def _prepare_one(self, item: _Item) -> None:
        data = self._download(item)
        if data is None:
            return
        try:
            item.prepared = prepare_for_embedding(data, self.limits, self.embed_side)
        except InvalidImage as exc:
            item.fail("reported", exc)

    def _download(self, item: _Item) -> bytes | None:
        """The object's bytes, or None with the item failed as S3's error says."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            response = self.s3.get_object(Bucket=item.ref.bucket, Key=item.ref.key)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            status = _S3_ERROR_STATUS.get(code, "retry")
            item.fail(status, _GONE if status == "skipped" else exc)
            return None
        except BotoCoreError as exc:
            item.fail("retry", exc)
            return None
        return self._read_body(item, response)

    def _read_body(self, item: _Item, response: dict[str, Any]) -> bytes | None:
        """At most the size limit of the object's bytes (an oversized one is reported)."""
        from botocore.exceptions import BotoCoreError

        size = int(response.get("ContentLength") or 0)
        body = response["Body"]
        try:
            if size > self.limits.max_bytes:
                limit = self.limits.max_bytes
                item.fail(
                    "reported",
                    ImageTooLarge(f"{size:,} bytes is over the limit of {limit:,} bytes"),
                )
                return None
            return bytes(body.read(self.limits.max_bytes + 1))
        except BotoCoreError as exc:
            item.fail("retry", exc)
            return None
        finally:
            body.close()

    def _embed(self, ready: list[_Item]) -> None:
        for start in range(0, len(ready), self.embed_batch_max):
            pending = ready[start : start + self.embed_batch_max]
            while pending:
                try:
                    batch = self.endpoint.embed([item.prepared or b"" for item in pending])
                except EndpointRejected as exc:
                    if exc.instance is None or not 0 <= exc.instance < len(pending):
                        for item in pending:
                            item.fail("reported", exc)
                        break
                    pending[exc.instance].fail("reported", exc)  # drop it, embed the rest
                    pending = [item for item in pending if item.status == "ok"]
                    continue
                except EndpointError as exc:
                    for item in pending:
                        item.fail("retry", exc)
                    break
                for item, vector in zip(pending, batch.vectors.tolist(), strict=True):
                    item.embedding = vector
                    item.model = batch.model
                    item.prepared = None
                break

    def _write(self, ready: list[_Item]) -> None:
        # The last event of an image in this batch wins (an upload then a delete: deleted).
        last: dict[tuple[str, str], _Item] = {}
        for item in ready:
            last[(item.ref.user_id, item.ref.image_id)] = item
        by_user: dict[tuple[str, str, str], list[_Item]] = {}
        for item in last.values():
            by_user.setdefault((item.ref.user_id, item.ref.action, item.model), []).append(item)
        for group in by_user.values():
            self._write_group(group)

    def _write_group(self, group: list[_Item]) -> None:
        """One writer call for one user's upserts (or deletions) of one model."""
        try:
            answer = self.writer.write(_writer_payload(group))
        except PhotoclusterError as exc:
            for item in group:
                item.fail("retry", exc)
            return
        if not answer.get("ok"):
            error = f"{answer.get('error_type')}: {answer.get('error')}"
            for item in group:
                item.fail("reported", error)
                item.error_type = str(answer.get("error_type"))

    def _settle(
        self, messages: Sequence[QueueMessage], items: list[_Item], result: BatchResult
    ) -> None:
        """Report what is permanently bad, then record each message's worst outcome."""
        for item in items:
            message = messages[item.message]
            if item.status == "reported":
                item.status = self._report(message, item)
            if item.status != "ok":
                result.reasons.setdefault(message.message_id, []).append(
                    f"{item.ref.key}: {item.reason}"
                )
            result.outcomes[message.message_id] = _worse(
                result.outcomes[message.message_id], item.status
            )

    def _report(self, message: QueueMessage, item: _Item) -> Status:
        return self._send_report(
            {
                "error_type": item.error_type or "Rejected",
                "error": item.reason,
                "bucket": item.ref.bucket,
                "key": item.ref.key,
                "user_id": item.ref.user_id,
                "image_id": item.ref.image_id,
                "message_id": message.message_id,
                "receive_count": message.receive_count,
            }
        )

    def _send_report(self, record: dict[str, Any]) -> Status:
        try:
            self.reporter.report(record)
        except Exception:  # the report must not be lost: let SQS deliver it again
            log.exception("could not report a bad input; the message will be retried")
            return "retry"
        log.warning("reported permanently bad input %s: %s", record.get("key"), record["error"])
        return "reported"


def _worse(a: Status, b: Status) -> Status:
    return a if _SEVERITY[a] >= _SEVERITY[b] else b


def _count(outcomes: dict[str, Status]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for status in outcomes.values():
        counts[status] = counts.get(status, 0) + 1
    return counts


def _writer_payload(group: list[_Item]) -> dict[str, Any]:
    """The writer's event for one user's items (all upserts of one model, or deletions)."""
    ref = group[0].ref
    if ref.action == "delete":
        return {
            "op": "delete",
            "user_id": ref.user_id,
            "image_ids": [i.ref.image_id for i in group],
        }
    return {
        "op": "upsert",
        "user_id": ref.user_id,
        "model": group[0].model,
        "items": [{"image_id": i.ref.image_id, "embedding": i.embedding} for i in group],
    }
