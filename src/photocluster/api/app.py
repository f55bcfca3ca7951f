"""The cluster API: FastAPI routes that parse, call :mod:`photocluster.library`, return.

Every ``/v1/users/{user_id}/...`` route requires the caller to be that user (403
otherwise, 401 without valid credentials); user and image ids in paths are validated with
the store's rules before anything touches a file.
"""

# No `from __future__ import annotations` here: FastAPI must evaluate the route
# signatures, which refer to dependencies defined inside create_app.
import contextlib
import logging
import time
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request, status
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse, Response

from photocluster import __version__
from photocluster.api import gallery
from photocluster.api.auth import Authenticator, bearer_token
from photocluster.api.schemas import (
    ClustersResponse,
    ErrorBody,
    Health,
    PairsResponse,
    SimilarResponse,
    StatsResponse,
)
from photocluster.config import Settings
from photocluster.errors import (
    InvalidId,
    InvalidThresholds,
    StoreError,
    UnknownImage,
    UnknownUser,
)
from photocluster.ids import IMAGE_ID_MAX, IMAGE_ID_REGEX, USER_ID_MAX, USER_ID_REGEX
from photocluster.library import ClusterResult, Library

log = logging.getLogger(__name__)

UserId = Annotated[
    str,
    Path(pattern=USER_ID_REGEX, max_length=USER_ID_MAX, description="the authenticated user's id"),
]
ImageId = Annotated[str, Path(pattern=IMAGE_ID_REGEX, max_length=IMAGE_ID_MAX)]
Threshold = Annotated[float | None, Query(gt=0, le=1, description="cosine similarity in (0, 1]")]

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "missing or invalid credentials"},
    403: {"model": ErrorBody, "description": "the path's user is not the caller"},
    422: {"model": ErrorBody, "description": "invalid parameters"},
}
# An HTML route documents its extra responses as HTML unless told: they are JSON.
_JSON_ERROR = {
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
}
HTML_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"description": spec["description"], **_JSON_ERROR} for code, spec in ERRORS.items()
}


def create_app(
    settings: Settings, library: Library | None = None, s3: Any | None = None
) -> FastAPI:
    """The API; refuses to build without an authentication mode (see photocluster.api.auth)."""
    authenticator = Authenticator.from_settings(settings)
    library = library or Library.from_settings(settings)
    if s3 is None and settings.bucket and not settings.thumbnail_url_template:
        import boto3
        from botocore.config import Config

        s3 = boto3.client("s3", config=Config(signature_version="s3v4"))
    thumbnails = gallery.Thumbnails(settings, s3)

    def no_unknown_query_parameters(request: Request) -> None:
        """A misspelt parameter (``?hihg=0.9``) is an error, not a silently used default."""
        accepted = _query_parameters(app, request)
        if accepted is None:
            return
        unknown = sorted(set(request.query_params) - accepted)
        if unknown:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                detail=f"unknown query parameter {', '.join(map(repr, unknown))}; "
                f"this route accepts: {', '.join(sorted(accepted)) or 'none'}",
            )

    app = FastAPI(
        title="photocluster",
        version=__version__,
        summary="Which of this user's photos look alike? Groups per similarity tier.",
        dependencies=[Depends(no_unknown_query_parameters)],
    )

    def caller(request: Request) -> str:
        return authenticator.caller(request, bearer_token(request))

    def owner(user_id: UserId, who: Annotated[str, Depends(caller)]) -> str:
        if who != user_id:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, detail="you may only read your own photos"
            )
        return user_id

    def gallery_owner(
        user_id: UserId,
        request: Request,
        access_token: Annotated[
            str | None,
            Query(
                description="bearer token, for browsers that cannot send a header "
                "(RFC 6750 section 2.3)"
            ),
        ] = None,
    ) -> str:
        who = authenticator.caller(request, bearer_token(request) or access_token)
        if who != user_id:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, detail="you may only read your own photos"
            )
        return user_id

    Owner = Annotated[str, Depends(owner)]  # noqa: N806 - a type alias

    @app.exception_handler(InvalidThresholds)
    @app.exception_handler(InvalidId)
    async def unprocessable(_: Request, exc: Exception) -> Response:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.exception_handler(UnknownImage)
    async def not_found(_: Request, exc: Exception) -> Response:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(StoreError)
    async def store_failed(_: Request, exc: Exception) -> Response:
        log.error("store error: %s", exc)
        return JSONResponse({"detail": "the photo library could not be read"}, status_code=503)

    @app.get("/health", response_model=Health, tags=["meta"])
    def health() -> dict[str, str]:
        """Liveness: no authentication."""
        return {"status": "ok", "version": __version__}

    @app.get(
        "/v1/users/{user_id}/clusters",
        response_model=ClustersResponse,
        responses=ERRORS,
        tags=["clusters"],
    )
    def clusters(
        user_id: Owner,
        low: Threshold = None,
        medium: Threshold = None,
        high: Threshold = None,
        linkage: Annotated[
            Literal["complete", "single"] | None,
            Query(
                description="complete (default): every pair in a group reaches the threshold; "
                "single: connected components (chains)"
            ),
        ] = None,
        min_size: Annotated[int, Query(ge=1, le=10_000)] = 2,
    ) -> dict[str, Any]:
        """Groups of alike photos per tier; higher tiers nest inside lower ones."""
        return _clusters(
            library,
            settings,
            user_id,
            {"low": low, "medium": medium, "high": high},
            linkage,
            min_size,
        )

    @app.get(
        "/v1/users/{user_id}/images/{image_id}/similar",
        response_model=SimilarResponse,
        responses={**ERRORS, 404: {"model": ErrorBody, "description": "unknown image"}},
        tags=["clusters"],
    )
    def similar(
        user_id: Owner,
        image_id: ImageId,
        k: Annotated[int, Query(ge=1, le=500)] = 10,
        min_score: Annotated[float, Query(ge=0, le=1)] = 0.0,
    ) -> dict[str, Any]:
        """The k most similar other photos of one photo."""
        try:
            neighbours = library.similar(user_id, image_id, k, min_score)
        except UnknownUser:
            raise UnknownImage(f"no embedding stored for image {image_id!r}") from None
        return {
            "image_id": image_id,
            "neighbors": [{"image_id": n.image_id, "score": n.score} for n in neighbours],
        }

    @app.get(
        "/v1/users/{user_id}/pairs",
        response_model=PairsResponse,
        responses=ERRORS,
        tags=["clusters"],
    )
    def pairs(
        user_id: Owner,
        min_score: Annotated[
            float | None, Query(ge=0, le=1, description=("default: the medium tier"))
        ] = None,
        max_score: Annotated[float, Query(ge=0, le=1)] = 1.0,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    ) -> dict[str, Any]:
        """Pairs of photos with a score in [min_score, max_score], highest first."""
        try:
            model = library.store.header(user_id).model
        except UnknownUser:
            return {
                "user_id": user_id,
                "pairs": [],
                "total": 0,
                "next_offset": None,
                "complete": True,
            }
        low = min_score if min_score is not None else settings.thresholds_for(model)["medium"]
        if low > max_score:
            raise InvalidThresholds(f"min_score {low} is above max_score {max_score}")
        page = library.pairs(user_id, low, max_score, limit, offset)
        return {
            "user_id": user_id,
            "total": page.total,
            "next_offset": page.next_offset,
            "complete": page.complete,
            "pairs": [{"a": p.a, "b": p.b, "score": p.score} for p in page.pairs],
        }

    @app.delete(
        "/v1/users/{user_id}/images/{image_id}", status_code=204, responses=ERRORS, tags=["images"]
    )
    def delete_image(user_id: Owner, image_id: ImageId) -> Response:
        """Forget a photo (e.g. deleted from S3). Idempotent: 204 whether or not it was stored."""
        with contextlib.suppress(UnknownUser):
            library.delete(user_id, [image_id])
        return Response(status_code=204)

    @app.get(
        "/v1/users/{user_id}/stats", response_model=StatsResponse, responses=ERRORS, tags=["images"]
    )
    def stats(user_id: Owner) -> dict[str, Any]:
        """Size of the user's library and the state of its neighbour graph."""
        try:
            s = library.stats(user_id)
        except UnknownUser:
            return {
                "user_id": user_id,
                "model": None,
                "dim": None,
                "n_images": 0,
                "n_records": 0,
                "n_dead": 0,
                "file_bytes": 0,
                "graph_fresh": False,
                "graph_floor": None,
                "graph_edges": None,
            }
        return {
            "user_id": user_id,
            "model": s.model,
            "dim": s.dim,
            "n_images": s.n_images,
            "n_records": s.n_records,
            "n_dead": s.n_dead,
            "file_bytes": s.file_bytes,
            "graph_fresh": s.graph_fresh,
            "graph_floor": s.graph_floor,
            "graph_edges": s.graph_edges,
        }

    @app.get(
        "/v1/users/{user_id}/gallery",
        response_class=HTMLResponse,
        tags=["clusters"],
        responses={**ERRORS, 200: {"content": {"text/html": {}}}},
    )
    def gallery_page(
        user_id: Annotated[str, Depends(gallery_owner)],
        low: Threshold = None,
        medium: Threshold = None,
        high: Threshold = None,
        linkage: Literal["complete", "single"] | None = None,
    ) -> HTMLResponse:
        """The tiers and groups as thumbnails, for a person to judge the clusters by eye."""
        result = _clusters(
            library, settings, user_id, {"low": low, "medium": medium, "high": high}, linkage, 2
        )
        ids = {i for tier in result["tiers"] for group in tier["groups"] for i in group}
        return HTMLResponse(gallery.render(result, thumbnails.urls(user_id, ids)))

    def openapi() -> dict[str, Any]:
        """FastAPI documents an HTML route's error responses as text/html; they are JSON."""
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, summary=app.summary, routes=app.routes
            )
            for operations in schema["paths"].values():
                for operation in operations.values():
                    for code, response in operation.get("responses", {}).items():
                        content = response.get("content", {})
                        if code != "200" and "text/html" in content:
                            content["application/json"] = content.pop("text/html")
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def _query_parameters(app: FastAPI, request: Request) -> set[str] | None:
    """The query parameters the matched route documents in the OpenAPI schema (the same
    list clients and fuzzers read), or None for a route outside the schema."""
    path = getattr(request.scope.get("route"), "path_format", None)
    operation = app.openapi()["paths"].get(path, {}).get(request.method.lower())
    if operation is None:
        return None
    return {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}


def _clusters(
    library: Library,
    settings: Settings,
    user_id: str,
    thresholds: dict[str, float | None],
    linkage: str | None,
    min_size: int,
) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        result = library.clusters(user_id, thresholds, linkage, min_size)
        body = result.to_dict()
    except UnknownUser:  # no photos yet: an empty answer, not an error
        tiers = library.thresholds(settings.model, thresholds)
        empty = ClusterResult(user_id, 0, "", linkage or settings.linkage, [], True)
        body = empty.to_dict() | {
            "model": None,
            "tiers": [
                {"name": name, "threshold": value, "groups": []} for name, value in tiers.items()
            ],
        }
    body["took_ms"] = round((time.perf_counter() - started) * 1e3, 3)
    return body
