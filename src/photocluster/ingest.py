"""Ingest: one SQS batch of upload events -> embeddings in each user's store.

Per batch: parse every message; download and prepare the images in parallel (size cap,
decode, orient, shrink, re-encode); one endpoint request for all of them; one writer call
per user. Each message then ends in one of four ways:

* **ok**: stored (or deleted), or a duplicate delivery that changed nothing;
* **skipped**: nothing to do, logged: ``s3:TestEvent``, a key that is not an image upload,
  an object deleted before we got to it;
* **reported**: permanently bad (a corrupt or non-image file, an oversized image, a bad
  user id, a payload the writer refuses): sent once to the dead-letter queue with the
  reason, and acknowledged. Retrying it would cost the same download and decode on every
  receive and delay the DLQ; reporting it at once keeps the evidence where operators look,
  ready for a redrive once the cause is fixed (a decoder added, say);
* **retry**: a transient failure (throttled endpoint after its retries, S3 or writer
  unavailable): returned in ``batchItemFailures`` so SQS redelivers only those messages,
  and moves them to the DLQ after the queue's maximum receives.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from photocluster.config import Settings
from photocluster.endpoint import (
    EmbeddingEndpoint,
    HttpEndpoint,
    RetryPolicy,
    SageMakerEndpoint,
    sagemaker_client,
)
from photocluster.errors import (
    EndpointError,
    EndpointRejected,
    ImageTooLarge,
    InvalidImage,
    PhotoclusterError,
)
from photocluster.events import NotAnImageKey, ObjectRef, TestEvent, Unusable, parse_body
from photocluster.images import ImageLimits, prepare_for_embedding
from photocluster.writer import WriterClient

log = logging.getLogger(__name__)

Status = Literal["ok", "skipped", "reported", "retry"]
_SEVERITY = {"ok": 0, "skipped": 1, "reported": 2, "retry": 3}


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


class FailureReporter(Protocol):
    def report(self, record: dict[str, Any]) -> None:
        """Record a permanently bad input where operators will see it."""
        ...


@dataclass
class DeadLetterReporter:
    """Sends a permanently bad input to the dead-letter queue, once, with its reason."""

    sqs: Any
    queue_url: str

    def report(self, record: dict[str, Any]) -> None:
        self.sqs.send_message(
            QueueUrl=self.queue_url,
            MessageBody=json.dumps(record),
            MessageAttributes={
                "error_type": {"DataType": "String", "StringValue": record["error_type"]},
                "reported_by": {"DataType": "String", "StringValue": "photocluster-ingest"},
            },
        )


class LogReporter:
    """Without a dead-letter queue configured: a structured log line only."""

    def report(self, record: dict[str, Any]) -> None:
        log.error("permanently bad input: %s", json.dumps(record))


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
        mid = message.message_id
        if isinstance(parsed, TestEvent):
            log.info("acknowledging s3:TestEvent for bucket %s", parsed.bucket)
            return
        if isinstance(parsed, Unusable):
            if isinstance(parsed.error, NotAnImageKey):
                log.info("skipping %s: %s", parsed.key, parsed.error)
                result.outcomes[mid] = _worse(result.outcomes[mid], "skipped")
                return
            record = {
                "error_type": type(parsed.error).__name__,
                "error": str(parsed.error),
                "key": parsed.key,
                "message_id": mid,
                "original_body": message.body[:4000],
            }
            status = self._send_report(record)
            result.outcomes[mid] = _worse(result.outcomes[mid], status)
            return
        assert isinstance(parsed, ObjectRef)
        items.append(_Item(index, parsed))

    def _prepare(self, uploads: list[_Item]) -> None:
        if not uploads:
            return
        with ThreadPoolExecutor(max_workers=min(self.threads, len(uploads))) as pool:
            list(pool.map(self._prepare_one, uploads))

    def _prepare_one(self, item: _Item) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        ref = item.ref
        try:
            response = self.s3.get_object(Bucket=ref.bucket, Key=ref.key)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchKey", "404", "NotFound"):
                item.fail("skipped", "object no longer exists (deleted before ingest)")
            elif code in ("AccessDenied", "403", "InvalidObjectState"):
                item.fail("reported", exc)
            else:
                item.fail("retry", exc)
            return
        except BotoCoreError as exc:
            item.fail("retry", exc)
            return
        size = int(response.get("ContentLength") or 0)
        body = response["Body"]
        try:
            if size > self.limits.max_bytes:
                item.fail(
                    "reported",
                    ImageTooLarge(
                        f"{size:,} bytes is over the limit of {self.limits.max_bytes:,} bytes"
                    ),
                )
                return
            data = body.read(self.limits.max_bytes + 1)
        except BotoCoreError as exc:
            item.fail("retry", exc)
            return
        finally:
            body.close()
        try:
            item.prepared = prepare_for_embedding(data, self.limits, self.embed_side)
        except InvalidImage as exc:
            item.fail("reported", exc)

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
        for (user_id, action, model), group in by_user.items():
            if action == "upsert":
                payload: dict[str, Any] = {
                    "op": "upsert",
                    "user_id": user_id,
                    "model": model,
                    "items": [
                        {"image_id": i.ref.image_id, "embedding": i.embedding} for i in group
                    ],
                }
            else:
                payload = {
                    "op": "delete",
                    "user_id": user_id,
                    "image_ids": [i.ref.image_id for i in group],
                }
            try:
                answer = self.writer.write(payload)
            except PhotoclusterError as exc:
                for item in group:
                    item.fail("retry", exc)
                continue
            if not answer.get("ok"):
                error = f"{answer.get('error_type')}: {answer.get('error')}"
                for item in group:
                    item.fail("reported", error)
                    item.error_type = str(answer.get("error_type"))

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


def endpoint_from_settings(settings: Settings) -> EmbeddingEndpoint:
    """HTTP to a local server when PHOTOCLUSTER_EMBEDDER_URL is set, else SageMaker."""
    retry = RetryPolicy(
        settings.endpoint_max_attempts,
        settings.endpoint_backoff_base_s,
        settings.endpoint_backoff_max_s,
    )
    if settings.embedder_url:
        return HttpEndpoint(settings.embedder_url, retry, settings.endpoint_timeout_s)
    if settings.endpoint_name:
        return SageMakerEndpoint(
            settings.endpoint_name, sagemaker_client(settings.endpoint_timeout_s), retry
        )
    raise PhotoclusterError(
        "no embedding endpoint: set PHOTOCLUSTER_ENDPOINT_NAME (SageMaker) or "
        "PHOTOCLUSTER_EMBEDDER_URL (local server)"
    )


def ingest_from_settings(settings: Settings, writer: WriterClient) -> Ingest:
    """The ingest function's processor as configured (clients created once, at load)."""
    import boto3

    reporter: FailureReporter = (
        DeadLetterReporter(boto3.client("sqs"), settings.dlq_url)
        if settings.dlq_url
        else LogReporter()
    )
    return Ingest(
        s3=boto3.client("s3"),
        endpoint=endpoint_from_settings(settings),
        writer=writer,
        reporter=reporter,
        limits=ImageLimits(settings.image_max_bytes, settings.image_max_pixels),
        upload_prefix=settings.upload_prefix,
        embed_side=settings.embed_image_side,
        embed_batch_max=settings.embed_batch_max,
        threads=settings.ingest_threads,
    )
