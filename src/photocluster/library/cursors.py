"""Page cursors: opaque to clients (they pass back what they were given), JSON inside."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from photocluster.errors import InvalidCursor


def encode(position: Any) -> str:
    raw = json.dumps(position, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str) -> Any:
    """The position a cursor stands for (InvalidCursor for one this API did not give)."""
    try:
        return json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error):
        raise invalid() from None


def invalid() -> InvalidCursor:
    return InvalidCursor("cursor is not one this API gave: pass next_cursor as it was")
