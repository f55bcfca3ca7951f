"""Where permanently bad inputs are reported: the dead-letter queue, or a log line.

Reporting a bad upload at once, instead of letting SQS retry it, saves the download and
decode of every retry and puts the evidence where operators look, ready for a redrive once
the cause is fixed (a decoder added, say).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any, Protocol

log = logging.getLogger(__name__)


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
