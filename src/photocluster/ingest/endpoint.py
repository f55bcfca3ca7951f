"""Clients of the embedding endpoint: SageMaker Runtime (production) and plain HTTP (local).

Both send the inference server's batch format (``{"instances": [base64 JPEG, ...]}``) and
share one retry policy: throttling and transient errors are retried with exponential
backoff and full jitter, a bounded number of times; a rejected input (4xx naming an
instance) is never retried. botocore's own retries are switched off so the bound is ours.
"""

from __future__ import annotations

import base64
import json
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import httpx
import numpy as np
import numpy.typing as npt

from photocluster.calibrations import ModelCalibration
from photocluster.config import ENCODER_RUNTIMES, EncoderRuntime
from photocluster.errors import EndpointError, EndpointRejected, EndpointThrottled

log = logging.getLogger(__name__)
T = TypeVar("T")

#: SageMaker error codes that mean "try again later".
_THROTTLE_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "ModelNotReadyException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
    }
)
_TRANSIENT_CODES = frozenset(
    {"InternalFailure", "InternalServerError", "InternalDependencyException"}
)


class _Retry(Exception):
    """Raised inside an attempt to ask for another one."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


@dataclass
class RetryPolicy:
    """Exponential backoff with full jitter: sleep U(0, min(cap, base * 2**attempt))."""

    max_attempts: int = 5
    base_s: float = 0.2
    cap_s: float = 5.0
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=random.Random)

    def run(self, attempt: Callable[[], T]) -> T:
        """Call ``attempt`` until it returns; it raises _Retry to ask for another try."""
        last: Exception | None = None
        for number in range(self.max_attempts):
            try:
                return attempt()
            except _Retry as retry:
                last = retry.error
                if number + 1 < self.max_attempts:
                    delay = self.rng.uniform(0, min(self.cap_s, self.base_s * 2**number))
                    log.warning(
                        "endpoint attempt %d failed (%s); retrying in %.2f s",
                        number + 1,
                        last,
                        delay,
                    )
                    self.sleep(delay)
        assert last is not None
        raise last


@dataclass(frozen=True)
class EmbeddingBatch:
    """The endpoint's answer: which model, its dimension, one vector per image, the
    tiers calibrated with the model's weights (None: uncalibrated), and the CPU-ms the
    server spent on the batch (None from a server that does not say)."""

    model: str
    dim: int
    vectors: npt.NDArray[np.float32]
    calibration: ModelCalibration | None = None
    cpu_ms: float | None = None
    runtime: EncoderRuntime | None = None  # what served them (None: a server that did not say)


class EmbeddingEndpoint(Protocol):
    def embed(self, images: Sequence[bytes]) -> EmbeddingBatch:
        """Embed encoded images (JPEG/PNG/WebP bytes) in one request."""
        ...


def _request_body(images: Sequence[bytes]) -> bytes:
    return json.dumps({"instances": [base64.b64encode(i).decode("ascii") for i in images]}).encode()


def _parse_answer(raw: bytes, expected: int) -> EmbeddingBatch:
    try:
        document = json.loads(raw)
        vectors = np.asarray(document["embeddings"], dtype=np.float32)
        calibration = document.get("calibration")
        cpu_ms = document.get("cpu_ms")
        batch = EmbeddingBatch(
            str(document["model"]),
            int(document["dim"]),
            vectors,
            ModelCalibration.model_validate(calibration) if calibration is not None else None,
            float(cpu_ms) if isinstance(cpu_ms, int | float) and cpu_ms >= 0 else None,
            _runtime(document.get("runtime")),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise EndpointError(f"endpoint answered something unexpected: {exc}") from exc
    if vectors.shape != (expected, batch.dim):
        raise EndpointError(f"endpoint returned shape {vectors.shape} for {expected} images")
    return batch


def _runtime(value: object) -> EncoderRuntime | None:
    for runtime in ENCODER_RUNTIMES:
        if value == runtime:
            return runtime
    return None


def _rejection(status: int, raw: bytes) -> EndpointRejected:
    try:
        document = json.loads(raw)
        return EndpointRejected(
            f"endpoint refused the input ({status}): {document['error']}", document.get("instance")
        )
    except (ValueError, KeyError, TypeError):
        return EndpointRejected(f"endpoint refused the input ({status}): {raw[:200]!r}")


@dataclass
class HttpEndpoint:
    """The inference server over plain HTTP (``PHOTOCLUSTER_EMBEDDER_URL``)."""

    url: str
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timeout_s: float = 60.0
    _client: httpx.Client = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # at init: a client's TLS context takes 25-40 ms, in the first batch otherwise
        self._client = httpx.Client(timeout=self.timeout_s)

    def embed(self, images: Sequence[bytes]) -> EmbeddingBatch:
        client = self._client
        body = _request_body(images)

        def attempt() -> EmbeddingBatch:
            try:
                response = client.post(
                    f"{self.url.rstrip('/')}/invocations",
                    content=body,
                    headers={"Content-Type": "application/json"},
                )
            except httpx.TransportError as exc:
                raise _Retry(EndpointError(f"endpoint unreachable: {exc}")) from exc
            if response.status_code in (429, 503):
                raise _Retry(EndpointThrottled(f"endpoint throttled ({response.status_code})"))
            if response.status_code >= 500:
                raise _Retry(EndpointError(f"endpoint failed ({response.status_code})"))
            if response.status_code >= 400:
                raise _rejection(response.status_code, response.content)
            return _parse_answer(response.content, len(images))

        return self.retry.run(attempt)


@dataclass
class SageMakerEndpoint:
    """A SageMaker endpoint through boto3's ``sagemaker-runtime`` InvokeEndpoint."""

    name: str
    client: Any  # mypy_boto3_sagemaker_runtime.SageMakerRuntimeClient
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    def embed(self, images: Sequence[bytes]) -> EmbeddingBatch:
        from botocore.exceptions import BotoCoreError, ClientError

        body = _request_body(images)

        def attempt() -> EmbeddingBatch:
            try:
                response = self.client.invoke_endpoint(
                    EndpointName=self.name,
                    ContentType="application/json",
                    Accept="application/json",
                    Body=body,
                )
            except ClientError as exc:
                raise _classify_sagemaker_error(exc.response) from exc
            except BotoCoreError as exc:  # connection errors, timeouts
                raise _Retry(EndpointError(f"SageMaker unreachable: {exc}")) from exc
            return _parse_answer(response["Body"].read(), len(images))

        return self.retry.run(attempt)


def _classify_sagemaker_error(response: Any) -> Exception:
    """A SageMaker ClientError -> _Retry (throttled/transient) or EndpointRejected.

    A container's own error arrives as ModelError (424) carrying the container's status and
    body; the server's 4xx there means a bad input, which no retry fixes.
    """
    error = response.get("Error", {})
    code = str(error.get("Code", ""))
    status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    if code == "ModelError":
        original = int(response.get("OriginalStatusCode") or error.get("OriginalStatusCode") or 0)
        message = str(response.get("OriginalMessage") or error.get("OriginalMessage") or "")
        if original in (429, 503):
            return _Retry(EndpointThrottled(f"model container busy ({original})"))
        if 400 <= original < 500:
            return _rejection(original, message.encode())
        return _Retry(EndpointError(f"model container failed ({original}): {message[:200]}"))
    if code in _THROTTLE_CODES or status in (429, 503):
        return _Retry(EndpointThrottled(f"SageMaker throttled: {code}"))
    if code in _TRANSIENT_CODES or status >= 500:
        return _Retry(EndpointError(f"SageMaker failed: {code or status}"))
    return EndpointRejected(f"SageMaker refused the request: {code}: {error.get('Message', '')}")


def sagemaker_client(timeout_s: float) -> Any:
    """A sagemaker-runtime client with botocore's retries off (RetryPolicy decides)."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "sagemaker-runtime",
        config=Config(
            retries={"total_max_attempts": 1, "mode": "standard"},  # our RetryPolicy retries
            read_timeout=timeout_s,
            connect_timeout=5,
        ),
    )
