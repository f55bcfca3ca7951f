"""GET /v1/users/{user_id}/stats: the size of a user's library and its graph's state."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from photocluster.api.contract import responses
from photocluster.api.deps import Cached, LibraryDep, Owner
from photocluster.api.schemas import StatsResponse
from photocluster.errors import UnknownUser

router = APIRouter(prefix="/v1/users/{user_id}", tags=["images"])

#: The store's figures of a user with nothing stored yet.
_NO_PHOTOS: dict[str, Any] = {
    "model": None,
    "dim": None,
    "n_images": 0,
    "n_records": 0,
    "n_dead": 0,
    "file_bytes": 0,
    "graph_fresh": False,
    "graph_floor": None,
    "graph_edges": None,
    "tiers": None,
    "runtime": None,
}


@router.get(
    "/stats",
    operation_id="getStats",
    response_model=StatsResponse,
    responses=responses("getStats", cached=True),
    dependencies=[Cached],
)
def stats(user_id: Owner, library: LibraryDep) -> dict[str, Any]:
    """Size of the user's library, how many photos are pending or failed, the state of its
    neighbour graph, its model's default tiers (calibrated or not), and the encoder runtime
    that embeds its photos."""
    statuses = library.unfinished(user_id)
    try:
        figures = library.stats(user_id)
    except UnknownUser:
        return {"user_id": user_id, **_NO_PHOTOS, **statuses}
    return {"user_id": user_id, **{name: getattr(figures, name) for name in _NO_PHOTOS}, **statuses}
