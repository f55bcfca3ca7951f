"""/v1/users/{user_id}/images/{image_id}: one photo's neighbours, and forgetting it."""

from __future__ import annotations

import contextlib
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from photocluster.api.deps import ImageId, LibraryDep, Owner
from photocluster.api.errors import ERRORS, NOT_FOUND
from photocluster.api.schemas import SimilarResponse
from photocluster.errors import UnknownImage, UnknownUser

router = APIRouter(prefix="/v1/users/{user_id}/images/{image_id}")


@router.get(
    "/similar",
    response_model=SimilarResponse,
    responses={**ERRORS, **NOT_FOUND},
    tags=["clusters"],
)
def similar(
    user_id: Owner,
    image_id: ImageId,
    library: LibraryDep,
    k: Annotated[int, Query(ge=1, le=500)] = 10,
    min_score: Annotated[float, Query(ge=0, le=1)] = 0.0,
) -> dict[str, Any]:
    """The k most similar other photos of one photo."""
    try:
        neighbours = library.similar(user_id, image_id, k, min_score)
    except UnknownUser:
        raise UnknownImage(f"no embedding stored for image {image_id!r}") from None
    return {
        "image_id": image_id,
        "neighbors": [{"image_id": n.image_id, "score": n.score} for n in neighbours],
    }


@router.delete("", status_code=204, responses=ERRORS, tags=["images"])
def delete_image(user_id: Owner, image_id: ImageId, library: LibraryDep) -> Response:
    """Forget a photo (e.g. deleted from S3). Idempotent: 204 whether or not it was stored."""
    with contextlib.suppress(UnknownUser):
        library.delete(user_id, [image_id])
    return Response(status_code=204)
