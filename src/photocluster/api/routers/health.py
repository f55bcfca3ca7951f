"""GET /health: liveness, no authentication; says which default tiers the API applies."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from photocluster import __version__
from photocluster.api.deps import LibraryDep, SettingsDep
from photocluster.api.schemas import Health

router = APIRouter(tags=["meta"])


@router.get("/health", operation_id="getHealth", response_model=Health)
def health(library: LibraryDep, settings: SettingsDep) -> dict[str, Any]:
    """Liveness, and the default tiers of the deployment's model (calibrated or not)."""
    tiers = library.tier_defaults(settings.model).to_dict()
    return {"status": "ok", "version": __version__, "tiers": tiers}
