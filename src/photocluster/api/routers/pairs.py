"""GET /v1/users/{user_id}/pairs: pairs of photos in a score range, highest first."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from photocluster.api.contract import responses
from photocluster.api.deps import CachedGroups, LibraryDep, Owner
from photocluster.api.schemas import PairsResponse
from photocluster.errors import InvalidThresholds, UnknownUser

router = APIRouter(prefix="/v1/users/{user_id}", tags=["clusters"])


@router.get(
    "/pairs",
    operation_id="listPairs",
    response_model=PairsResponse,
    responses=responses("listPairs", "invalid_thresholds", "threshold_below_floor", cached=True),
    dependencies=[CachedGroups],
)
def pairs(
    user_id: Owner,
    library: LibraryDep,
    min_score: Annotated[
        float | None,
        Query(ge=0, le=1, allow_inf_nan=False, description=("default: the medium tier")),
    ] = None,
    max_score: Annotated[float, Query(ge=0, le=1, allow_inf_nan=False)] = 1.0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> dict[str, Any]:
    """Pairs of photos with a score in [min_score, max_score], highest first; pairs the
    user marked not similar are left out."""
    try:
        model = library.store.header(user_id).model
    except UnknownUser:
        return {"user_id": user_id, "pairs": [], "total": 0, "next_offset": None, "complete": True}
    low = min_score if min_score is not None else library.tiers(model).thresholds["medium"]
    if low > max_score:
        raise InvalidThresholds(f"min_score {low} is above max_score {max_score}")
    page = library.pairs(user_id, low, max_score, limit, offset)
    return {
        "user_id": user_id,
        "total": page.total,
        "next_offset": page.next_offset,
        "complete": page.complete,
        "pairs": [{"a": p.a, "b": p.b, "score": p.score} for p in page.pairs],
    }
