"""The writer: validate a payload from ingest and apply it to the user's store and graph.

Payloads (the writer Lambda's event)::

    {"op": "upsert", "user_id": "u1", "model": "...",
     "items": [{"image_id": "a", "embedding": [0.1, ...]}]}
    {"op": "delete", "user_id": "u1", "image_ids": ["a", "b"]}

A payload that can never succeed (bad ids, wrong model or dimension, NaN) is answered with
``{"ok": false, "error_type": ..., "error": ...}``: the caller reports it, no retry. Anything
else that fails (EFS unavailable, a lock timeout) raises, so the invocation fails and the
caller retries.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from photocluster.errors import ModelMismatch, PhotoclusterError, WriterUnavailable
from photocluster.library import Library

log = logging.getLogger(__name__)

MAX_ITEMS = 1000


class WriterItem(BaseModel):
    model_config = ConfigDict(extra="forbid")
    image_id: str
    embedding: list[float] = Field(min_length=1, max_length=65536)


class UpsertRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    op: Literal["upsert"] = "upsert"
    user_id: str
    model: str = Field(min_length=1, max_length=256)
    items: list[WriterItem] = Field(min_length=1, max_length=MAX_ITEMS)


class DeleteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    op: Literal["delete"]
    user_id: str
    image_ids: list[str] = Field(min_length=1, max_length=MAX_ITEMS)


WriterRequest = Annotated[UpsertRequest | DeleteRequest, Field(discriminator="op")]
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
        if isinstance(request, UpsertRequest):
            if expected_model is not None and request.model != expected_model:
                raise ModelMismatch(
                    f"this deployment stores {expected_model!r} embeddings; refusing "
                    f"vectors of {request.model!r}"
                )
            result = library.write(
                request.user_id,
                request.model,
                [item.image_id for item in request.items],
                [item.embedding for item in request.items],
            )
        else:
            result = library.delete(request.user_id, request.image_ids)
    except PhotoclusterError as exc:
        if isinstance(exc, LookupError) and isinstance(request, DeleteRequest):
            return {"ok": True, "op": "delete", "deleted": 0, "missing": len(request.image_ids)}
        return _refused(type(exc).__name__, str(exc))
    log.info("writer %s user=%s %s", request.op, request.user_id, result.to_dict())
    return {"ok": True, "op": request.op, **result.to_dict()}


def _refused(error_type: str, message: str) -> dict[str, Any]:
    log.warning("writer refused a payload: %s: %s", error_type, message)
    return {"ok": False, "error_type": error_type, "error": message}


class WriterClient(Protocol):
    def write(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Apply one payload; raises WriterUnavailable on a transient failure."""
        ...


@dataclass
class LambdaWriter:
    """The writer Lambda, invoked synchronously (production)."""

    client: Any  # mypy_boto3_lambda.LambdaClient
    function: str

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

    def write(self, payload: dict[str, Any]) -> dict[str, Any]:
        event = json.loads(json.dumps(payload))
        try:
            return self.handler(event)
        except PhotoclusterError:
            raise
        except Exception as exc:
            raise WriterUnavailable(f"writer failed: {type(exc).__name__}: {exc}") from exc
