"""The local stand-in for Lambda's SQS event source mapping.

Long-polls the ingest queue, hands each batch (up to 10 messages) to the ingest handler
as the event Lambda would deliver, deletes the messages the handler did not report in
``batchItemFailures``, and leaves the others to become visible again (and to reach the
DLQ after the queue's maximum receives), exactly as the mapping does.
"""

from __future__ import annotations

import logging
import signal
from pathlib import Path
from types import FrameType
from typing import Any

from photocluster.config import Settings
from photocluster.ingest.handlers import Handler, LocalContext, ingest_handler
from photocluster.local.aws import lambda_sqs_event, resource_names

log = logging.getLogger(__name__)


class _Stop:
    requested = False

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.requested = True


def run(settings: Settings, ready_file: Path | None = None, poll_s: int = 2) -> None:
    """Poll until SIGTERM/SIGINT; each batch goes through the real ingest handler."""
    import boto3

    sqs = boto3.client("sqs")
    queue_url = (
        settings.queue_url
        or sqs.get_queue_url(QueueName=resource_names(settings.name)["queue"])["QueueUrl"]
    )
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    handler = ingest_handler(settings)
    stop = _Stop()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if ready_file is not None:
        ready_file.write_text("ready")
    log.info("worker polling %s", queue_url)
    while not stop.requested:
        messages = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=poll_s,
            AttributeNames=["All"],
        ).get("Messages", [])
        if messages:
            _deliver(sqs, queue_url, queue_arn, handler, messages)


def _deliver(
    sqs: Any, queue_url: str, queue_arn: str, handler: Handler, messages: list[Any]
) -> None:
    """One batch to the handler, as the event source mapping delivers it; then delete the
    messages it did not report as failed."""
    event = lambda_sqs_event([dict(m) for m in messages], queue_arn, sqs.meta.region_name)
    try:
        response = handler(event, LocalContext("photocluster-ingest"))
    except Exception:  # Lambda would retry the whole batch after the visibility timeout
        log.exception("ingest handler failed; the batch will be delivered again")
        return
    failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
    done: list[Any] = [
        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
        for i, m in enumerate(messages)
        if m["MessageId"] not in failed
    ]
    if done:
        sqs.delete_message_batch(QueueUrl=queue_url, Entries=done)
