"""GET /v1/users/{user_id}/clusters: groups of alike photos per tier."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from photocluster.api.contract import responses
from photocluster.api.deps import CachedGroups, LibraryDep, Owner, SettingsDep, Tiers
from photocluster.api.schemas import ClustersResponse, Linkage, TierName
from photocluster.clustering.tiers import MIN_SIZE_MAX
from photocluster.config import Settings
from photocluster.errors import UnknownUser
from photocluster.library import Library

router = APIRouter(prefix="/v1/users/{user_id}", tags=["clusters"])

#: Groups per tier on one page (the default and the most a page holds).
PAGE_DEFAULT, PAGE_MAX = 100, 1000


@router.get(
    "/clusters",
    operation_id="listClusters",
    response_model=ClustersResponse,
    responses=responses(
        "listClusters",
        "invalid_thresholds",
        "threshold_below_floor",
        "invalid_cursor",
        cached=True,
    ),
    dependencies=[CachedGroups],
)
def clusters(
    user_id: Owner,
    library: LibraryDep,
    settings: SettingsDep,
    thresholds: Tiers,
    linkage: Linkage | None = None,
    min_size: Annotated[int, Query(ge=1, le=MIN_SIZE_MAX)] = 2,
    tier: Annotated[TierName | None, Query(description="only this tier's groups")] = None,
    limit: Annotated[int, Query(ge=1, le=PAGE_MAX, description="groups per tier")] = PAGE_DEFAULT,
    cursor: Annotated[
        str | None,
        Query(min_length=1, max_length=200, description="a tier's next_cursor: its next page"),
    ] = None,
) -> dict[str, Any]:
    """Groups of alike photos per tier, largest first; higher tiers nest inside lower ones
    (each group names its parent). Pairs marked not similar are never in one group."""
    only = tier.value if tier is not None else None  # the domain speaks plain names
    return clusters_body(
        library, settings, user_id, thresholds, linkage, min_size, limit, cursor, only
    )


def clusters_body(
    library: Library,
    settings: Settings,
    user_id: str,
    thresholds: dict[str, float | None],
    linkage: str | None,
    min_size: int,
    limit: int | None = None,
    cursor: str | None = None,
    tier: str | None = None,
) -> dict[str, Any]:
    """The clusters answer; a user with no photos yet gets empty tiers, not an error."""
    try:
        result, pages = library.clusters_page(
            user_id, thresholds, linkage, min_size, limit, cursor, tier
        )
    except UnknownUser:
        tiers = library.tiers(settings.model).asked(thresholds)
        return {
            "user_id": user_id,
            "n_images": 0,
            "model": None,
            "linkage": linkage or settings.linkage,
            "exact": True,
            "tiers": [
                _empty_tier(name, value)
                for name, value in tiers.items()
                if tier is None or tier == name
            ],
        }
    return result.summary() | {"tiers": [page.to_dict() for page in pages]}


def _empty_tier(name: str, threshold: float) -> dict[str, Any]:
    return {
        "name": name,
        "threshold": threshold,
        "groups": [],
        "total_groups": 0,
        "total_images": 0,
        "next_cursor": None,
    }
