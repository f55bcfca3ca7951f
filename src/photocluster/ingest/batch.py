"""One SQS batch as ingest works through it: its messages, their images, the outcomes.

Each message ends in one of four ways (the worst of its images' outcomes): ``ok``,
``skipped``, ``reported`` or ``retry`` (see :mod:`photocluster.ingest.pipeline`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from photocluster.calibrations import ModelCalibration
from photocluster.config import EncoderRuntime
from photocluster.cpu import StageCpu
from photocluster.ingest.events import ObjectRef

Outcome = Literal["ok", "skipped", "reported", "retry"]
_SEVERITY = {"ok": 0, "skipped": 1, "reported": 2, "retry": 3}


@dataclass(frozen=True)
class QueueMessage:
    """One SQS message as the ingest function sees it."""

    message_id: str
    body: str
    receive_count: int = 1


@dataclass
class Item:
    """One image event of the batch, and how far it got.

    ``code`` names why it failed (``invalid_image``, ``too_large``...: the image's status
    carries it to the app); ``modified`` is the object's S3 LastModified once downloaded.
    """

    message: int  # index of its message in the batch
    ref: ObjectRef
    prepared: bytes | None = None
    features: bytes | None = None  # packed ORB features for the geometric check
    embedding: npt.NDArray[np.float32] | None = None  # as the endpoint answered it
    model: str = ""
    calibration: ModelCalibration | None = None
    runtime: EncoderRuntime | None = None  # the encoder runtime that embedded it
    modified: float | None = None
    etag: str | None = None  # of the bytes judged, once downloaded
    version_id: str | None = None
    outcome: Outcome = "ok"
    reason: str = ""
    error_type: str = ""
    code: str = ""

    def fail(self, outcome: Outcome, error: BaseException | str, code: str = "") -> None:
        self.outcome = outcome
        self.reason = str(error)
        self.error_type = type(error).__name__ if isinstance(error, BaseException) else outcome
        self.code = code or str(getattr(error, "code", "")) or self.code


@dataclass
class BatchResult:
    """What happened to each message; ``failures`` go back to SQS for redelivery."""

    outcomes: dict[str, Outcome] = field(default_factory=dict)
    reasons: dict[str, list[str]] = field(default_factory=dict)
    photos: int = 0  # embedded in this batch
    spent: StageCpu = field(default_factory=StageCpu)  # CPU-ms by stage (ingest.costs)

    @property
    def failures(self) -> list[str]:
        return [mid for mid, outcome in self.outcomes.items() if outcome == "retry"]

    def settle(self, message_id: str, outcome: Outcome) -> None:
        """A message's outcome is the worst of its parts'."""
        current = self.outcomes.get(message_id, "ok")
        self.outcomes[message_id] = current if _SEVERITY[current] >= _SEVERITY[outcome] else outcome

    def counts(self) -> dict[str, int]:
        return dict(Counter(self.outcomes.values()))

    def lambda_response(self) -> dict[str, Any]:
        return {"batchItemFailures": [{"itemIdentifier": mid} for mid in self.failures]}
