"""Who is calling: the ``sub`` claim of a verified token, never anything the client says.

Two modes (``PHOTOCLUSTER_AUTH_MODE``), one of which must be configured:

* ``apigateway`` (production): API Gateway's Cognito/JWT authorizer has verified the token;
  the claims are read from the Lambda event's request context (REST API:
  ``requestContext.authorizer.claims``; HTTP API: ``requestContext.authorizer.jwt.claims``).
  Requests that did not come through API Gateway have no such context and get 401.
* ``jwt`` (local runs, tests): ``Authorization: Bearer <HS256 JWT>`` verified with
  ``PHOTOCLUSTER_JWT_SECRET``; ``exp`` and ``sub`` are required.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

import jwt
from fastapi import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from photocluster.api.errors import ApiError, error_response
from photocluster.config import Settings
from photocluster.errors import AuthNotConfigured


def _unauthorized(reason: str) -> ApiError:
    return ApiError(401, "unauthorized", reason, headers={"WWW-Authenticate": "Bearer"})


@dataclass(frozen=True)
class Authenticator:
    mode: str
    secret: str | None = None
    audience: str | None = None
    issuer: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Authenticator:
        if settings.auth_mode == "apigateway":
            return cls("apigateway")
        if settings.auth_mode == "jwt" or (settings.auth_mode is None and settings.jwt_secret):
            secret = settings.jwt_secret.get_secret_value() if settings.jwt_secret else ""
            if len(secret) < 32:
                raise AuthNotConfigured(
                    "PHOTOCLUSTER_JWT_SECRET must be set to at least 32 characters in jwt mode"
                )
            return cls("jwt", secret, settings.jwt_audience, settings.jwt_issuer)
        raise AuthNotConfigured(
            "no authentication configured: set PHOTOCLUSTER_AUTH_MODE=apigateway behind API "
            "Gateway, or PHOTOCLUSTER_JWT_SECRET (jwt mode) for local runs"
        )

    def caller(self, request: Request, token: str | None) -> str:
        """The authenticated user id, or raise 401."""
        if self.mode == "apigateway":
            return _claims_sub(request)
        if not token:
            raise _unauthorized("missing bearer token")
        try:
            claims = jwt.decode(
                token,
                self.secret or "",
                algorithms=["HS256"],
                audience=self.audience,
                issuer=self.issuer,
                leeway=30,
                options={"require": ["sub", "exp"], "verify_aud": self.audience is not None},
            )
        except jwt.ExpiredSignatureError:
            raise _unauthorized("token expired") from None
        except jwt.InvalidTokenError as exc:
            raise _unauthorized(f"invalid token: {exc}") from None
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub:
            raise _unauthorized("token has no subject")
        return sub


def _claims_sub(request: Request) -> str:
    event: Any = request.scope.get("aws.event")
    if not isinstance(event, dict):
        raise _unauthorized("no API Gateway authorizer context")
    authorizer = (event.get("requestContext") or {}).get("authorizer") or {}
    claims = authorizer.get("claims") or (authorizer.get("jwt") or {}).get("claims") or {}
    sub = claims.get("sub") if isinstance(claims, dict) else None
    if not isinstance(sub, str) or not sub:
        raise _unauthorized("the authorizer supplied no subject")
    return sub


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def make_token(secret: str, user_id: str, ttl_s: int = 3600, **claims: Any) -> str:
    """An HS256 token for ``user_id`` (local runs, the demo and tests)."""
    now = int(time.time())
    return jwt.encode(
        {"sub": user_id, "iat": now, "exp": now + ttl_s, **claims}, secret, algorithm="HS256"
    )


class AuthenticateFirst:
    """Authenticates every request to a protected path before anything else looks at it:
    no or a bad token is 401 whatever the query, body or path parameters (a caller who
    cannot authenticate learns nothing about the routes). The caller's id goes into the
    request's state, where the routes' dependencies read it."""

    def __init__(
        self,
        app: ASGIApp,
        authenticator: Authenticator,
        protected: re.Pattern[str],
        token_in_query: re.Pattern[str],
    ) -> None:
        self.app, self.authenticator = app, authenticator
        self.protected, self.token_in_query = protected, token_in_query

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.protected.match(scope["path"]):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        token = bearer_token(request)
        if token is None and self.token_in_query.match(scope["path"]):
            token = request.query_params.get("access_token")
        try:
            who = self.authenticator.caller(request, token)
        except ApiError as exc:
            response = error_response(exc.status, exc.code, exc.message, headers=exc.headers)
            await response(scope, receive, send)
            return
        scope.setdefault("state", {})["caller"] = who
        await self.app(scope, receive, send)
