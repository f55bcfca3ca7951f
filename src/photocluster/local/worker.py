"""The local stand-in for Lambda's SQS event source mapping.

Long-polls the ingest queue, hands each batch (up to 10 messages) to the ingest handler
as the event Lambda would deliver, deletes the messages the handler did not report in
``batchItemFailures``, and leaves the others to become visible again (and to reach the
DLQ after the queue's maximum receives), exactly as the mapping does.

Like the mapping, it gathers a batch for up to ``PHOTOCLUSTER_WORKER_BATCHING_WINDOW_S``
(Terraform's ``ingest_batching_window_seconds``) once a message came, until it holds
``PHOTOCLUSTER_WORKER_BATCH_SIZE`` (``ingest_batch_size``): what a batch costs once (the
user's graph and records, the pass over the vectors that finds the check's candidates) is
then shared by ten photos, not one or two. And it runs several batches at once
(``PHOTOCLUSTER_WORKER_CONCURRENCY``, Terraform's ``ingest_max_concurrency`` in AWS):
each poller is one execution environment, with its own handler (its own clients and
caches), so one batch decodes while another is embedded and a third is written, and
neither core waits for the other's step.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from photocluster.config import Settings
from photocluster.ingest.handlers import Handler, LocalContext, ingest_handler
from photocluster.local.aws import lambda_sqs_event, resource_names

log = logging.getLogger(__name__)


class Stop:
    """Set by SIGTERM/SIGINT (or by the caller): the pollers finish their batch and end."""

    def __init__(self) -> None:
        self._event = threading.Event()

    @property
    def requested(self) -> bool:
        return self._event.is_set()

    def wait(self, seconds: float) -> None:
        self._event.wait(seconds)

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self._event.set()


def run(
    settings: Settings,
    ready_file: Path | None = None,
    poll_s: int = 2,
    stop: Stop | None = None,
    handler_of: Callable[[Settings], Handler] = ingest_handler,
) -> None:
    """Poll until SIGTERM/SIGINT (or ``stop``) with ``settings.worker_concurrency``
    pollers; each batch goes through the real ingest handler (``handler_of``: one each)."""
    import boto3

    sqs = boto3.client("sqs")
    queue_url = (
        settings.queue_url
        or sqs.get_queue_url(QueueName=resource_names(settings.name)["queue"])["QueueUrl"]
    )
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    handlers = [handler_of(settings) for _ in range(settings.worker_concurrency)]
    if stop is None:
        stop = Stop()
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
    pollers = [
        threading.Thread(
            target=_poll,
            args=(sqs, queue_url, queue_arn, handler, stop, Batching.of(settings, poll_s)),
            name=f"poller-{index}",
        )
        for index, handler in enumerate(handlers)
    ]
    for poller in pollers:
        poller.start()
    if ready_file is not None:
        ready_file.write_text("ready")
    log.info("worker polling %s with %d pollers", queue_url, len(pollers))
    for poller in pollers:
        poller.join()


@dataclass(frozen=True)
class Batching:
    """How the pollers gather a batch: the long poll's wait, the batch's size, the window."""

    poll_s: int
    size: int
    window_s: float

    @classmethod
    def of(cls, settings: Settings, poll_s: int) -> Batching:
        return cls(poll_s, settings.worker_batch_size, settings.worker_batching_window_s)


def _poll(
    sqs: Any, queue_url: str, queue_arn: str, handler: Handler, stop: Stop, batching: Batching
) -> None:
    """One execution environment: gather a batch, run it, repeat until asked to stop."""
    from botocore.exceptions import BotoCoreError, ClientError

    while not stop.requested:
        try:
            messages = _receive(sqs, queue_url, batching.size, batching.poll_s)
            if messages:
                messages += _gather(sqs, queue_url, batching, len(messages), stop)
        except (BotoCoreError, ClientError) as exc:  # the mapping retries its polls too
            log.warning("could not receive from the queue (%s); polling again", exc)
            stop.wait(1.0)
            continue
        if messages:
            _deliver(sqs, queue_url, queue_arn, handler, messages)


def _receive(sqs: Any, queue_url: str, most: int, wait_s: int) -> list[Any]:
    messages: list[Any] = sqs.receive_message(
        QueueUrl=queue_url,
        MaxNumberOfMessages=most,
        WaitTimeSeconds=wait_s,
        AttributeNames=["All"],
    ).get("Messages", [])
    return messages


def _gather(sqs: Any, queue_url: str, batching: Batching, have: int, stop: Stop) -> list[Any]:
    """More messages for a batch that holds ``have``: until it is full or the window since
    its first message has passed (a message received meanwhile is the batch's, whenever)."""
    deadline = time.monotonic() + batching.window_s
    more: list[Any] = []
    while have + len(more) < batching.size and not stop.requested:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        got = _receive(sqs, queue_url, batching.size - have - len(more), int(left))
        more += got
        if not got and left < 1:
            stop.wait(min(left, _SHORT_POLL_PAUSE_S))  # SQS long-polls whole seconds only
    return more


#: Between two short polls in a window's last second.
_SHORT_POLL_PAUSE_S = 0.1


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
