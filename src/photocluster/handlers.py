"""The Lambda handlers, built once per container from Settings.

``services/ingest/handler.py`` and ``services/ingest/writer.py`` are two-line entry points
around these; the local worker (``photocluster worker``) calls the very same handlers with
Lambda-shaped events, and stands in for the synchronous writer invoke by calling the writer
handler in-process.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.utilities.data_classes import SQSEvent

from photocluster.config import Settings

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
    """The writer function: payload -> store + graph (see photocluster.writer)."""
    from photocluster import graph
    from photocluster.library import Library
    from photocluster.writer import handle_write

    logger = _logger("photocluster-writer", settings)
    library = Library.from_settings(settings)  # keeps recent users' snapshots warm
    graph.preload()  # hierarchical clustering, needed by every write

    @logger.inject_lambda_context
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return handle_write(library, event, expected_model=settings.model)

    return handler


def ingest_handler(settings: Settings) -> Handler:
    """The ingest function: SQS batch -> embeddings -> writer (see photocluster.ingest)."""
    from photocluster.ingest import QueueMessage, ingest_from_settings
    from photocluster.writer import InProcessWriter, LambdaWriter, WriterClient

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

    @logger.inject_lambda_context
    @tracer.capture_lambda_handler
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        messages = [
            QueueMessage(r.message_id, r.body, int(r.attributes.approximate_receive_count or 1))
            for r in SQSEvent(event).records
        ]
        return ingest.process(messages).lambda_response()

    return handler
