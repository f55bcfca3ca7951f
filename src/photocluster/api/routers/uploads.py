"""POST /v1/users/{user_id}/uploads: permission to upload one photo, straight to S3."""

from __future__ import annotations

import time

from fastapi import APIRouter, Response

from photocluster.api.contract import JSON_BODY, responses
from photocluster.api.deps import BucketDep, LibraryDep, Owner, SettingsDep
from photocluster.api.schemas import UploadRequest, UploadTicket
from photocluster.buckets import parse_upload_key, upload_key
from photocluster.errors import ImageTooLarge, UnknownImage, UploadsNotConfigured
from photocluster.library import Library
from photocluster.store.records import ImageRecord

router = APIRouter(prefix="/v1/users/{user_id}", tags=["images"])


@router.post(
    "/uploads",
    operation_id="createUpload",
    status_code=201,
    response_model=UploadTicket,
    responses=responses(
        "createUpload",
        *JSON_BODY,
        "invalid_filename",
        "unsupported_type",
        "too_large",
        "library_full",
        "throttled",
        "uploads_not_configured",
    ),
)
def create_upload(
    user_id: Owner,
    upload: UploadRequest,
    library: LibraryDep,
    settings: SettingsDep,
    bucket: BucketDep,
    response: Response,
) -> UploadTicket:
    """A presigned PUT for one photo; a new photo is pending from now until it is embedded,
    one already ready stays ready (its updated_at changes once the new bytes are embedded);
    409 library_full when the user holds the largest library the deployment is sized for;
    429 throttled (Retry-After) past the user's rate of upload tickets."""
    if bucket is None:
        raise UploadsNotConfigured("uploads are not configured here (PHOTOCLUSTER_BUCKET)")
    key = upload_key(settings.upload_prefix, user_id, upload.filename, upload.content_type)
    if upload.size > settings.image_max_bytes:
        limit = settings.image_max_bytes
        raise ImageTooLarge(f"{upload.size:,} bytes is over the limit of {limit:,} bytes")
    image_id = parse_upload_key(key, settings.upload_prefix).image_id
    library.check_room(user_id, image_id)
    presigned = bucket.presign_upload(key, upload.content_type.lower(), upload.size)
    now = time.time()
    expires = presigned.expires_at.timestamp() + settings.pending_grace_s
    pending = ImageRecord(image_id, "pending", key, None, now, now, expires)
    # A ready photo stays so until new bytes arrive; either way the ticket is counted.
    library.open_upload(user_id, None if _ready(library, user_id, image_id) else pending)
    response.headers["Location"] = f"/v1/users/{user_id}/images/{image_id}"
    return UploadTicket(
        image_id=image_id,
        key=key,
        url=presigned.url,
        method="PUT",
        headers=presigned.headers,
        expires_at=presigned.expires_at,
    )


def _ready(library: Library, user_id: str, image_id: str) -> bool:
    try:
        return library.image(user_id, image_id).status == "ready"
    except UnknownImage:
        return False
