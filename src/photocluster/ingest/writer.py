"""The writer: validate a payload from ingest and apply it to the user's library.

Payloads (the writer Lambda's event)::

    {"op": "upsert", "user_id": "u1", "model": "...", "calibration": {...} | null,
     "runtime": "onnx-int8",
     "items": [{"image_id": "a.jpg", "embedding_f32": "<base64>",
                "key": "uploads/u1/a.jpg", "modified": 1732800000.0,
                "features": "<base64>"}]}
    {"op": "delete", "user_id": "u1", "image_ids": ["a.jpg", "b.jpg"]}
    {"op": "record", "user_id": "u1",
     "items": [{"image_id": "c.jpg", "key": "uploads/u1/c.jpg", "status": "failed",
                "error": {"code": "invalid_image", "message": "..."}, "modified": ...}]}

Each item's vector is ``embedding_f32``, base64 of its little-endian float32 values (what
ingest sends: a quarter of the JSON's bytes, and no decimals to print, parse and validate,
which took 2.6 ms a photo against 0.14: README, Ingest), or ``embedding``, a list of numbers
(tools, tests, an ingest deployed before the packed form): one or the other.
``runtime`` (optional) is the encoder runtime the embedder said served the vectors: kept
on the store root beside the calibration, where ``GET stats`` reads it.
``calibration`` is what the embedder reported with the vectors (the tiers bake-model
calibrated for the model): the writer keeps it on the store root, where the API reads it,
before storing the vectors, so the graph's floor is the calibrated one.
``features`` (optional): the photo's packed ORB features, base64, for the geometric check
(:mod:`photocluster.library.copies`). ``key`` and ``modified`` (the object's S3
LastModified) are optional; with them, an event of
an object already replaced or deleted changes nothing. ``record`` sets the status of
images that will not (``failed``) or not yet (``pending``) be stored.

A payload that can never succeed (bad ids, wrong model or dimension, NaN) is answered with
``{"ok": false, "error_type": ..., "error": ...}``: the caller reports it, no retry. Anything
else that fails (EFS unavailable, a lock timeout) raises, so the invocation fails and the
caller retries.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Protocol

import numpy as np
import numpy.typing as npt
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from photocluster.calibrations import ModelCalibration
from photocluster.clustering.orb import MAX_PACKED_BYTES, InvalidFeatures, decode
from photocluster.config import EncoderRuntime
from photocluster.errors import ModelMismatch, PhotoclusterError, WriterUnavailable
from photocluster.library import Library, WriteResult
from photocluster.store.format import MAX_DIM
from photocluster.store.records import ImageError, ImageRecord

log = logging.getLogger(__name__)

MAX_ITEMS = 1000
#: Base64 of the longest vector's float32 values.
MAX_PACKED_VECTOR_CHARS = 4 * (4 * MAX_DIM + 2) // 3
#: Base64 of the largest packed features.
MAX_FEATURES_CHARS = 4 * (MAX_PACKED_BYTES + 2) // 3


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def packed_vector(value: str) -> npt.NDArray[np.float32]:
    """The float32 vector ``embedding_f32`` packs; ValueError when it packs none."""
    try:
        raw = base64.b64decode(value, validate=True)
    except binascii.Error as exc:
        raise ValueError(f"not base64 ({exc})") from exc
    if not raw or len(raw) % 4:
        raise ValueError(f"{len(raw)} bytes are not a vector of float32 values")
    return np.frombuffer(raw, dtype="<f4").astype(np.float32)


def refused_packed_vectors(answer: dict[str, Any]) -> bool:
    """Whether a writer deployed before the packed form refused it: it asks for
    ``embedding``, which this one never requires (during a rollback, Terraform puts the
    writer back before ingest)."""
    error = str(answer.get("error", ""))
    return answer.get("ok") is False and ".embedding: Field required" in error


def pack_vector(vector: npt.ArrayLike) -> str:
    """``embedding_f32`` of a vector: base64 of its little-endian float32 values."""
    return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode()


class WriterItem(_Strict):
    image_id: str
    embedding: list[float] | None = Field(None, min_length=1, max_length=MAX_DIM)
    embedding_f32: str | None = Field(None, max_length=MAX_PACKED_VECTOR_CHARS)
    key: str | None = Field(None, max_length=1024)
    modified: float | None = None
    features: str | None = Field(None, max_length=MAX_FEATURES_CHARS)

    @field_validator("features")
    @classmethod
    def _packed_features(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                decode(base64.b64decode(value, validate=True))
            except (binascii.Error, InvalidFeatures) as exc:
                raise ValueError(f"not base64 of packed ORB features ({exc})") from exc
        return value

    @field_validator("embedding_f32")
    @classmethod
    def _packed_vector(cls, value: str | None) -> str | None:
        if value is not None:
            packed_vector(value)
        return value

    @model_validator(mode="after")
    def _one_vector(self) -> WriterItem:
        if (self.embedding is None) == (self.embedding_f32 is None):
            raise ValueError("give the vector as one of embedding or embedding_f32")
        return self

    def vector(self) -> npt.NDArray[np.float64]:
        """The vector, as the library normalises it (float64)."""
        if self.embedding_f32 is not None:
            return packed_vector(self.embedding_f32).astype(np.float64)
        return np.asarray(self.embedding, dtype=np.float64)

    def feature_bytes(self) -> bytes | None:
        return None if self.features is None else base64.b64decode(self.features)


class UpsertRequest(_Strict):
    op: Literal["upsert"] = "upsert"
    user_id: str
    model: str = Field(min_length=1, max_length=256)
    calibration: ModelCalibration | None = None
    runtime: EncoderRuntime | None = None  # the encoder runtime that embedded the items
    items: list[WriterItem] = Field(min_length=1, max_length=MAX_ITEMS)


class DeleteRequest(_Strict):
    op: Literal["delete"]
    user_id: str
    image_ids: list[str] = Field(min_length=1, max_length=MAX_ITEMS)


class StatusError(_Strict):
    code: str = Field(min_length=1, max_length=64)
    message: str = Field(max_length=2000)


class StatusItem(_Strict):
    image_id: str
    key: str | None = Field(None, max_length=1024)
    status: Literal["pending", "failed"]
    error: StatusError | None = None
    modified: float | None = None
    expires: float | None = None


class RecordRequest(_Strict):
    op: Literal["record"]
    user_id: str
    items: list[StatusItem] = Field(min_length=1, max_length=MAX_ITEMS)


WriterRequest = Annotated[UpsertRequest | DeleteRequest | RecordRequest, Field(discriminator="op")]
_REQUEST = TypeAdapter(WriterRequest)


def handle_write(library: Library, payload: Any, expected_model: str | None) -> dict[str, Any]:
    """Apply one writer payload; permanent problems come back as ``ok: false``."""
    try:
        request = _REQUEST.validate_python(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        return _refused("InvalidRequest", f"{where}: {first['msg']}")
    try:
        answer = _APPLY[request.op](library, request, expected_model)
    except PhotoclusterError as exc:
        return _refused(type(exc).__name__, str(exc))
    log.info("writer %s user=%s %s", request.op, request.user_id, answer)
    return {"ok": True, "op": request.op, **answer}


def _upsert(library: Library, request: Any, expected_model: str | None) -> dict[str, Any]:
    assert isinstance(request, UpsertRequest)
    if expected_model is not None and request.model != expected_model:
        raise ModelMismatch(
            f"this deployment stores {expected_model!r} embeddings; refusing "
            f"vectors of {request.model!r}"
        )
    if request.calibration is not None:
        _keep_calibration(library, request.model, request.calibration)
    if request.runtime is not None and library.calibrations.note_served(
        request.model, request.runtime
    ):
        log.info("%s is now embedded by the %s runtime", request.model, request.runtime)
    items = request.items
    result: WriteResult = library.write(
        request.user_id,
        request.model,
        [item.image_id for item in items],
        [item.vector() for item in items],
        keys=[item.key for item in items],
        modified=[item.modified for item in items],
        features=[item.feature_bytes() for item in items],
    )
    return result.to_dict()


def _keep_calibration(library: Library, model: str, calibration: ModelCalibration) -> None:
    if calibration.model_id != model:
        raise ModelMismatch(
            f"the calibration sent is of {calibration.model_id!r}, the vectors of {model!r}"
        )
    if library.calibrations.save(calibration):
        log.info("calibration of %s saved: %s", model, calibration.thresholds.as_dict())


def _delete(library: Library, request: Any, expected_model: str | None) -> dict[str, Any]:
    assert isinstance(request, DeleteRequest)
    return library.delete(request.user_id, request.image_ids).to_dict()


def _record(library: Library, request: Any, expected_model: str | None) -> dict[str, Any]:
    assert isinstance(request, RecordRequest)
    now = time.time()
    records = [
        ImageRecord(
            item.image_id,
            item.status,
            item.key,
            ImageError(item.error.code, item.error.message) if item.error else None,
            now,
            now,
            item.expires,
            item.modified,
        )
        for item in request.items
    ]
    news = library.record(request.user_id, records)
    return {"recorded": sum(news), "stale": len(news) - sum(news)}


#: Each operation's step, picked by the payload's ``op``.
_APPLY: dict[str, Callable[[Library, Any, str | None], dict[str, Any]]] = {
    "upsert": _upsert,
    "delete": _delete,
    "record": _record,
}


def _refused(error_type: str, message: str) -> dict[str, Any]:
    log.warning("writer refused a payload: %s: %s", error_type, message)
    return {"ok": False, "error_type": error_type, "error": message}


class WriterClient(Protocol):
    #: Whether the writer runs in the caller's thread (its CPU is then the caller's too).
    runs_here: bool

    def write(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Apply one payload; raises WriterUnavailable on a transient failure."""
        ...


@dataclass
class LambdaWriter:
    """The writer Lambda, invoked synchronously (production)."""

    client: Any  # mypy_boto3_lambda.LambdaClient
    function: str
    runs_here: bool = False

    def write(self, payload: dict[str, Any]) -> dict[str, Any]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            response = self.client.invoke(
                FunctionName=self.function,
                InvocationType="RequestResponse",
                Payload=json.dumps(payload).encode(),
            )
            body = response["Payload"].read()
        except (ClientError, BotoCoreError) as exc:
            raise WriterUnavailable(f"writer invoke failed: {exc}") from exc
        if response.get("FunctionError"):
            raise WriterUnavailable(f"writer failed: {body[:300]!r}")
        result = json.loads(body)
        if not isinstance(result, dict):
            raise WriterUnavailable(f"writer answered {body[:100]!r}")
        return result


@dataclass
class InProcessWriter:
    """The writer's code called in this process (local runs and tests): the payload takes
    the same JSON round trip as through Lambda, and unexpected errors read as transient."""

    handler: Callable[[dict[str, Any]], dict[str, Any]]
    runs_here: bool = True

    def write(self, payload: dict[str, Any]) -> dict[str, Any]:
        event = json.loads(json.dumps(payload))
        try:
            return self.handler(event)
        except PhotoclusterError:
            raise
        except Exception as exc:
            raise WriterUnavailable(f"writer failed: {type(exc).__name__}: {exc}") from exc
