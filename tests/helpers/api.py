"""What every error answer of the API looks like, checked in one place; the app served
on loopback for clients that need a real HTTP server."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from photocluster.api.auth import make_token
from tests.helpers.procs import free_port

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


@contextlib.contextmanager
def served_on_loopback(app: FastAPI) -> Iterator[str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive(), "uvicorn stopped before it served"
        assert time.monotonic() < deadline, "uvicorn did not start in 30 s"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
