"""GET /v1/users/{user_id}/gallery: the tiers as thumbnails, to judge the groups by eye."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from photocluster.api import gallery
from photocluster.api.contract import responses
from photocluster.api.deps import GalleryOwner, LibraryDep, SettingsDep, ThumbnailsDep, Tiers
from photocluster.api.routers.clusters import clusters_body
from photocluster.api.schemas import Linkage
from photocluster.library import Library
from photocluster.store.records import ImageRecord, Status

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
    grouped = {i for tier in result["tiers"] for g in tier["groups"] for i in g["image_ids"]}
    loosest = result["tiers"][0] if result["tiers"] else None
    unrelated = (
        [
            record.image_id
            for record in _listed(library, user_id, "ready", lambda r: r.image_id not in grouped)
        ]
        if loosest is None or loosest["total_groups"] == len(loosest["groups"])
        else None  # a photo of a group past the page's would pass for unrelated
    )
    failed = [
        (record.image_id, record.error.code if record.error else "failed")
        for record in _listed(library, user_id, "failed", lambda record: True)
    ]
    shown = grouped | set(unrelated or [])
    records = library.records.latest(user_id, shown)
    urls = thumbnails.urls(user_id, shown, {i: r.key for i, r in records.items()})
    page = gallery.render(result, urls, unrelated, failed)
    return HTMLResponse(page, headers=HEADERS)


def _listed(
    library: Library, user_id: str, status: Status, keep: Callable[[ImageRecord], bool]
) -> list[ImageRecord]:
    """The user's images of a status that ``keep`` keeps, newest first, at most
    MAX_LISTED, reading pages of the listing until it has them or none are left."""
    found: list[ImageRecord] = []
    cursor: str | None = None
    for _ in range(20):  # at most 20,000 photos read for the page
        page = library.images(user_id, status, 1000, cursor)
        found += [record for record in page.images if keep(record)]
        if (cursor := page.next_cursor) is None or len(found) >= gallery.MAX_LISTED:
            break
    return found[: gallery.MAX_LISTED]
