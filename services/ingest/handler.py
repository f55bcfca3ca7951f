"""Ingest Lambda: SQS batch of upload events -> embeddings -> writer (see photocluster.ingest)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.utilities.data_classes import SQSEvent
from aws_lambda_powertools.utilities.typing import LambdaContext

from photocluster.config import get_settings
from photocluster.ingest import QueueMessage, ingest_from_settings

settings = get_settings()
logger = Logger(service="photocluster-ingest", level=settings.log_level)
copy_config_to_registered_loggers(source_logger=logger, include={"photocluster"})
tracer = Tracer(service="photocluster-ingest")
ingest = ingest_from_settings(settings)  # clients created once per container


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    records = SQSEvent(event).records
    messages = [
        QueueMessage(r.message_id, r.body, int(r.attributes.approximate_receive_count or 1))
        for r in records
    ]
    return ingest.process(messages).lambda_response()
