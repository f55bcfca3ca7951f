"""The app's middleware: CORS for the configured origins, the Server-Timing header, and a
body's declared size checked before anything reads it."""

from __future__ import annotations

import time
from typing import Any

from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from photocluster.api.errors import error_response

#: Headers a browser app may send, and read back.
ALLOWED_HEADERS = ["Authorization", "Content-Type", "If-None-Match"]
EXPOSED_HEADERS = ["ETag", "Server-Timing", "Location"]


class Cors(CORSMiddleware):
    """Starlette's CORS, answering a preflight of an allowed origin 204 (no body) and a
    refused one in the API's error format."""

    def preflight_response(self, request_headers: Headers) -> Response:
        answer = super().preflight_response(request_headers)
        headers = {k: v for k, v in answer.headers.items() if k.lower() != "content-length"}
        headers.pop("content-type", None)
        if answer.status_code == 200:
            return Response(status_code=204, headers=headers)
        message = bytes(answer.body).decode()
        if not self.allow_origins:  # a preflight is answered as CORS, never as a 401
            message = (
                "cross-origin requests are not enabled here: set PHOTOCLUSTER_CORS_ORIGINS "
                "(photocluster up --cors-origin ORIGIN)"
            )
        return error_response("cors_not_allowed", message, headers=headers)


def cors_options(origins: list[str]) -> dict[str, Any]:
    """:class:`Cors`'s options: these origins, the API's methods and headers."""
    return {
        "allow_origins": origins,
        "allow_methods": ["GET", "POST", "PUT", "DELETE"],
        "allow_headers": ALLOWED_HEADERS,
        "expose_headers": EXPOSED_HEADERS,
        "max_age": 600,
    }


class ServerTiming:
    """How long the app took, in ``Server-Timing: app;dur=<ms>`` (not in the body: equal
    answers stay byte for byte equal, so ETags and caches work)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        async def timed(message: Message) -> None:
            if message["type"] == "http.response.start":
                took = (time.perf_counter() - started) * 1e3
                MutableHeaders(scope=message).append("Server-Timing", f"app;dur={took:.2f}")
            await send(message)

        await self.app(scope, receive, timed)


class BodyTooLarge(HTTPException):
    """A body that streamed past the limit (answered 413 by the app's error handlers)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is over the limit of {limit:,} bytes")


class BodyLimit:
    """Request bodies of at most ``limit`` bytes: one whose Content-Length says more gets 413
    ``payload_too_large`` before anything reads it; one sent without a length is counted as
    it streams and refused the same way once it passes the limit."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.limit:
            message = (
                f"the request body ({int(declared):,} bytes) is over the limit of "
                f"{self.limit:,} bytes"
            )
            await error_response("payload_too_large", message)(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise BodyTooLarge(self.limit)
            return message

        await self.app(scope, counted, send)
