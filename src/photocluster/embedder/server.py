"""The embedding server: SageMaker's container contract over HTTP.

* ``GET /ping``: 200 once the model is loaded, 503 before (SageMaker's health check);
  the 200 answers ``{"status": "ok", "model": ..., "dim": ..., "runtime": ...,
  "calibration": {...} | null}``: the model id, the runtime serving it, and the tiers
  bake-model calibrated for it (``calibration.json``; null when uncalibrated).
* ``POST /invocations``: one image (``image/jpeg``, ``image/png``, ``image/webp``,
  ``application/x-image``, ...) or a batch as ``application/json``
  ``{"instances": ["<base64 image>", ...]}``; answers ``application/json``
  ``{"model": ..., "dim": ..., "runtime": ..., "calibration": ..., "cpu_ms": ...,
  "embeddings": [[...], ...]}``: the writer persists the calibration where the API reads
  it; ``cpu_ms`` is the CPU the server spent on the request (decoding, and the forward
  pass in all of its threads), which ingest's cost metrics report as ``embedder``.
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
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from PIL import Image

from photocluster.calibrations import ModelCalibration
from photocluster.config import EncoderRuntime, Settings, get_settings
from photocluster.embedder.base import Encoder
from photocluster.embedder.fidelity import baked_runtime
from photocluster.embedder.loader import load_calibration, load_encoder, resolve_model_source
from photocluster.errors import ImageTooLarge, InvalidImage
from photocluster.images import (
    ENCODER_MIN_SIDE,
    IMAGE_CONTENT_TYPES,
    ImageLimits,
    decode_image,
    image_limits,
)

log = logging.getLogger(__name__)

#: Milliseconds the server spent decoding and embedding (including queueing for the model).
COMPUTE_TIME_HEADER = "X-Photocluster-Compute-Ms"


class InferenceError(Exception):
    """A request the server cannot answer: an HTTP status, and the failing instance."""

    def __init__(self, status: int, message: str, instance: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.instance = instance

    def response(self) -> JSONResponse:
        body: dict[str, Any] = {"error": self.message}
        if self.instance is not None:
            body["instance"] = self.instance
        return JSONResponse(body, status_code=self.status)


@dataclass(frozen=True)
class ServedModel:
    """The encoder, the runtime running it, and the tiers calibrated with its weights."""

    encoder: Encoder
    runtime: EncoderRuntime
    calibration: ModelCalibration | None

    def describe(self) -> dict[str, Any]:
        """What every answer says about the model (the calibration: null if none)."""
        calibration = self.calibration.model_dump(mode="json") if self.calibration else None
        return {
            "model": self.encoder.model_id,
            "dim": self.encoder.dim,
            "runtime": self.runtime,
            "calibration": calibration,
        }


class ModelSlot:
    """The model, once loaded; the error if loading failed.

    Every forward pass runs on one dedicated thread: one at a time (on a CPU, batching
    beats concurrent calls), and always the same OpenMP thread team (a new calling thread
    would start another team whose idle threads spin against the busy one).
    """

    def __init__(self, load: Callable[[], ServedModel]) -> None:
        self.model: ServedModel | None = None
        self.error: str | None = None
        self.loaded = threading.Event()
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inference")
        self._load = load

    def start(self) -> None:
        """Load the model on the inference thread (which also warms that thread up)."""
        self.executor.submit(self._load_now)

    def _load_now(self) -> None:
        started = time.perf_counter()
        try:
            self.model = self._load()
            elapsed = time.perf_counter() - started
            calibrated = "calibrated" if self.model.calibration else "uncalibrated"
            log.info(
                "model %s (%s) loaded in %.1f s", self.model.encoder.model_id, calibrated, elapsed
            )
        except Exception as exc:  # reported by /ping; the process stays up for diagnosis
            log.exception("model failed to load")
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            self.loaded.set()

    def ready(self) -> ServedModel:
        """The model, or 503 while it loads (or after it failed to)."""
        if self.model is None:
            raise InferenceError(503, self.error or "model loading")
        return self.model

    async def embed(
        self, encoder: Encoder, images: list[Image.Image]
    ) -> tuple[npt.NDArray[np.float32], float]:
        """The vectors, and the process's CPU-ms during the forward pass (its intra-op
        threads included: passes run one at a time, so little else runs meanwhile)."""

        def forward() -> tuple[npt.NDArray[np.float32], float]:
            started = time.process_time()
            vectors = encoder.embed(images)
            return vectors, (time.process_time() - started) * 1e3

        return await asyncio.wrap_future(self.executor.submit(forward))


@dataclass(frozen=True)
class Service:
    """What the routes need: the model and the request limits."""

    slot: ModelSlot
    limits: ImageLimits
    max_batch: int

    @property
    def max_body(self) -> int:
        # A JSON batch is base64 (4/3 of the bytes) of at most max_batch images.
        return self.max_batch * self.limits.max_bytes * 4 // 3 + 4096


router = APIRouter()


@router.get("/ping")
def ping(request: Request) -> JSONResponse:
    """SageMaker's health check: 200 once the model is loaded, 503 before (with why); says
    which model, runtime and calibrated tiers this server answers with."""
    slot = _service(request).slot
    if slot.model is None:
        loading = f"model failed to load: {slot.error}" if slot.error else "model loading"
        raise InferenceError(503, loading)
    return JSONResponse({"status": "ok", **slot.model.describe()})


@router.post("/invocations")
async def invocations(request: Request) -> Response:
    """Embed one image, or a JSON batch of base64 images."""
    service = _service(request)
    model = service.slot.ready()
    body = await _read_body(request, service.max_body)
    raw_images = _images_in(body, _content_type(request), service.max_batch)
    started, decoding = time.perf_counter(), time.thread_time()
    images = _decode_all(raw_images, service.limits)
    decode_ms = (time.thread_time() - decoding) * 1e3
    vectors, forward_ms = await service.slot.embed(model.encoder, images)
    compute_ms = (time.perf_counter() - started) * 1e3
    cpu_ms = round(decode_ms + forward_ms, 3)
    payload = {**model.describe(), "cpu_ms": cpu_ms, "embeddings": vectors}
    return Response(
        orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY),
        media_type="application/json",
        headers={COMPUTE_TIME_HEADER: f"{compute_ms:.2f}"},
    )


@router.post("/endpoints/{endpoint_name}/invocations", include_in_schema=False)
async def runtime_invocations(request: Request) -> Response:
    """SageMaker Runtime's wire format: container errors wrapped as ModelError (424)."""
    try:
        return await invocations(request)
    except InferenceError as exc:
        return _as_runtime_error(exc)


def _service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


def _content_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def _read_body(request: Request, max_body: int) -> bytes:
    """The request body, refused with 413 before reading when its declared size is over."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_body:
        raise InferenceError(413, f"request body of {int(declared):,} bytes is over the limit")
    body = await request.body()
    if len(body) > max_body:
        raise InferenceError(413, f"request body of {len(body):,} bytes is over the limit")
    return body


def _images_in(body: bytes, content_type: str, max_batch: int) -> list[bytes]:
    """The encoded images of a request: the body itself, or the instances of a batch."""
    if not body:
        raise InferenceError(400, "empty request body")
    if content_type in IMAGE_CONTENT_TYPES:
        return [body]
    if content_type == "application/json":
        return _parse_instances(body, max_batch)
    raise InferenceError(
        415,
        f"content type {content_type or '(none)'!r} is not accepted; send one image "
        "(image/jpeg, image/png, image/webp, application/x-image) or application/json "
        '{"instances": [base64, ...]}',
    )


def _parse_instances(body: bytes, max_batch: int) -> list[bytes]:
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise InferenceError(400, "body is not valid JSON") from None
    instances = document.get("instances") if isinstance(document, dict) else None
    if not isinstance(instances, list):
        raise InferenceError(400, 'JSON body must be {"instances": ["<base64 image>", ...]}')
    if not instances:
        raise InferenceError(400, "instances is empty")
    if len(instances) > max_batch:
        raise InferenceError(
            413, f"batch of {len(instances)} images is over the limit of {max_batch}"
        )
    return [_base64_instance(item, index) for index, item in enumerate(instances)]


def _base64_instance(item: object, index: int) -> bytes:
    if not isinstance(item, str):
        raise InferenceError(400, "each instance must be a base64 string", index)
    try:
        return base64.b64decode(item, validate=True)
    except (binascii.Error, ValueError):
        raise InferenceError(400, "instance is not valid base64", index) from None


def _decode_all(raw_images: list[bytes], limits: ImageLimits) -> list[Image.Image]:
    """Decoded images; the first that fails names its instance (413 if too large)."""
    images = []
    for index, raw in enumerate(raw_images):
        try:
            images.append(decode_image(raw, limits, min_side=ENCODER_MIN_SIDE))
        except ImageTooLarge as exc:
            raise InferenceError(413, str(exc), index) from None
        except InvalidImage as exc:
            raise InferenceError(400, str(exc), index) from None
    return images


def _as_runtime_error(exc: InferenceError) -> JSONResponse:
    """How SageMaker Runtime reports a container's error to its caller."""
    if exc.status == 503:
        return JSONResponse(
            {"message": "model is not ready"},
            status_code=429,
            headers={"x-amzn-ErrorType": "ModelNotReadyException"},
        )
    return JSONResponse(
        {
            "message": "Received client error from the model container",
            "OriginalStatusCode": exc.status,
            "OriginalMessage": bytes(exc.response().body).decode(),
        },
        status_code=424,
        headers={"x-amzn-ErrorType": "ModelError"},
    )


async def _inference_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, InferenceError)
    return exc.response()


def create_app(
    load: Callable[[], ServedModel], limits: ImageLimits | None = None, max_batch: int = 32
) -> FastAPI:
    """The server app; ``load`` builds the model (called once, in a background thread)."""
    service = Service(ModelSlot(load), limits or ImageLimits(), max_batch)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        service.slot.start()
        yield
        service.slot.executor.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(title="photocluster embedder", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.service = service
    app.include_router(router)
    app.add_exception_handler(InferenceError, _inference_error)
    return app


def app_from_settings(settings: Settings) -> FastAPI:
    """The server as configured: SageMaker's /opt/ml/model first, else PHOTOCLUSTER_MODEL."""
    source = resolve_model_source(settings.model, settings.model_dir)

    runtime = settings.encoder_runtime or baked_runtime(source) or "torch"

    def load() -> ServedModel:
        calibration = load_calibration(source)  # first: a corrupt file fails in a moment
        encoder = load_encoder(
            source,
            pooling=settings.pooling,
            device=settings.device,
            threads=settings.encoder_threads,
            batch_size=settings.embed_batch_max,
            runtime=runtime,
        )
        return ServedModel(encoder, runtime, calibration)

    limits = image_limits(settings)
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
