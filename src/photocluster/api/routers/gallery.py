"""GET /v1/users/{user_id}/gallery: the tiers as thumbnails, to judge the groups by eye."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from photocluster.api import gallery
from photocluster.api.contract import responses
from photocluster.api.deps import GalleryOwner, LibraryDep, SettingsDep, ThumbnailsDep, Tiers
from photocluster.api.routers.clusters import clusters_body
from photocluster.api.schemas import Linkage

#: The page may carry its access token in its URL: it is never cached or sent as a
#: referrer, and it loads nothing but its own inline style and the thumbnails.
HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; img-src https: http: data:; "
    "style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
}

router = APIRouter(prefix="/v1/users/{user_id}", tags=["clusters"])


@router.get(
    "/gallery",
    operation_id="getGallery",
    response_class=HTMLResponse,
    responses={
        **responses("getGallery", "invalid_thresholds", "threshold_below_floor", "invalid_cursor"),
        200: {"content": {"text/html": {}}},
    },
)
def gallery_page(
    user_id: GalleryOwner,
    library: LibraryDep,
    settings: SettingsDep,
    thumbnails: ThumbnailsDep,
    thresholds: Tiers,
    linkage: Linkage | None = None,
) -> HTMLResponse:
    """The tiers and groups as thumbnails, for a person to judge the clusters by eye."""
    result = clusters_body(
        library, settings, user_id, thresholds, linkage, 2, limit=gallery.MAX_GROUPS_SHOWN
    )
    ids = {i for tier in result["tiers"] for group in tier["groups"] for i in group["image_ids"]}
    return HTMLResponse(gallery.render(result, thumbnails.urls(user_id, ids)), headers=HEADERS)
