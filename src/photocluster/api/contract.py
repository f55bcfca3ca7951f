"""What each route answers besides its success, as the OpenAPI document declares it.

Every error code has one status. A route declares, per status, the codes it can give, as
an enum, and the ``details`` each code carries, typed: a generated client gets a union it
can switch over exhaustively (``error.code``) and typed details (``details[0].image_id``
for ``unknown_image``). A cached route declares the ``If-None-Match`` it reads, the
``ETag`` it sends and its 304.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, cast

from pydantic import BaseModel, Field, create_model

#: Each error code's status, the one table of them.
STATUS_OF: dict[str, int] = {
    "malformed_json": 400,
    "cors_not_allowed": 400,  # a browser's preflight (no operation declares OPTIONS)
    "unauthorized": 401,
    "forbidden": 403,
    "unknown_image": 404,
    "image_not_ready": 409,
    "library_full": 409,
    "payload_too_large": 413,
    "invalid_request": 422,
    "unknown_query_parameter": 422,
    "repeated_query_parameter": 422,
    "invalid_id": 422,
    "invalid_thresholds": 422,
    "threshold_below_floor": 422,
    "invalid_cursor": 422,
    "invalid_decision": 422,
    "too_many_decisions": 422,
    "invalid_filename": 422,
    "invalid_image": 422,
    "unsupported_type": 422,
    "too_large": 422,
    "throttled": 429,
    "internal_error": 500,
    "store_unavailable": 503,
    "storage_unavailable": 503,
    "uploads_not_configured": 503,
}

#: What any route can answer: parameters (and their names), an oversized body, a crash.
ANY_ROUTE = (
    "invalid_request",
    "unknown_query_parameter",
    "repeated_query_parameter",
    "payload_too_large",
    "internal_error",
)
#: What any route under /v1/users/{user_id} can answer besides: who, which id, the store.
USER_ROUTE = (*ANY_ROUTE, "unauthorized", "forbidden", "invalid_id", "store_unavailable")
#: What a route with a JSON body can answer besides.
JSON_BODY = ("malformed_json",)


class ParameterProblem(BaseModel):
    """A parameter at fault: where (``["query", "low"]``), what, and pydantic's type."""

    loc: list[str | int]
    message: str | None = None
    type: str


class BelowFloor(BaseModel):
    """The lowest threshold this library answers (its graph's floor)."""

    type: Literal["threshold_below_floor"]
    message: str
    floor: float


class UnknownImageDetail(BaseModel):
    """A photo the user does not have."""

    type: Literal["unknown_image"]
    image_id: str


#: The details a code carries; a code not here carries none.
DETAILS: dict[str, type[BaseModel]] = {
    "invalid_request": ParameterProblem,
    "unknown_query_parameter": ParameterProblem,
    "repeated_query_parameter": ParameterProblem,
    "threshold_below_floor": BelowFloor,
    "unknown_image": UnknownImageDetail,
}


def _camel(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.replace("_", " ").split())


def _one_of(codes: tuple[str, ...]) -> Any:
    return cast(Any, Literal)[codes]


def _detailed(code: str) -> type[BaseModel]:
    """The error of one code that carries details (one schema, whatever the route)."""
    item: Any = DETAILS[code]
    details: Any = list[item] | None
    return create_model(
        f"{_camel(code)}Error",
        code=(_one_of((code,)), ...),
        message=(str, Field(description="for people; may change")),
        details=(details, None),
    )


_DETAILED = {code: _detailed(code) for code in DETAILS}


def _body(operation: str, status: int, codes: list[str]) -> type[BaseModel]:
    """``{"error": ...}`` of one route's answers at one status: a union over ``code``."""
    name = f"{_camel(operation)}Error{status}"
    variants: list[Any] = [_DETAILED[c] for c in codes if c in DETAILS]
    plain = tuple(c for c in codes if c not in DETAILS)
    if plain:
        variants.append(
            create_model(
                f"{name}Info",
                code=(_one_of(plain), Field(description="stable: what went wrong, to branch on")),
                message=(str, Field(description="for people; may change")),
            )
        )
    error: Any = variants[0]
    for variant in variants[1:]:
        error = error | variant
    if len(variants) > 1:
        error = Annotated[error, Field(discriminator="code")]
    return create_model(name, error=(error, ...))


#: The ETag a cached answer carries (a 200 or a 304), and what to do with it.
ETAG_HEADERS = {
    "ETag": {
        "description": "this answer's version: send it back as If-None-Match",
        "schema": {"type": "string"},
    },
    "Cache-Control": {"description": "private, no-cache", "schema": {"type": "string"}},
}


def responses(
    operation: str, *codes: str, user: bool = True, cached: bool = False
) -> dict[int | str, dict[str, Any]]:
    """The ``responses`` of a route: one body per error status, listing its codes (those
    every route can give, those of a user's route when ``user``, and ``codes``); with
    ``cached``, the ETag on the 200 and the 304."""
    every = [*(USER_ROUTE if user else ANY_ROUTE), *codes]
    by_status: dict[int, list[str]] = {}
    for code in dict.fromkeys(every):
        by_status.setdefault(STATUS_OF[code], []).append(code)
    documented: dict[int | str, dict[str, Any]] = {
        status: {
            "model": _body(operation, status, found),
            "description": ", ".join(found),
        }
        for status, found in sorted(by_status.items())
    }
    if cached:
        documented[200] = {"headers": ETAG_HEADERS}
        documented[304] = {
            "description": "not modified: the copy named by If-None-Match is current",
            "headers": ETAG_HEADERS,
        }
    return documented
