"""Credentials never reach a log, however the query spells the parameter's name (issue 33:
``access%5Ftoken``, ``%61ccess_token`` and ``access_toke%6E`` all reached the access log)."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from photocluster.api.auth import make_token
from photocluster.api.redact import RedactTokens, redact

TOKEN = make_token("a-secret-of-at-least-thirty-two-characters", "alice")


@pytest.mark.parametrize(
    "name",
    [
        "access_token",
        "ACCESS_TOKEN",
        "access%5Ftoken",
        "access%5ftoken",
        "%61ccess_token",
        "access_toke%6E",
        "%61%63%63%65%73%73%5F%74%6F%6B%65%6E",
        "access+token".replace("+", "_"),
    ],
)
def test_the_token_is_redacted_whatever_the_names_encoding(name: str) -> None:
    line = f'127.0.0.1:5 - "GET /v1/users/alice/gallery?x=1&{name}={TOKEN}&y=2 HTTP/1.1" 200'
    out = redact(line)
    assert TOKEN not in out and TOKEN.split(".")[2] not in out
    assert "x=1" in out and "y=2" in out and "[redacted]" in out


def test_a_token_anywhere_in_a_query_is_redacted_even_under_another_name() -> None:
    encoded = TOKEN.replace(".", "%2E")
    for query in (f"?t={TOKEN}", f"?t={encoded}", f"?a=1;b={TOKEN}", f"?{TOKEN}"):
        out = redact(f"GET /v1/users/alice/gallery{query}")
        assert TOKEN.split(".")[1] not in out and encoded not in out, out


def test_a_token_outside_a_query_is_redacted_too() -> None:
    assert redact(f"bearer {TOKEN} refused") == "bearer [redacted] refused"


def test_other_queries_are_left_as_they_are() -> None:
    for text in ("GET /v1/users/alice/clusters?tier=high&limit=50", "a=b c=d", "no query"):
        assert redact(text) == text


@given(st.text(max_size=80))
def test_redaction_never_fails_and_never_leaves_the_token(prefix: str) -> None:
    out = redact(f"{prefix}?access%5Ftoken={TOKEN}")
    assert TOKEN.split(".")[2] not in out


def test_the_filter_rewrites_a_records_arguments() -> None:
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s "%s"',
        ("x", f"/g?%61ccess_token={TOKEN}"),
        None,
    )
    RedactTokens().filter(record)
    assert TOKEN not in record.getMessage()
