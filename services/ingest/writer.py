"""Writer Lambda (in the VPC, EFS mounted): apply one payload to a user's store and graph."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.utilities.typing import LambdaContext

from photocluster import graph
from photocluster.config import get_settings
from photocluster.library import Library
from photocluster.writer import handle_write

settings = get_settings()
logger = Logger(service="photocluster-writer", level=settings.log_level)
copy_config_to_registered_loggers(source_logger=logger, include={"photocluster"})
library = Library.from_settings(settings)  # keeps recent users' snapshots warm
graph.preload()  # hierarchical clustering, needed by every write


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle_write(library, event, expected_model=settings.model)
