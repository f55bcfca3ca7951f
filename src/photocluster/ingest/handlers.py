"""The Lambda handlers, built once per container from Settings (the wiring of ingest).

``services/ingest/handler.py`` and ``services/ingest/writer.py`` are two-line entry points
around these; the local worker (``photocluster worker``) calls the very same handlers with
Lambda-shaped events, and stands in for the synchronous writer invoke by calling the writer
handler in-process. Clients (S3, SQS, the endpoint, the writer) are created here, once.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import EphemeralMetrics
from aws_lambda_powertools.utilities.data_classes import SQSEvent

from photocluster.clustering import copies, linkage
from photocluster.clustering.orb import opencv
from photocluster.config import Settings
from photocluster.errors import PhotoclusterError
from photocluster.images import free_large_blocks_to_the_os, image_limits
from photocluster.ingest.batch import QueueMessage
from photocluster.ingest.costs import NAMESPACE, emit
from photocluster.ingest.endpoint import (
    EmbeddingEndpoint,
    HttpEndpoint,
    RetryPolicy,
    SageMakerEndpoint,
    sagemaker_client,
)
from photocluster.ingest.pipeline import Ingest
from photocluster.ingest.reporting import DeadLetterReporter, FailureReporter, LogReporter
from photocluster.ingest.writer import InProcessWriter, LambdaWriter, WriterClient, handle_write
from photocluster.library import Library

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


@dataclass
class LocalContext:
    """The Lambda context attributes handlers and Powertools read, for local invocations."""

    function_name: str = "photocluster-local"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 1024
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "local"
    log_stream_name: str = "local"

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:local:000000000000:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def _logger(service: str, settings: Settings) -> Logger:
    logger = Logger(service=service, level=settings.log_level)
    copy_config_to_registered_loggers(source_logger=logger, include={"photocluster"})
    return logger


def writer_handler(settings: Settings) -> Handler:
    """The writer function: payload -> store + graph (see photocluster.ingest.writer)."""
    logger = _logger("photocluster-writer", settings)
    library = Library.from_settings(settings)  # keeps recent users' snapshots warm
    linkage.preload()  # hierarchical clustering, needed by every write
    if settings.copy_check:
        copies.preload()  # the check's libraries, at init rather than in the first write

    @logger.inject_lambda_context
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return handle_write(library, event, expected_model=settings.model)

    return handler


def ingest_handler(settings: Settings) -> Handler:
    """The ingest function: SQS batch -> embeddings -> writer (photocluster.ingest.pipeline)."""
    logger = _logger("photocluster-ingest", settings)
    tracer = Tracer(service="photocluster-ingest")
    writer: WriterClient
    if settings.writer_function:
        import boto3

        writer = LambdaWriter(boto3.client("lambda"), settings.writer_function)
    else:  # local runs: the writer handler, invoked in this process
        write = writer_handler(settings)
        writer = InProcessWriter(lambda event: write(event, LocalContext("photocluster-writer")))
    ingest = ingest_from_settings(settings, writer)

    metrics = EphemeralMetrics(namespace=NAMESPACE, service="photocluster-ingest")

    @logger.inject_lambda_context
    @tracer.capture_lambda_handler
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        messages = [
            QueueMessage(r.message_id, r.body, int(r.attributes.approximate_receive_count or 1))
            for r in SQSEvent(event).records
        ]
        result = ingest.process(messages)
        emit(metrics, result.spent, result.photos)
        return result.lambda_response()

    return handler


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

    free_large_blocks_to_the_os()  # a batch's decodes stay within their budget
    if settings.copy_check:
        opencv()  # ORB's library, at init rather than in the first batch

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
        limits=image_limits(settings),
        upload_prefix=settings.upload_prefix,
        embed_side=settings.embed_image_side,
        embed_batch_max=settings.embed_batch_max,
        copy_check=settings.copy_check,
        threads=settings.ingest_threads,
        max_receives=settings.queue_max_receive,
        pending_grace_s=settings.pending_grace_s,
    )
