"""The app factory: state, routers, error mapping, the OpenAPI document."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, FastAPI

from photocluster import __version__
from photocluster.api import errors, openapi, redact
from photocluster.api.auth import Authenticator
from photocluster.api.bucket import UploadBucket
from photocluster.api.deps import no_unknown_query_parameters
from photocluster.api.gallery import Thumbnails
from photocluster.api.routers import clusters, gallery, health, images, pairs, stats, uploads
from photocluster.config import Settings
from photocluster.library import Library


def create_app(
    settings: Settings, library: Library | None = None, s3: Any | None = None
) -> FastAPI:
    """The API; refuses to build without an authentication mode (see photocluster.api.auth)."""
    app = FastAPI(
        title="photocluster",
        version=__version__,
        summary="Which of this user's photos look alike? Groups per similarity tier.",
        dependencies=[Depends(no_unknown_query_parameters)],
    )
    app.state.settings = settings
    app.state.authenticator = Authenticator.from_settings(settings)
    app.state.library = library or Library.from_settings(settings)
    app.state.bucket = UploadBucket.from_settings(settings, s3)
    app.state.thumbnails = Thumbnails(settings, app.state.bucket and app.state.bucket.s3)
    for module in (health, uploads, images, clusters, pairs, stats, gallery):
        app.include_router(module.router)
    errors.install(app)
    openapi.install(app)
    redact.install()
    return app
