"""The cluster API. ``photocluster.api:app`` is the FastAPI application, built from the
environment's Settings on first access (so importing this package configures nothing)."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import FastAPI


@lru_cache(maxsize=1)
def get_app() -> FastAPI:
    from photocluster.api.app import create_app
    from photocluster.config import get_settings

    return create_app(get_settings())


def __getattr__(name: str) -> Any:
    if name == "app":
        return get_app()
    raise AttributeError(name)
