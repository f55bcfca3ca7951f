"""/v1/users/{user_id}/images: the user's photos, their status, their neighbours, deletion."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from photocluster.api.contract import responses
from photocluster.api.deps import (
    BucketDep,
    Cached,
    CachedGroups,
    ImageId,
    LibraryDep,
    Owner,
    SettingsDep,
)
from photocluster.api.schemas import ImageInfo, ImagesResponse, ImageStatus, SimilarResponse
from photocluster.buckets import key_of_image
from photocluster.clustering.similarity import K_MAX
from photocluster.library import Library

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/users/{user_id}/images")


@router.get(
    "",
    operation_id="listImages",
    response_model=ImagesResponse,
    responses=responses("listImages", "invalid_cursor", cached=True),
    tags=["images"],
    dependencies=[Cached],
)
def list_images(
    user_id: Owner,
    library: LibraryDep,
    status: ImageStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(min_length=1, max_length=1000)] = None,
) -> ImagesResponse:
    """The user's photos, newest first, with their processing status; a page at a time."""
    page = library.images(user_id, status.value if status else None, limit, cursor)
    return ImagesResponse(
        images=[ImageInfo.of(r) for r in page.images], next_cursor=page.next_cursor
    )


@router.get(
    "/{image_id}",
    operation_id="getImage",
    response_model=ImageInfo,
    responses=responses("getImage", "unknown_image", cached=True),
    tags=["images"],
    dependencies=[Cached],
)
def get_image(user_id: Owner, image_id: ImageId, library: LibraryDep) -> ImageInfo:
    """One photo's status: pending, ready, or failed with an error code."""
    return ImageInfo.of(library.image(user_id, image_id))


@router.get(
    "/{image_id}/similar",
    operation_id="getSimilarImages",
    response_model=SimilarResponse,
    responses=responses(
        "getSimilarImages", "unknown_image", "image_not_ready", "invalid_thresholds", cached=True
    ),
    tags=["clusters"],
    dependencies=[CachedGroups],
)
def similar(
    user_id: Owner,
    image_id: ImageId,
    library: LibraryDep,
    k: Annotated[int, Query(ge=1, le=K_MAX)] = 10,
    min_score: Annotated[float, Query(ge=0, le=1, allow_inf_nan=False)] = 0.0,
) -> dict[str, Any]:
    """The k most similar other photos of one photo (409 while it is pending or failed);
    those the user marked not similar to it are flagged."""
    neighbours = library.similar(user_id, image_id, k, min_score)
    return {
        "image_id": image_id,
        "neighbors": [
            {"image_id": n.image_id, "score": n.score, "not_similar": n.not_similar}
            for n in neighbours
        ],
    }


@router.delete(
    "/{image_id}",
    operation_id="deleteImage",
    status_code=204,
    responses=responses("deleteImage", "storage_unavailable"),
    tags=["images"],
)
def delete_image(
    user_id: Owner, image_id: ImageId, library: LibraryDep, settings: SettingsDep, bucket: BucketDep
) -> Response:
    """Delete a photo: its object in S3 first (so no backfill brings it back), then its
    embedding and the decisions about it. Idempotent: 204 whether or not it existed."""
    key = _key_of(library, settings.upload_prefix, user_id, image_id)
    modified = bucket.remove(key) if bucket is not None and key is not None else None
    library.delete(user_id, [image_id], {image_id: modified} if modified else None)
    return Response(status_code=204)


def _key_of(library: Library, prefix: str, user_id: str, image_id: str) -> str | None:
    """The photo's S3 key: as recorded, else as its id spells it (None for a cut id or one
    that spells no upload's name)."""
    record = library.records.latest(user_id, [image_id]).get(image_id)
    key = key_of_image(prefix, user_id, image_id, (record and record.key) or None)
    if key is None:
        log.warning("no key known for %s/%s: its object (if any) stays in S3", user_id, image_id)
    return key
