"""The cluster API. ``photocluster.api.app`` is the FastAPI application, built from the
environment's Settings on first access (so importing this package configures nothing).

Both ``from photocluster.api import app`` and ``uvicorn photocluster.api:app`` give the
application: no submodule is named ``app``, so none can shadow it.

* :mod:`~photocluster.api.main`: the app factory;
* :mod:`~photocluster.api.routers`: one router per resource;
* :mod:`~photocluster.api.deps`: who is calling, whose photos, the library;
* :mod:`~photocluster.api.auth`, :mod:`~photocluster.api.schemas`,
  :mod:`~photocluster.api.errors`, :mod:`~photocluster.api.openapi`,
  :mod:`~photocluster.api.gallery`.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import FastAPI


@lru_cache(maxsize=1)
def get_app() -> FastAPI:
    """The application as the environment configures it (built once)."""
    from photocluster.api.main import create_app
    from photocluster.config import get_settings

    return create_app(get_settings())


def __getattr__(name: str) -> Any:
    if name == "app":
        return get_app()
    raise AttributeError(name)
