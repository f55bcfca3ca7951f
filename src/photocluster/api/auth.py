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

import time
from dataclasses import dataclass
from typing import Any

import jwt
from fastapi import HTTPException, Request, status

from photocluster.config import Settings
from photocluster.errors import AuthNotConfigured


def _unauthorized(reason: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail=reason, headers={"WWW-Authenticate": "Bearer"}
    )


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
