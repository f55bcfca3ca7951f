"""What every error answer of the API looks like, checked in one place."""

from __future__ import annotations

from typing import Any

import httpx

from photocluster.api.auth import make_token

SECRET = "a-test-secret-of-at-least-32-characters!"


def auth(user: str, **claims: object) -> dict[str, str]:
    """The header of a request by ``user`` (a token signed with SECRET)."""
    return {"Authorization": f"Bearer {make_token(SECRET, user, **claims)}"}


def error_of(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """The ``error`` object of an answer that must be ``status`` (and ``code``), after
    checking the envelope: ``{"error": {"code", "message", "details"?}}`` and nothing else."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    error: dict[str, Any] = body["error"]
    assert set(error) <= {"code", "message", "details"} and {"code", "message"} <= set(error)
    assert isinstance(error["code"], str) and error["code"].islower() and " " not in error["code"]
    assert isinstance(error["message"], str) and error["message"]
    if code is not None:
        assert error["code"] == code, error
    return error


def said(error: dict[str, Any]) -> str:
    """The message and details as one text, to look for a phrase in."""
    return f"{error['message']} {error.get('details', '')}"
