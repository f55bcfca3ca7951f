"""Request and response bodies of the API (pydantic models: validation and OpenAPI in one
place)."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from photocluster.calibrations import CalibrationSource
from photocluster.config import EncoderRuntime
from photocluster.ids import IMAGE_ID_MAX, IMAGE_ID_REGEX
from photocluster.library import decisions
from photocluster.store.records import ImageRecord

# The API's enums name the domain's values (config's Literals) for OpenAPI, where clients
# get them as named types; tests/unit/test_layout.py holds each to its Literal.


class Linkage(StrEnum):
    """How groups are formed: ``complete``, every pair in a group reaches the threshold;
    ``single``, connected components (chains); ``average``, the mean similarity of the
    pairs two merged clusters span reaches it (UPGMA)."""

    complete = "complete"
    single = "single"
    average = "average"


class ImageStatus(StrEnum):
    """pending: uploaded, not embedded yet; ready: embedded and grouped; failed: will not
    be embedded (see the image's error)."""

    pending = "pending"
    ready = "ready"
    failed = "failed"


class TierName(StrEnum):
    low = "low"
    medium = "medium"
    high = "high"


class Group(BaseModel):
    id: str = Field(description="stable for the same members: across calls and restarts")
    score: float = Field(
        description="the group's weakest pair: the lowest similarity of two of its images. With "
        "complete linkage at least the tier's threshold; with average or single linkage it "
        "may be lower (the threshold bounds the mean of the pairs, or one pair of a chain)"
    )
    image_ids: list[str] = Field(description="in the order they were stored")
    parent_id: str | None = Field(
        description="the group of the next looser tier that holds this one; null in the "
        "loosest tier asked for"
    )


class TierGroups(BaseModel):
    name: TierName
    threshold: float = Field(
        description="the tier's linkage level: complete linkage, every pair of a group reaches "
        "it; average linkage (the default), the mean similarity of the pairs across any two "
        "parts a group joined reaches it; single linkage, each photo reaches it with one other"
    )
    groups: list[Group] = Field(description="this page of the tier's groups, largest first")
    total_groups: int = Field(description="groups in the tier, on every page")
    total_images: int = Field(description="images in the tier's groups, on every page")
    next_cursor: str | None = Field(
        description="pass as cursor for this tier's next page; null on its last page"
    )


class ClustersResponse(BaseModel):
    user_id: str
    n_images: int
    model: str | None = Field(description="encoder of the stored embeddings; null if none")
    linkage: Linkage
    exact: bool = Field(description="false when a safety bound made groups smaller")
    tiers: list[TierGroups] = Field(description="loosest first; only the cursor's tier with one")


class Neighbor(BaseModel):
    image_id: str
    score: float
    not_similar: bool = Field(description="the user marked this pair not similar")


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


class TierThresholdsSchema(BaseModel):
    low: float
    medium: float
    high: float


class TierDefaultsSchema(BaseModel):
    """The tiers a request gets when it names none, and whether they were calibrated."""

    model: str = Field(description="the encoder whose vectors they apply to")
    source: CalibrationSource = Field(
        description="baked: calibrated by bake-model with the weights the embedder serves; "
        "built-in: the project's calibration of this encoder; uncalibrated: design defaults"
    )
    thresholds: TierThresholdsSchema
    overridden: list[TierName] = Field(
        description="tiers set by the deployment (PHOTOCLUSTER_LOW/MEDIUM/HIGH), not the "
        "calibration"
    )
    index_floor: float = Field(description="lowest score the write-time graph keeps")
    evidence: str = Field(description="what the calibration measured (precision, recall)")
    runtime: EncoderRuntime | None = Field(
        description="the encoder runtime it was calibrated with (baked only)"
    )
    seeds: list[int] | None = Field(description="the generated sets' seeds (baked only)")


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
    tiers: TierDefaultsSchema | None = Field(
        description="the default tiers of the user's model (null before the first photo)"
    )
    runtime: EncoderRuntime | None = Field(
        None,
        description="the encoder runtime that embedded the model's latest photos (the one "
        "bake-model's fidelity gate chose for the embedder); null before the first photo, "
        "or from an embedder that does not say",
    )


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
    size: int = Field(
        ge=1,
        strict=True,  # a JSON integer: true, "1000" and 1000.0 are refused
        description="the file's length in bytes: S3 accepts a body of exactly this many, and "
        "one over the deployment's limit is refused now (422 too_large)",
        examples=[2811406],
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
    status: ImageStatus
    error: ImageErrorBody | None = Field(description="why it failed; null unless failed")
    created_at: datetime | None = Field(description="when the image was first seen")
    updated_at: datetime | None = Field(description="when its status last changed")

    @classmethod
    def of(cls, record: ImageRecord) -> ImageInfo:
        error = record.error
        return cls(
            image_id=record.image_id,
            key=record.key,
            status=ImageStatus(record.status),  # deleted records are never shown
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
    status: Literal["ok"]
    version: str | None = Field(None, description="the API's version (to a caller with a token)")
    tiers: TierDefaultsSchema | None = Field(
        None, description="the default tiers of the deployment's model (to a caller with a token)"
    )


ImageIdStr = Annotated[str, StringConstraints(pattern=IMAGE_ID_REGEX, max_length=IMAGE_ID_MAX)]


class NotSimilarRequest(BaseModel):
    """Photos the user says are not alike: every pair among them."""

    model_config = ConfigDict(extra="forbid")
    image_ids: list[ImageIdStr] = Field(min_length=decisions.MIN_IDS, max_length=decisions.MAX_IDS)


class DecisionChange(BaseModel):
    changed: int = Field(description="pairs marked (PUT) or unmarked (DELETE) by this call")
    total: int = Field(description="the user's not-similar pairs after it")


class NotSimilarPair(BaseModel):
    a: str
    b: str
    created_at: datetime


class DecisionsResponse(BaseModel):
    not_similar: list[NotSimilarPair] = Field(description="newest first")
    total: int
    next_cursor: str | None = Field(description="pass as cursor for the next page; null at end")
