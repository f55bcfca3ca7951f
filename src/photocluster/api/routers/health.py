"""GET /health: liveness, no authentication."""

from __future__ import annotations

from fastapi import APIRouter

from photocluster import __version__
from photocluster.api.schemas import Health

router = APIRouter(tags=["meta"])


@router.get("/health", operation_id="getHealth", response_model=Health)
def health() -> dict[str, str]:
    """Liveness: no authentication."""
    return {"status": "ok", "version": __version__}
