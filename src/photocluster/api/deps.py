"""Dependencies of the routes, as ``Annotated`` aliases: path parameters with the id rules,
who is calling, whose photos they may read, and the app's library and settings."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Path, Query, Request, status

from photocluster.api.auth import Authenticator, bearer_token
from photocluster.api.bucket import UploadBucket
from photocluster.api.gallery import Thumbnails
from photocluster.api.openapi import documented_query_parameters
from photocluster.config import Settings
from photocluster.ids import IMAGE_ID_MAX, IMAGE_ID_REGEX, USER_ID_MAX, USER_ID_REGEX
from photocluster.library import Library

UserId = Annotated[
    str,
    Path(pattern=USER_ID_REGEX, max_length=USER_ID_MAX, description="the authenticated user's id"),
]
ImageId = Annotated[str, Path(pattern=IMAGE_ID_REGEX, max_length=IMAGE_ID_MAX)]
Threshold = Annotated[float | None, Query(gt=0, le=1, description="cosine similarity in (0, 1]")]


def tier_thresholds(
    low: Threshold = None, medium: Threshold = None, high: Threshold = None
) -> dict[str, float | None]:
    """The tiers a request asks for; the ones it leaves out keep the model's defaults."""
    return {"low": low, "medium": medium, "high": high}


Tiers = Annotated[dict[str, float | None], Depends(tier_thresholds)]


def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_library(request: Request) -> Library:
    library: Library = request.app.state.library
    return library


def get_bucket(request: Request) -> UploadBucket | None:
    bucket: UploadBucket | None = request.app.state.bucket
    return bucket


def get_thumbnails(request: Request) -> Thumbnails:
    thumbnails: Thumbnails = request.app.state.thumbnails
    return thumbnails


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
LibraryDep = Annotated[Library, Depends(get_library)]
ThumbnailsDep = Annotated[Thumbnails, Depends(get_thumbnails)]
#: None when no bucket is configured (PHOTOCLUSTER_BUCKET): uploads are then refused.
BucketDep = Annotated[UploadBucket | None, Depends(get_bucket)]


def _authenticator(request: Request) -> Authenticator:
    authenticator: Authenticator = request.app.state.authenticator
    return authenticator


def caller(request: Request) -> str:
    """The authenticated user (401 without valid credentials)."""
    return _authenticator(request).caller(request, bearer_token(request))


def owner(user_id: UserId, who: Annotated[str, Depends(caller)]) -> str:
    """The path's user, who must be the caller (403 otherwise)."""
    return _same_user(user_id, who)


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
    """As :func:`owner`, with the token also accepted in the URL (a browser's page)."""
    token = bearer_token(request) or access_token
    return _same_user(user_id, _authenticator(request).caller(request, token))


def _same_user(user_id: str, who: str) -> str:
    if who != user_id:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="you may only read your own photos")
    return user_id


Owner = Annotated[str, Depends(owner)]
GalleryOwner = Annotated[str, Depends(gallery_owner)]


def no_unknown_query_parameters(request: Request) -> None:
    """A misspelt parameter (``?hihg=0.9``) is an error, not a silently used default."""
    accepted = documented_query_parameters(request)
    if accepted is None:
        return
    unknown = sorted(set(request.query_params) - accepted)
    if unknown:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail=f"unknown query parameter {', '.join(map(repr, unknown))}; "
            f"this route accepts: {', '.join(sorted(accepted)) or 'none'}",
        )
