"""The local worker stands in for Lambda's event source mapping: several pollers, each one
execution environment with its own handler, running batches at once; messages a handler
did not fail are deleted, the others come back."""

from __future__ import annotations

import threading
import time
from typing import Any

import boto3

from photocluster.config import Settings
from photocluster.local import worker
from photocluster.local.aws import bootstrap


def test_the_worker_runs_batches_at_once_and_deletes_what_succeeded(aws: str) -> None:
    sqs = boto3.client("sqs")
    settings = Settings(
        queue_delay_s=0, queue_visibility_s=30, name="pollers", worker_concurrency=3
    )
    resources = bootstrap(boto3.client("s3"), sqs, settings)
    for start in range(0, 30, 10):  # SQS takes at most 10 a call
        entries = [{"Id": str(i), "MessageBody": f"body-{i}"} for i in range(start, start + 10)]
        sqs.send_message_batch(QueueUrl=resources.queue_url, Entries=entries)

    lock = threading.Lock()
    running, most, handlers, seen = 0, 0, [], []

    def handler_of(_: Settings) -> Any:
        def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
            nonlocal running, most
            with lock:
                running += 1
                most = max(most, running)
                seen.extend(r["body"] for r in event["Records"])
            time.sleep(0.5)  # a batch takes a while: the others poll meanwhile
            with lock:
                running -= 1
            failed = [r["messageId"] for r in event["Records"] if r["body"] == "body-7"]
            return {"batchItemFailures": [{"itemIdentifier": m} for m in failed]}

        handlers.append(handler)
        return handler

    bodies = {f"body-{i}" for i in range(30)}  # (the bucket's s3:TestEvent comes too)
    stop = worker.Stop()
    settings = settings.model_copy(update={"queue_url": resources.queue_url})
    thread = threading.Thread(target=worker.run, args=(settings, None, 1, stop, handler_of))
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while len(set(seen) & bodies) < 30 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        stop(0, None)
        thread.join(timeout=30)
    assert not thread.is_alive() and len(handlers) == 3  # one handler a poller
    assert set(seen) >= bodies and most >= 2  # batches ran at once
    attributes = sqs.get_queue_attributes(
        QueueUrl=resources.queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    left = sum(int(value) for value in attributes.values())
    assert left == 1  # the failed one waits to come back; the rest were deleted


def batches_of_a_trickle(aws_queue: str, settings: Settings) -> list[int]:
    """The batch sizes the worker hands over while 8 messages arrive one each 0.15 s."""
    sqs = boto3.client("sqs")
    sizes: list[int] = []

    def handler_of(_: Settings) -> Any:
        def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
            sizes.append(len([r for r in event["Records"] if r["body"].startswith("t-")]))
            return {"batchItemFailures": []}

        return handler

    stop = worker.Stop()
    settings = settings.model_copy(update={"queue_url": aws_queue, "worker_concurrency": 1})
    thread = threading.Thread(target=worker.run, args=(settings, None, 1, stop, handler_of))
    thread.start()
    try:
        deadline = time.monotonic() + 15
        while not sizes and time.monotonic() < deadline:  # the bucket's s3:TestEvent first
            time.sleep(0.1)
        sizes.clear()
        for i in range(8):
            sqs.send_message(QueueUrl=aws_queue, MessageBody=f"t-{i}")
            time.sleep(0.15)
        deadline = time.monotonic() + 15
        while sum(sizes) < 8 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        stop(0, None)
        thread.join(timeout=30)
    return [size for size in sizes if size]


def test_a_batch_gathers_messages_for_the_batching_window_as_the_mapping_does(aws: str) -> None:
    """With Terraform's 2-s window the trickle is one batch (its fixed costs paid once);
    with none, the first message goes alone."""
    settings = Settings(queue_delay_s=0, queue_visibility_s=30, name="window")
    resources = bootstrap(boto3.client("s3"), boto3.client("sqs"), settings)
    assert batches_of_a_trickle(resources.queue_url, settings) == [8]
    unwindowed = settings.model_copy(update={"worker_batching_window_s": 0.0})
    sizes = batches_of_a_trickle(resources.queue_url, unwindowed)
    assert sum(sizes) == 8 and len(sizes) >= 3


def test_a_batch_never_holds_more_than_its_size(aws: str) -> None:
    settings = Settings(queue_delay_s=0, queue_visibility_s=30, name="size", worker_batch_size=3)
    resources = bootstrap(boto3.client("s3"), boto3.client("sqs"), settings)
    sizes = batches_of_a_trickle(resources.queue_url, settings)
    assert sum(sizes) == 8 and max(sizes) == 3
