"""Who is calling: the ``sub`` claim of a verified token, never anything the client says.

Two modes (``PHOTOCLUSTER_AUTH_MODE``), one of which must be configured:

* ``apigateway`` (production): API Gateway's Cognito/JWT authorizer has verified the token;
  the claims are read from the Lambda event's request context (REST API:
  ``requestContext.authorizer.claims``; HTTP API: ``requestContext.authorizer.jwt.claims``).
  Requests that did not come through API Gateway have no such context and get 401. The
  app checks again what the authorizer may not: the issuer (``PHOTOCLUSTER_JWT_ISSUER``,
  required), the audience (``PHOTOCLUSTER_JWT_AUDIENCE``, required: a REST API's Cognito
  authorizer takes tokens of any app client of the pool) and the token's lifetime.
* ``jwt`` (local runs, tests): ``Authorization: Bearer <HS256 JWT>`` verified with
  ``PHOTOCLUSTER_JWT_SECRET``; ``sub``, ``exp`` and ``iat`` are required, ``aud`` and
  ``iss`` when configured.

Either way a token valid for longer than ``PHOTOCLUSTER_JWT_MAX_LIFETIME_S`` (a day) is
refused: ``exp - iat`` over it, or ``exp`` further than it from now.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import jwt
from fastapi import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from photocluster.api.errors import ApiError, error_response
from photocluster.config import Settings
from photocluster.errors import AuthNotConfigured


def _unauthorized(reason: str) -> ApiError:
    return ApiError("unauthorized", reason, headers={"WWW-Authenticate": "Bearer"})


_LEEWAY_S = 30


@dataclass(frozen=True)
class Authenticator:
    mode: str
    secret: str | None
    audiences: tuple[str, ...]
    issuer: str | None
    max_lifetime_s: int  # Settings.jwt_max_lifetime_s

    @classmethod
    def from_settings(cls, settings: Settings) -> Authenticator:
        audiences = tuple(a.strip() for a in (settings.jwt_audience or "").split(",") if a.strip())
        lifetime = settings.jwt_max_lifetime_s
        if settings.auth_mode == "apigateway":
            if not audiences or not settings.jwt_issuer:
                raise AuthNotConfigured(
                    "behind API Gateway, set PHOTOCLUSTER_JWT_ISSUER (the user pool's issuer "
                    "URL) and PHOTOCLUSTER_JWT_AUDIENCE (its app client ids): the app checks "
                    "both on every request"
                )
            return cls("apigateway", None, audiences, settings.jwt_issuer, lifetime)
        if settings.auth_mode == "jwt" or (settings.auth_mode is None and settings.jwt_secret):
            secret = settings.jwt_secret.get_secret_value() if settings.jwt_secret else ""
            if len(secret) < 32:
                raise AuthNotConfigured(
                    "PHOTOCLUSTER_JWT_SECRET must be set to at least 32 characters in jwt mode"
                )
            return cls("jwt", secret, audiences, settings.jwt_issuer, lifetime)
        raise AuthNotConfigured(
            "no authentication configured: set PHOTOCLUSTER_AUTH_MODE=apigateway behind API "
            "Gateway, or PHOTOCLUSTER_JWT_SECRET (jwt mode) for local runs"
        )

    def caller(self, request: Request, token: str | None) -> str:
        """The authenticated user id, or raise 401."""
        if self.mode == "apigateway":
            claims = _authorizer_claims(request)
            self._check_claims(claims)
        else:
            claims = self._decoded(token)
        self._check_lifetime(claims)
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub:
            raise _unauthorized("token has no subject")
        return sub

    def _decoded(self, token: str | None) -> dict[str, Any]:
        if not token:
            raise _unauthorized("missing bearer token")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self.secret or "",
                algorithms=["HS256"],
                audience=list(self.audiences) or None,
                issuer=self.issuer,
                leeway=_LEEWAY_S,
                options={"require": ["sub", "exp", "iat"], "verify_aud": bool(self.audiences)},
            )
        except jwt.ExpiredSignatureError:
            raise _unauthorized("token expired") from None
        except jwt.InvalidTokenError as exc:
            raise _unauthorized(f"invalid token: {exc}") from None
        return claims

    def _check_claims(self, claims: dict[str, Any]) -> None:
        """What a Cognito authorizer does not check: who issued the token and for which app
        client (an ID token's aud, an access token's client_id)."""
        if claims.get("iss") != self.issuer:
            raise _unauthorized("token from another issuer")
        audience = claims.get("aud") if claims.get("token_use") != "access" else None
        if (audience or claims.get("client_id")) not in self.audiences:
            raise _unauthorized("token for another app client")

    def _check_lifetime(self, claims: dict[str, Any]) -> None:
        issued, expires = _instant(claims.get("iat")), _instant(claims.get("exp"))
        longest = self.max_lifetime_s + _LEEWAY_S
        if expires is None:  # behind API Gateway, whose authorizer has checked it
            return
        if expires - time.time() > longest or (issued is not None and expires - issued > longest):
            raise _unauthorized(
                f"token valid for longer than the {self.max_lifetime_s} s this API accepts"
            )


def _instant(value: object) -> float | None:
    """A claim's time in epoch seconds: a JSON number, its text (an HTTP API's claims), or
    the date a REST API's Cognito authorizer writes ("Thu Nov 30 10:25:17 UTC 2023")."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, str):
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = datetime.strptime(value, "%a %b %d %H:%M:%S UTC %Y")
    except ValueError:
        return None
    return when.replace(tzinfo=UTC).timestamp()


def _authorizer_claims(request: Request) -> dict[str, Any]:
    event: Any = request.scope.get("aws.event")
    if not isinstance(event, dict):
        raise _unauthorized("no API Gateway authorizer context")
    authorizer = (event.get("requestContext") or {}).get("authorizer") or {}
    claims = authorizer.get("claims") or (authorizer.get("jwt") or {}).get("claims") or {}
    if not isinstance(claims, dict) or not claims.get("sub"):
        raise _unauthorized("the authorizer supplied no subject")
    return claims


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def make_token(secret: str, user_id: str, ttl_s: int = 3600, **claims: Any) -> str:
    """An HS256 token for ``user_id`` (local runs, the demo and tests); ``claims`` such as
    ``aud`` and ``iss`` are added."""
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
            response = error_response(exc.code, exc.message, headers=exc.headers)
            await response(scope, receive, send)
            return
        scope.setdefault("state", {})["caller"] = who
        await self.app(scope, receive, send)
