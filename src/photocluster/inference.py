"""The embedding server: SageMaker's container contract over HTTP.

* ``GET /ping``: 200 once the model is loaded, 503 before (SageMaker's health check).
* ``POST /invocations``: one image (``image/jpeg``, ``image/png``, ``image/webp``,
  ``application/x-image``, ...) or a batch as ``application/json``
  ``{"instances": ["<base64 image>", ...]}``; answers ``application/json``
  ``{"model": ..., "dim": ..., "embeddings": [[...], ...]}``.
* ``POST /endpoints/{name}/invocations``: the same, at the path of the SageMaker Runtime
  API, so the production client (boto3 ``sagemaker-runtime``) can talk to this server
  directly on a machine without AWS.

A client's bad input gets a 4xx with a JSON error naming the failing instance; the server
keeps serving. The model loads in a background thread at startup; it is used by one
request at a time (on a CPU, batching beats concurrent calls).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from photocluster.config import Settings, get_settings
from photocluster.encoder import Encoder, load_encoder, resolve_model_source
from photocluster.errors import ImageTooLarge, InvalidImage
from photocluster.images import ENCODER_MIN_SIDE, IMAGE_CONTENT_TYPES, ImageLimits, decode_image

log = logging.getLogger(__name__)

#: Milliseconds the server spent decoding and embedding (including queueing for the model).
COMPUTE_TIME_HEADER = "X-Photocluster-Compute-Ms"


class _ModelSlot:
    """The encoder, once loaded; the error if loading failed.

    Every forward pass runs on one dedicated thread: one at a time (on a CPU, batching
    beats concurrent calls), and always the same OpenMP thread team (a new calling thread
    would start another team whose idle threads spin against the busy one).
    """

    def __init__(self) -> None:
        self.encoder: Encoder | None = None
        self.error: str | None = None
        self.loaded = threading.Event()
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inference")


def _error(status: int, message: str, instance: int | None = None) -> JSONResponse:
    body: dict[str, Any] = {"error": message}
    if instance is not None:
        body["instance"] = instance
    return JSONResponse(body, status_code=status)


def create_app(
    load: Callable[[], Encoder],
    limits: ImageLimits | None = None,
    max_batch: int = 32,
) -> FastAPI:
    """The server app; ``load`` builds the encoder (called once, in a background thread)."""
    limits = limits or ImageLimits()
    slot = _ModelSlot()
    # A JSON batch is base64 (4/3 of the bytes) of at most max_batch images.
    max_body = max_batch * limits.max_bytes * 4 // 3 + 4096

    def _load() -> None:  # on the inference thread, so it also warms that thread up
        started = time.perf_counter()
        try:
            slot.encoder = load()
            log.info(
                "model %s loaded in %.1f s", slot.encoder.model_id, time.perf_counter() - started
            )
        except Exception as exc:  # reported by /ping; the process stays up for diagnosis
            log.exception("model failed to load")
            slot.error = f"{type(exc).__name__}: {exc}"
        finally:
            slot.loaded.set()

    @asynccontextmanager
    async def lifespan(_: FastAPI):  # type: ignore[no-untyped-def]
        slot.executor.submit(_load)
        yield
        slot.executor.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(title="photocluster embedder", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.slot = slot

    @app.get("/ping")
    def ping() -> JSONResponse:
        if slot.encoder is not None:
            return JSONResponse(
                {"status": "ok", "model": slot.encoder.model_id, "dim": slot.encoder.dim}
            )
        if slot.error is not None:
            return _error(503, f"model failed to load: {slot.error}")
        return _error(503, "model loading")

    async def invocations(request: Request) -> Response:
        encoder = slot.encoder
        if encoder is None:
            return _error(503, slot.error or "model loading")
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > max_body:
            return _error(413, f"request body of {int(declared):,} bytes is over the limit")
        body = await request.body()
        if len(body) > max_body:
            return _error(413, f"request body of {len(body):,} bytes is over the limit")
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if not body:
            return _error(400, "empty request body")
        if content_type in IMAGE_CONTENT_TYPES:
            raw_images = [body]
        elif content_type == "application/json":
            parsed = _parse_instances(body, max_batch)
            if isinstance(parsed, JSONResponse):
                return parsed
            raw_images = parsed
        else:
            return _error(
                415,
                f"content type {content_type or '(none)'!r} is not accepted; send one image "
                "(image/jpeg, image/png, image/webp, application/x-image) or application/json "
                '{"instances": [base64, ...]}',
            )
        started = time.perf_counter()
        images = []
        for index, raw in enumerate(raw_images):
            try:
                images.append(decode_image(raw, limits, min_side=ENCODER_MIN_SIDE))
            except ImageTooLarge as exc:
                return _error(413, str(exc), index)
            except InvalidImage as exc:
                return _error(400, str(exc), index)
        vectors = await _run_on_model_thread(slot, encoder, images)
        compute_ms = (time.perf_counter() - started) * 1e3
        payload = {"model": encoder.model_id, "dim": encoder.dim, "embeddings": vectors}
        return Response(
            orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY),
            media_type="application/json",
            headers={COMPUTE_TIME_HEADER: f"{compute_ms:.2f}"},
        )

    async def runtime_invocations(request: Request) -> Response:
        """SageMaker Runtime's wire format: container errors wrapped as ModelError (424)."""
        response = await invocations(request)
        if response.status_code < 400:
            return response
        if response.status_code == 503:
            return JSONResponse(
                {"message": "model is not ready"},
                status_code=429,
                headers={"x-amzn-ErrorType": "ModelNotReadyException"},
            )
        return JSONResponse(
            {
                "message": "Received client error from the model container",
                "OriginalStatusCode": response.status_code,
                "OriginalMessage": bytes(response.body).decode(),
            },
            status_code=424,
            headers={"x-amzn-ErrorType": "ModelError"},
        )

    app.add_api_route("/invocations", invocations, methods=["POST"])
    app.add_api_route(
        "/endpoints/{endpoint_name}/invocations",
        runtime_invocations,
        methods=["POST"],
        include_in_schema=False,
    )
    return app


async def _run_on_model_thread(slot: _ModelSlot, encoder: Encoder, images: list[Any]) -> Any:
    return await asyncio.wrap_future(slot.executor.submit(encoder.embed, images))


def _parse_instances(body: bytes, max_batch: int) -> list[bytes] | JSONResponse:
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return _error(400, "body is not valid JSON")
    instances = document.get("instances") if isinstance(document, dict) else None
    if not isinstance(instances, list):
        return _error(400, 'JSON body must be {"instances": ["<base64 image>", ...]}')
    if not instances:
        return _error(400, "instances is empty")
    if len(instances) > max_batch:
        return _error(413, f"batch of {len(instances)} images is over the limit of {max_batch}")
    decoded = []
    for index, item in enumerate(instances):
        if not isinstance(item, str):
            return _error(400, "each instance must be a base64 string", index)
        try:
            decoded.append(base64.b64decode(item, validate=True))
        except (binascii.Error, ValueError):
            return _error(400, "instance is not valid base64", index)
    return decoded


def app_from_settings(settings: Settings) -> FastAPI:
    """The server as configured: SageMaker's /opt/ml/model first, else PHOTOCLUSTER_MODEL."""
    source = resolve_model_source(settings.model, settings.model_dir)

    def load() -> Encoder:
        return load_encoder(
            source,
            pooling=settings.pooling,
            device=settings.device,
            threads=settings.torch_threads,
            batch_size=settings.embed_batch_max,
        )

    limits = ImageLimits(max_bytes=settings.image_max_bytes, max_pixels=settings.image_max_pixels)
    return create_app(load, limits, settings.embed_batch_max)


def main() -> None:
    """``serve``: run the server (port 8080 by default, as SageMaker expects)."""
    import uvicorn

    settings = get_settings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(message)s")
    uvicorn.run(
        app_from_settings(settings),
        host=settings.host,
        port=settings.embedder_port,
        log_level=settings.log_level.lower(),
        access_log=False,
    )


if __name__ == "__main__":
    main()
