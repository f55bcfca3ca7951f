"""A user's small JSON documents beside the store (decisions ``.pcd``, copies ``.pcp``):
one object with a ``format`` number, rewritten whole and atomically under the user's lock.

Whoever owns a document's content names its kind and the formats it reads; this module owns
how it is read, versioned and replaced.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from pathlib import Path
from typing import Any

from photocluster.errors import StoreCorrupt
from photocluster.store.files import write_file


def read_document(path: Path, kind: str, readable: Collection[int]) -> tuple[int, dict[str, Any]]:
    """The document's format and body; (0, {}) when there is none. StoreCorrupt for a file
    that is not a ``kind`` document of a readable format."""
    try:
        document = json.loads(path.read_bytes())
    except FileNotFoundError:
        return 0, {}
    except ValueError as exc:
        raise StoreCorrupt(f"{path}: not a {kind} file ({exc})") from exc
    if not isinstance(document, dict) or document.get("format") not in readable:
        found = document.get("format") if isinstance(document, dict) else None
        raise StoreCorrupt(f"{path}: not a {kind} file (format {found!r})")
    return int(document["format"]), document


def write_document(path: Path, format: int, body: dict[str, Any], fsync: bool = True) -> None:
    """Replace the document with ``body`` at ``format`` (the caller holds the user's lock)."""
    data = json.dumps({"format": format, **body}, separators=(",", ":"))
    write_file(path, data.encode(), fsync=fsync)
