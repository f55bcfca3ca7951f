"""GET /health: liveness, no authentication needed; an authenticated caller also learns the
version and the default tiers the API applies (an anonymous one learns only "ok")."""

from __future__ import annotations

from fastapi import APIRouter, Request

from photocluster import __version__
from photocluster.api.auth import bearer_token
from photocluster.api.contract import responses
from photocluster.api.deps import LibraryDep, SettingsDep
from photocluster.api.errors import ApiError
from photocluster.api.schemas import Health

router = APIRouter(tags=["meta"])


@router.get(
    "/health",
    operation_id="getHealth",
    response_model=Health,
    response_model_exclude_unset=True,
    responses=responses("getHealth", user=False),
)
def health(request: Request, library: LibraryDep, settings: SettingsDep) -> Health:
    """Liveness: {"status": "ok"}. With a valid token, also the version and the default
    tiers of the deployment's model (calibrated or not)."""
    try:
        request.app.state.authenticator.caller(request, bearer_token(request))
    except ApiError:
        return Health(status="ok")  # version and tiers unset: left out of the answer
    tiers = library.tiers(settings.model).to_dict()
    return Health.model_validate({"status": "ok", "version": __version__, "tiers": tiers})
