"""The app factory: state, routers, middleware, error mapping, the OpenAPI document."""

from __future__ import annotations

import re
from typing import Any

from fastapi import Depends, FastAPI

from photocluster import __version__
from photocluster.api import errors, openapi, redact
from photocluster.api.auth import AuthenticateFirst, Authenticator
from photocluster.api.bucket import UploadBucket
from photocluster.api.deps import deployment, no_unknown_query_parameters
from photocluster.api.gallery import Thumbnails
from photocluster.api.middleware import BodyLimit, Cors, ServerTiming, cors_options
from photocluster.api.routers import (
    clusters,
    decisions,
    gallery,
    health,
    images,
    pairs,
    stats,
    uploads,
)
from photocluster.config import Settings
from photocluster.library import Library

#: Every route about a user's photos needs a token; the gallery page may carry it in its URL.
PROTECTED = re.compile(r"^/v1/users/")
TOKEN_IN_QUERY = re.compile(r"^/v1/users/[^/]+/gallery$")


#: Every router of the API, one per resource.
ROUTERS = tuple(
    module.router
    for module in (health, uploads, images, clusters, pairs, decisions, stats, gallery)
)


def create_app(
    settings: Settings, library: Library | None = None, s3: Any | None = None
) -> FastAPI:
    """The API; refuses to build without an authentication mode (see photocluster.api.auth)."""
    app = FastAPI(
        title="photocluster",
        version=__version__,
        summary="Which of this user's photos look alike? Groups per similarity tier.",
        dependencies=[Depends(no_unknown_query_parameters)],
        redirect_slashes=False,  # a 307 built from the Host header; 404 says it plainly
        docs_url=None,  # openapi.install serves /docs from the package's own files
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.deployment = deployment(settings)
    app.state.authenticator = Authenticator.from_settings(settings)
    app.state.library = library or Library.from_settings(settings)
    # A corrupt calibration of the deployment's model stops the API at startup, not later.
    app.state.library.tiers(settings.model)
    app.state.bucket = UploadBucket.from_settings(settings, s3)
    app.state.thumbnails = Thumbnails(settings, app.state.bucket and app.state.bucket.s3)
    for router in ROUTERS:
        app.include_router(router)
    # Outermost last: CORS answers preflights before authentication; timing covers all.
    app.add_middleware(
        AuthenticateFirst,
        authenticator=app.state.authenticator,
        protected=PROTECTED,
        token_in_query=TOKEN_IN_QUERY,
    )
    app.add_middleware(BodyLimit, limit=settings.api_max_body_bytes)
    # Always: a browser's preflight gets a CORS answer (refused when no origin is allowed)
    app.add_middleware(Cors, **cors_options(settings.cors_origins))
    app.add_middleware(ServerTiming)
    errors.install(app)
    openapi.install(app)
    redact.install()
    return app
