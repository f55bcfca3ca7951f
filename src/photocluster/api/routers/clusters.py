"""GET /v1/users/{user_id}/clusters: groups of alike photos per tier."""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from photocluster.api.deps import LibraryDep, Owner, SettingsDep, Tiers
from photocluster.api.errors import ERRORS
from photocluster.api.schemas import ClustersResponse
from photocluster.clustering.tiers import MIN_SIZE_MAX
from photocluster.config import Settings
from photocluster.errors import UnknownUser
from photocluster.library import ClusterResult, Library

router = APIRouter(prefix="/v1/users/{user_id}", tags=["clusters"])

LinkageParam = Annotated[
    Literal["complete", "single"] | None,
    Query(
        description="complete (default): every pair in a group reaches the threshold; "
        "single: connected components (chains)"
    ),
]


@router.get("/clusters", response_model=ClustersResponse, responses=ERRORS)
def clusters(
    user_id: Owner,
    library: LibraryDep,
    settings: SettingsDep,
    thresholds: Tiers,
    linkage: LinkageParam = None,
    min_size: Annotated[int, Query(ge=1, le=MIN_SIZE_MAX)] = 2,
) -> dict[str, Any]:
    """Groups of alike photos per tier; higher tiers nest inside lower ones."""
    return clusters_body(library, settings, user_id, thresholds, linkage, min_size)


def clusters_body(
    library: Library,
    settings: Settings,
    user_id: str,
    thresholds: dict[str, float | None],
    linkage: str | None,
    min_size: int,
) -> dict[str, Any]:
    """The clusters answer; a user with no photos yet gets empty tiers, not an error."""
    started = time.perf_counter()
    try:
        body = library.clusters(user_id, thresholds, linkage, min_size).to_dict()
    except UnknownUser:
        tiers = library.thresholds(settings.model, thresholds)
        empty = ClusterResult(user_id, 0, "", linkage or settings.linkage, [], True)
        body = empty.to_dict() | {
            "model": None,
            "tiers": [
                {"name": name, "threshold": value, "groups": []} for name, value in tiers.items()
            ],
        }
    body["took_ms"] = round((time.perf_counter() - started) * 1e3, 3)
    return body
