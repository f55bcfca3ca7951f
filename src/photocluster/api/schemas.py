"""Response bodies of the API (pydantic models: validation and OpenAPI in one place)."""

from __future__ import annotations

from pydantic import BaseModel, Field


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
    n_images: int
    n_records: int
    n_dead: int
    file_bytes: int
    graph_fresh: bool
    graph_floor: float | None
    graph_edges: int | None


class Health(BaseModel):
    status: str
    version: str


class ErrorBody(BaseModel):
    detail: str | list[dict[str, object]]
