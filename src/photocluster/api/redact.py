"""Credentials never reach a log: the gallery's ``access_token`` query parameter (a
browser cannot send a header from a link) is redacted from the access log of whichever
server runs the app (uvicorn's, in local runs; API Gateway's logs the path only)."""

from __future__ import annotations

import logging
import re

#: Loggers that write request URLs: uvicorn's access log (args: client, method, path...).
ACCESS_LOGGERS = ("uvicorn.access",)
_TOKEN = re.compile(r"((?:^|[?&;])access_token=)[^&;#\s]*", re.IGNORECASE)


def redact(text: str) -> str:
    """``text`` with the value of every ``access_token`` query parameter replaced."""
    return _TOKEN.sub(r"\1[redacted]", text)


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
