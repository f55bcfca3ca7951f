"""Dependencies of the routes, as ``Annotated`` aliases: path parameters with the id rules,
who is calling, whose photos they may read, and the app's library and settings."""

from __future__ import annotations

import hashlib
from typing import Annotated

from fastapi import Depends, Header, Path, Query, Request, Response, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from photocluster import __version__
from photocluster.api.auth import Authenticator, bearer_token
from photocluster.api.bucket import UploadBucket
from photocluster.api.errors import ApiError, NotModified
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
Threshold = Annotated[
    float | None,
    Query(gt=0, le=1, allow_inf_nan=False, description="cosine similarity in (0, 1]"),
]


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


#: Documents the bearer scheme (the check itself is auth.AuthenticateFirst's, done first).
BEARER = HTTPBearer(
    scheme_name="bearerAuth", auto_error=False, description="a JWT whose sub is the user id"
)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)]


def caller(request: Request) -> str:
    """The authenticated user (401 without valid credentials)."""
    who = getattr(request.state, "caller", None)
    if isinstance(who, str):
        return who
    authenticator: Authenticator = request.app.state.authenticator
    return authenticator.caller(request, bearer_token(request))


def owner(user_id: UserId, who: Annotated[str, Depends(caller)], _: Credentials) -> str:
    """The path's user, who must be the caller (403 otherwise)."""
    return _same_user(user_id, who)


def gallery_owner(
    user_id: UserId,
    who: Annotated[str, Depends(caller)],
    _: Credentials,
    access_token: Annotated[
        str | None,
        Query(
            description="bearer token, for browsers that cannot send a header "
            "(RFC 6750 section 2.3)"
        ),
    ] = None,
) -> str:
    """As :func:`owner`, with the token also accepted in the URL (a browser's page)."""
    return _same_user(user_id, who)


def _same_user(user_id: str, who: str) -> str:
    if who != user_id:
        raise ApiError("forbidden", "you may only use your own library")
    return user_id


Owner = Annotated[str, Depends(owner)]
GalleryOwner = Annotated[str, Depends(gallery_owner)]


def no_unknown_query_parameters(request: Request) -> None:
    """A misspelt parameter (``?hihg=0.9``) is an error, not a silently used default; so is
    one given twice (``?low=0.5&low=0.9``: which one?)."""
    accepted = documented_query_parameters(request)
    if accepted is None:
        return
    unknown = sorted(set(request.query_params) - accepted)
    if unknown:
        raise ApiError(
            "unknown_query_parameter",
            f"unknown query parameter {_named(unknown)}; "
            f"this route accepts: {', '.join(sorted(accepted)) or 'none'}",
            [
                {"loc": ["query", _cut(name)], "type": "unknown_query_parameter"}
                for name in unknown[:_ECHOED]
            ],
        )
    repeated = sorted({k for k in request.query_params if len(request.query_params.getlist(k)) > 1})
    if repeated:
        raise ApiError(
            "repeated_query_parameter",
            f"query parameter {_named(repeated)} given more than once",
            [
                {"loc": ["query", _cut(name)], "type": "repeated_query_parameter"}
                for name in repeated[:_ECHOED]
            ],
        )


#: An error names at most this many of the request's parameters, each cut to _NAME_MAX
#: characters: an answer never grows with what a caller sends.
_ECHOED, _NAME_MAX = 5, 64


def _cut(name: str) -> str:
    return name if len(name) <= _NAME_MAX else f"{name[:_NAME_MAX]}..."


def _named(names: list[str]) -> str:
    shown = ", ".join(repr(_cut(name)) for name in names[:_ECHOED])
    more = len(names) - _ECHOED
    return f"{shown} and {more} more" if more > 0 else shown


def deployment(settings: Settings) -> str:
    """What, besides the data, decides every answer: the code and its settings."""
    return hashlib.blake2b(f"{__version__}{settings.model_dump_json()}".encode()).hexdigest()


#: The ETag of a copy the client holds (one, several, or ``*``): 304 when it is current.
IfNoneMatch = Annotated[
    str | None,
    Header(
        alias="If-None-Match",
        max_length=2048,
        description="the ETag of the copy you hold: 304 (no body) while it is current",
    ),
]


def conditional(
    request: Request,
    response: Response,
    user_id: Owner,
    library: LibraryDep,
    if_none_match: IfNoneMatch = None,
) -> None:
    """The ETag check of a GET answer that depends on the images' records too (statuses,
    listings, stats' counts): see :func:`_check_etag`."""
    _check_etag(request, response, library.version(user_id, records=True), if_none_match)


def conditional_on_groups(
    request: Request,
    response: Response,
    user_id: Owner,
    library: LibraryDep,
    if_none_match: IfNoneMatch = None,
) -> None:
    """The ETag check of a GET answer from the store, the graph and the decisions alone
    (groups, neighbours, pairs): the records' file is not read for it."""
    _check_etag(request, response, library.version(user_id, records=False), if_none_match)


def _check_etag(
    request: Request, response: Response, version: tuple[object, ...], if_none_match: str | None
) -> None:
    """ETag and Cache-Control of a GET answer; 304 when the client's copy (If-None-Match)
    is current. The tag is computed before any work, from what the answer depends on: the
    user's data versions, the request and the deployment."""
    parts = (
        request.app.state.deployment,
        request.url.path,
        sorted(request.query_params.multi_items()),
        version,
    )
    tag = '"' + hashlib.blake2b(repr(parts).encode(), digest_size=12).hexdigest() + '"'
    headers = {"ETag": tag, "Cache-Control": "private, no-cache"}
    if _matches(if_none_match, tag):
        raise NotModified(headers)
    response.headers.update(headers)


def _matches(if_none_match: str | None, tag: str) -> bool:
    if not if_none_match:
        return False
    candidates = [c.strip().removeprefix("W/") for c in if_none_match.split(",")]
    return "*" in candidates or tag in candidates


#: Answers that depend on the images' records (statuses, listings, stats' counts).
Cached = Depends(conditional)
#: Answers from the store, the graph and the decisions alone (groups, neighbours, pairs).
CachedGroups = Depends(conditional_on_groups)
