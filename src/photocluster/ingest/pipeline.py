"""Ingest: one SQS batch of upload events -> embeddings in each user's store.

Per batch: parse every message; download and prepare the images in parallel (size cap,
decode, orient, shrink, re-encode); one endpoint request for all of them; one writer call
per user. Each message then ends in one of four ways:

* **ok**: stored (or deleted), or a duplicate delivery that changed nothing;
* **skipped**: nothing to do, logged: ``s3:TestEvent``, a key outside the upload layout,
  an object deleted before we got to it, a file that is not a photo (``clip.mov``: its
  status says ``unsupported_type``);
* **reported**: permanently bad (a corrupt file, an oversized image, a bad user id, a
  payload the writer refuses): sent once to the dead-letter queue with the reason, and
  acknowledged (see :mod:`photocluster.ingest.reporting` for why);
* **retry**: a transient failure (throttled endpoint after its retries, S3 or writer
  unavailable): returned in ``batchItemFailures`` so SQS redelivers only those messages,
  and moves them to the DLQ after the queue's maximum receives.

Whatever happens to an upload is also recorded as its image's status, where the app reads
it (:mod:`photocluster.ingest.statuses`): ready, failed with a code, or pending.
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from photocluster.buckets import file_name
from photocluster.cpu import StageCpu
from photocluster.errors import (
    EndpointError,
    EndpointRejected,
    InvalidImage,
    NotAnImageKey,
    PhotoclusterError,
    UnsupportedImage,
)
from photocluster.images import (
    DecodeBudget,
    ImageLimits,
    copy_features,
    embedding_picture,
    encode_jpeg,
)
from photocluster.ingest.batch import BatchResult, Item, Outcome, QueueMessage
from photocluster.ingest.costs import ENDPOINT_STAGES, WRITER_STAGES
from photocluster.ingest.endpoint import EmbeddingEndpoint
from photocluster.ingest.events import ObjectRef, TestEvent, Unusable, parse_body
from photocluster.ingest.objects import download, mark_rejected
from photocluster.ingest.reporting import FailureReporter
from photocluster.ingest.statuses import WRITER_REFUSALS, status_of
from photocluster.ingest.writer import WriterClient, pack_vector, refused_packed_vectors

log = logging.getLogger(__name__)

__all__ = ["BatchResult", "Ingest", "QueueMessage"]


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
    copy_check: bool = True
    threads: int = 4
    max_receives: int = 5  # the queue's: the last receive of a message before the DLQ
    pending_grace_s: float = 3600.0
    spent: StageCpu = field(default_factory=StageCpu, init=False)  # the batch's, by stage

    def process(self, messages: Sequence[QueueMessage]) -> BatchResult:
        """Run one batch through every step; each message ends ok, skipped, reported or
        retry (see the module docstring)."""
        started = time.perf_counter()
        result = BatchResult()
        self.spent = StageCpu()
        items: list[Item] = []
        for index, message in enumerate(messages):
            result.settle(message.message_id, "ok")
            for parsed in parse_body(message.body, self.upload_prefix):
                self._classify(index, message, parsed, items, result)

        uploads = [item for item in items if item.ref.action == "upsert"]
        self._prepare([item for item in uploads if item.outcome == "ok"])
        self._embed([item for item in uploads if item.outcome == "ok"])
        self._write([item for item in items if item.outcome == "ok"])
        self._record(messages, items)
        mark_rejected(self.s3, items)
        self._settle(messages, items, result)
        result.photos = sum(1 for item in uploads if item.embedding is not None)
        result.spent = self.spent
        log.info(
            "ingest batch: %d messages, %d images, %s in %.0f ms",
            len(messages),
            len(items),
            result.counts(),
            (time.perf_counter() - started) * 1e3,
        )
        return result

    # --------------------------------------------------------------------- steps

    def _classify(
        self,
        index: int,
        message: QueueMessage,
        parsed: object,
        items: list[Item],
        result: BatchResult,
    ) -> None:
        """An image event becomes an item of the batch; anything else is settled now."""
        if isinstance(parsed, ObjectRef):
            items.append(_item(index, parsed))
        elif isinstance(parsed, TestEvent):
            log.info("acknowledging s3:TestEvent for bucket %s", parsed.bucket)
        elif isinstance(parsed, Unusable):
            result.settle(message.message_id, self._unusable(message, parsed))

    def _unusable(self, message: QueueMessage, parsed: Unusable) -> Outcome:
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

    def _prepare(self, uploads: list[Item]) -> None:
        if not uploads:
            return
        budget = DecodeBudget(self.limits.max_decoded_bytes)  # the batch's decodes at once
        with ThreadPoolExecutor(max_workers=min(self.threads, len(uploads))) as pool:
            list(pool.map(lambda item: self._prepare_one(item, budget), uploads))

    def _prepare_one(self, item: Item, budget: DecodeBudget) -> None:
        with self.spent.stage("download"):
            data = download(self.s3, item, self.limits.max_bytes)
        if data is None:
            return
        try:
            with self.spent.stage("decode"):
                picture = embedding_picture(data, self.limits, self.embed_side, budget=budget)
                item.prepared = encode_jpeg(picture)
        except InvalidImage as exc:
            item.fail("reported", exc)
            return
        if self.copy_check:
            with self.spent.stage("features"):
                item.features = copy_features(picture)

    def _embed(self, ready: list[Item]) -> None:
        for start in range(0, len(ready), self.embed_batch_max):
            pending = ready[start : start + self.embed_batch_max]
            while pending:
                try:
                    with self.spent.stage("embed_request"):
                        batch = self.endpoint.embed([item.prepared or b"" for item in pending])
                except EndpointRejected as exc:
                    if exc.instance is None or not 0 <= exc.instance < len(pending):
                        for item in pending:
                            item.fail("reported", exc)
                        break
                    pending[exc.instance].fail("reported", exc)  # drop it, embed the rest
                    pending = [item for item in pending if item.outcome == "ok"]
                    continue
                except EndpointError as exc:
                    for item in pending:
                        item.fail("retry", exc)
                    break
                if batch.cpu_ms is not None:
                    self.spent.merge({"embedder": batch.cpu_ms}, ENDPOINT_STAGES)
                for item, vector in zip(pending, batch.vectors, strict=True):
                    item.embedding = vector
                    item.model = batch.model
                    item.calibration = batch.calibration
                    item.runtime = batch.runtime
                    item.prepared = None
                break

    def _write(self, ready: list[Item]) -> None:
        # The last event of an image in this batch wins (an upload then a delete: deleted).
        last: dict[tuple[str, str], Item] = {}
        for item in ready:
            last[(item.ref.user_id, item.ref.image_id)] = item
        by_user: dict[tuple[str, str, str], list[Item]] = {}
        for item in last.values():
            by_user.setdefault((item.ref.user_id, item.ref.action, item.model), []).append(item)
        for group in by_user.values():
            self._write_group(group)

    def _write_group(self, group: list[Item]) -> None:
        """One writer call for one user's upserts (or deletions) of one model."""
        try:
            started = time.thread_time()
            answer = self.writer.write(_writer_payload(group))
            if refused_packed_vectors(answer):  # a writer older than this ingest (a rollback)
                log.warning("the writer does not read packed vectors; sending them as lists")
                answer = self.writer.write(_writer_payload(group, packed=False))
            request_ms = (time.thread_time() - started) * 1e3
            reported = answer.get("cpu_ms")
            writer_ms = self.spent.merge(
                reported if isinstance(reported, dict) else {}, WRITER_STAGES
            )
            # a writer run in this thread spent its own CPU inside the call
            here = writer_ms if self.writer.runs_here else 0.0
            self.spent.add("write_request", request_ms - here)
        except PhotoclusterError as exc:
            for item in group:
                item.fail("retry", exc)
            return
        if not answer.get("ok"):
            error_type = str(answer.get("error_type"))
            code = WRITER_REFUSALS.get(error_type, "embed_failed")
            for item in group:
                item.fail("reported", f"{error_type}: {answer.get('error')}", code)
                item.error_type = error_type

    def _record(self, messages: Sequence[QueueMessage], items: list[Item]) -> None:
        """Record the status of every image that will not (or not yet) be stored: one
        writer call per user. A failure that cannot be recorded is retried, not lost."""
        now = time.time()
        by_user: dict[str, list[tuple[Item, dict[str, Any]]]] = {}
        for item in items:
            receives = messages[item.message].receive_count
            entry = status_of(item, receives, self.max_receives, now, self.pending_grace_s)
            if entry is not None:
                by_user.setdefault(item.ref.user_id, []).append((item, entry))
        for user_id, group in by_user.items():
            payload = {"op": "record", "user_id": user_id, "items": [e for _, e in group]}
            try:
                answer = self.writer.write(payload)
            except PhotoclusterError as exc:
                for item, entry in group:
                    if entry["status"] == "failed" and item.outcome != "retry":
                        item.fail("retry", f"could not record the failure: {exc}", item.code)
                continue
            if not answer.get("ok"):
                log.error("writer refused the statuses of %s: %s", user_id, answer)

    def _settle(
        self, messages: Sequence[QueueMessage], items: list[Item], result: BatchResult
    ) -> None:
        """Report what is permanently bad, then record each message's worst outcome."""
        for item in items:
            message = messages[item.message]
            if item.outcome == "reported":
                item.outcome = self._report(message, item)
            if item.outcome != "ok":
                result.reasons.setdefault(message.message_id, []).append(
                    f"{item.ref.key}: {item.reason}"
                )
            result.settle(message.message_id, item.outcome)

    def _report(self, message: QueueMessage, item: Item) -> Outcome:
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

    def _send_report(self, record: dict[str, Any]) -> Outcome:
        try:
            self.reporter.report(record)
        except Exception:  # the report must not be lost: let SQS deliver it again
            log.exception("could not report a bad input; the message will be retried")
            return "retry"
        log.warning("reported permanently bad input %s: %s", record.get("key"), record["error"])
        return "reported"


def _item(index: int, ref: ObjectRef) -> Item:
    """A new item; a file that is not a photo is settled at once (skipped, and recorded)."""
    item = Item(index, ref)
    if ref.action == "upsert" and ref.media_type is None:
        name = file_name(ref.key)
        item.fail("skipped", UnsupportedImage(f"{name!r} is not a photo type we accept"))
    return item


def _writer_payload(group: list[Item], packed: bool = True) -> dict[str, Any]:
    """The writer's event for one user's items (all upserts of one model, or deletions);
    ``packed``: each vector as ``embedding_f32``, else as a list (``embedding``)."""
    ref = group[0].ref
    if ref.action == "delete":
        return {
            "op": "delete",
            "user_id": ref.user_id,
            "image_ids": [i.ref.image_id for i in group],
        }
    calibration = group[0].calibration
    return {
        "op": "upsert",
        "user_id": ref.user_id,
        "model": group[0].model,
        "calibration": calibration.model_dump(mode="json") if calibration else None,
        **({"runtime": group[0].runtime} if group[0].runtime else {}),
        "items": [
            {
                "image_id": i.ref.image_id,
                **_vector_field(i, packed),
                "key": i.ref.key,
                "modified": i.modified,
                **({"features": base64.b64encode(i.features).decode()} if i.features else {}),
            }
            for i in group
        ],
    }


def _vector_field(item: Item, packed: bool) -> dict[str, Any]:
    vector = item.embedding if item.embedding is not None else np.zeros(0, np.float32)
    return {"embedding_f32": pack_vector(vector)} if packed else {"embedding": vector.tolist()}
