"""Credentials never reach a log: the gallery's ``access_token`` query parameter (a
browser cannot send a header from a link) is redacted from the access log of whichever
server runs the app (uvicorn's, in local runs; API Gateway's logs the path only).

A parameter is redacted by its name as the server decodes it (``access%5Ftoken`` is
``access_token`` to Starlette), and any parameter whose value, decoded, holds a JWT is
redacted whatever its name: a token sent under a wrong name is still a token.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import unquote_plus

#: Loggers that write request URLs: uvicorn's access log (args: client, method, path...).
ACCESS_LOGGERS = ("uvicorn.access",)
#: A query's parameters: after ``?``, ``&`` or ``;``, up to the next of them or a space.
_PARAMETER = re.compile(r"(?<=[?&;])([^&;#\s=]*)(=?)([^&;#\s]*)")
#: A JWT: two base64url JSON objects (``eyJ`` is ``{"``) and a signature.
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]*\.eyJ[A-Za-z0-9_-]*\.?[A-Za-z0-9_-]*")
_NAMES = {"access_token"}
_REDACTED = "[redacted]"


def redact(text: str) -> str:
    """``text`` with every credential in a query, and every JWT, replaced."""
    return _JWT.sub(_REDACTED, _PARAMETER.sub(_redact_parameter, text))


def _redact_parameter(found: re.Match[str]) -> str:
    name, equals, value = found.groups()
    if _decoded(name).lower() in _NAMES:
        return f"{name}={_REDACTED}"
    if _JWT.search(_decoded(name)) or _JWT.search(_decoded(value)):
        return f"{name}{equals}{_REDACTED}" if equals else _REDACTED
    return found.group(0)


def _decoded(text: str, rounds: int = 3) -> str:
    """``text`` percent-decoded until it stops changing (a value encoded twice is still
    the same token once the client's server decodes it)."""
    for _ in range(rounds):
        decoded = unquote_plus(text)
        if decoded == text:
            break
        text = decoded
    return text


class RedactTokens(logging.Filter):
    """Rewrites a record's message and arguments before any handler formats them."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        return True


def install() -> None:
    """Add the filter to the access loggers (once per process)."""
    for name in ACCESS_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactTokens) for f in logger.filters):
            logger.addFilter(RedactTokens())
