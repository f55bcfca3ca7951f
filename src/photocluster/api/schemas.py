"""Request and response bodies of the API (pydantic models: validation and OpenAPI in one
place)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from photocluster.store.catalog import ImageRecord


class TierGroups(BaseModel):
    name: str = Field(description="low, medium or high")
    threshold: float = Field(description="cosine similarity every pair in a group reaches")
    groups: list[list[str]] = Field(description="image ids; largest group first")


class ClustersResponse(BaseModel):
    user_id: str
    n_images: int
    model: str | None = Field(description="encoder of the stored embeddings; null if none")
    linkage: str
    exact: bool = Field(description="false when a safety bound made groups smaller")
    tiers: list[TierGroups]
    took_ms: float


class Neighbor(BaseModel):
    image_id: str
    score: float


class SimilarResponse(BaseModel):
    image_id: str
    neighbors: list[Neighbor]


class PairItem(BaseModel):
    a: str
    b: str
    score: float


class PairsResponse(BaseModel):
    user_id: str
    pairs: list[PairItem]
    total: int
    next_offset: int | None = Field(description="pass as offset for the next page; null at end")
    complete: bool


class StatsResponse(BaseModel):
    user_id: str
    model: str | None
    dim: int | None
    n_images: int = Field(description="images embedded and stored (ready)")
    pending: int = Field(0, description="images uploaded or announced, not embedded yet")
    failed: int = Field(0, description="images that will not be embedded (see their error)")
    n_records: int
    n_dead: int
    file_bytes: int
    graph_fresh: bool
    graph_floor: float | None
    graph_edges: int | None


class UploadRequest(BaseModel):
    """The photo the app is about to upload."""

    model_config = ConfigDict(extra="forbid")
    filename: str = Field(
        min_length=1,
        max_length=1024,
        description="the file's name with its extension; it becomes the S3 key's last part",
        examples=["IMG_0001.jpg"],
    )
    content_type: str = Field(
        max_length=100, description="the photo's media type, matching its extension"
    )
    size: int | None = Field(
        None,
        ge=1,
        description="bytes; when given, S3 accepts exactly this many (and the limit is checked "
        "now instead of after the upload)",
    )


class UploadTicket(BaseModel):
    """A presigned S3 request for one key: send the file's bytes as the body."""

    image_id: str = Field(description="the id the photo will have (status pending until embedded)")
    key: str
    url: str
    method: Literal["PUT"]
    headers: dict[str, str] = Field(description="send exactly these headers with the request")
    expires_at: datetime


class ImageErrorBody(BaseModel):
    code: str = Field(
        description="invalid_image, unsupported_type, too_large, embed_failed, unreadable, "
        "processing_failed"
    )
    message: str


class ImageInfo(BaseModel):
    image_id: str
    key: str | None = Field(description="the S3 key; null for images imported without one")
    status: Literal["pending", "ready", "failed"]
    error: ImageErrorBody | None = Field(description="why it failed; null unless failed")
    created_at: datetime | None = Field(description="when the image was first seen")
    updated_at: datetime | None = Field(description="when its status last changed")

    @classmethod
    def of(cls, record: ImageRecord) -> ImageInfo:
        error = record.error
        return cls(
            image_id=record.image_id,
            key=record.key,
            status=record.status,  # deleted records are never shown
            error=ImageErrorBody(code=error.code, message=error.message) if error else None,
            created_at=_time(record.created),
            updated_at=_time(record.updated),
        )


class ImagesResponse(BaseModel):
    images: list[ImageInfo] = Field(description="newest first")
    next_cursor: str | None = Field(description="pass as cursor for the next page; null at end")


def _time(epoch: float) -> datetime | None:
    return datetime.fromtimestamp(epoch, UTC) if epoch else None


class Health(BaseModel):
    status: str
    version: str


class ErrorBody(BaseModel):
    detail: str | list[dict[str, object]]
    code: str | None = Field(
        None, description="machine-readable cause, when there is one: threshold_below_floor"
    )
    floor: float | None = Field(
        None, description="with threshold_below_floor: the lowest threshold served"
    )
