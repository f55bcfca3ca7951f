"""Error types of the domain. Services map them to HTTP statuses or SQS retry behaviour.

``code`` is the stable, machine-readable name of what went wrong: an image that failed to
process carries it in its status (``invalid_image``, ``too_large``...), so apps can branch
on it without parsing messages.
"""

from __future__ import annotations


class PhotoclusterError(Exception):
    """Base class of every error this package raises on purpose."""

    code = "error"


class InvalidId(PhotoclusterError, ValueError):
    """A user id or image id outside the allowed character set or length."""


class InvalidImage(PhotoclusterError, ValueError):
    """Bytes that are not a decodable image of a supported format."""

    code = "invalid_image"


class ImageTooLarge(InvalidImage):
    """An image over the byte-size or pixel-count limit (decompression-bomb guard)."""

    code = "too_large"


class UnsupportedImage(InvalidImage):
    """A file of a type the product does not accept (by format or by extension)."""

    code = "unsupported_type"


class InvalidVector(PhotoclusterError, ValueError):
    """An embedding that is not finite, is all zeros, or has the wrong shape."""

    code = "embed_failed"


class InvalidThresholds(PhotoclusterError, ValueError):
    """Tier thresholds outside (0, 1] or not strictly increasing."""


class ThresholdBelowFloor(InvalidThresholds):
    """A threshold below the stored graph's floor on a library too large to compute every
    pair of on demand (``on_demand_max_images``): the request's work would be unbounded."""

    code = "threshold_below_floor"

    def __init__(self, message: str, floor: float) -> None:
        super().__init__(message)
        self.floor = floor


class InvalidCalibration(PhotoclusterError, ValueError):
    """A calibration file (``calibration.json`` beside a model's weights, or its copy on
    the store root) that is unreadable or whose figures break the tiers' rules."""


class StoreError(PhotoclusterError):
    """A problem with a user's embeddings file."""


class StoreCorrupt(StoreError):
    """A file that is not a photocluster store file, or whose header is damaged."""


class GraphUnavailable(StoreError):
    """The user's neighbour graph is stale and could not be rebuilt (e.g. a read-only
    file system): a retry after the next write succeeds."""


class DimensionMismatch(StoreError, ValueError):
    """Vectors whose dimension differs from the one the user's file was created with."""

    code = "embed_failed"


class ModelMismatch(StoreError, ValueError):
    """Vectors from another encoder than the one the user's file was created with."""

    code = "embed_failed"


class LibraryFull(StoreError, ValueError):
    """A write that would take a user's library past ``max_images_per_user`` photos: the
    functions' memory holds a library of that size, no larger (refused, never killed)."""

    code = "library_full"


class UnknownUser(PhotoclusterError, LookupError):
    """No embeddings are stored for this user."""


class UnknownImage(PhotoclusterError, LookupError):
    """The user has no embedding for this image id (``image_ids``: the ones unknown, when
    a request named several)."""

    code = "unknown_image"

    def __init__(self, message: str, image_ids: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.image_ids = image_ids


class InvalidDecision(PhotoclusterError, ValueError):
    """A decision about images that does not name at least two distinct images."""

    code = "invalid_decision"


class TooManyDecisions(PhotoclusterError, ValueError):
    """A decision that would take a user's not-similar pairs past the per-user limit."""

    code = "too_many_decisions"


class ImageNotReady(PhotoclusterError):
    """The image is known but has no embedding yet (pending) or will not get one (failed)."""


class UploadsThrottled(PhotoclusterError):
    """The user asked upload tickets faster than the deployment allows: retry later."""

    code = "throttled"

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class StorageUnavailable(PhotoclusterError):
    """S3 (the uploads bucket) failed in a way a retry may fix."""


class UploadsNotConfigured(PhotoclusterError, RuntimeError):
    """No uploads bucket is configured (PHOTOCLUSTER_BUCKET)."""


class InvalidCursor(PhotoclusterError, ValueError):
    """A pagination cursor this API did not give."""


class InvalidEvent(PhotoclusterError, ValueError):
    """A message that is not an event the ingest function understands (never retried)."""


class NotAnImageKey(PhotoclusterError, ValueError):
    """A key outside the upload layout or without an image extension (skipped, logged)."""


class EndpointError(PhotoclusterError):
    """The embedding endpoint failed in a way a retry may fix (5xx, connection)."""


class EndpointThrottled(EndpointError):
    """The embedding endpoint kept throttling after the bounded retries."""


class EndpointRejected(PhotoclusterError):
    """The embedding endpoint refused an input (4xx): retrying will not help.

    ``instance`` is the index of the failing image in the batch when the endpoint names it.
    """

    code = "embed_failed"

    def __init__(self, message: str, instance: int | None = None) -> None:
        super().__init__(message)
        self.instance = instance


class WriterUnavailable(EndpointError):
    """The writer could not be reached or failed unexpectedly: retry later."""


class AuthNotConfigured(PhotoclusterError, RuntimeError):
    """The API refuses to start without a way to authenticate callers."""


class StackError(PhotoclusterError, RuntimeError):
    """A server of the local stack failed to start or died."""


class DeployError(PhotoclusterError, RuntimeError):
    """A step of make deploy failed, or its inputs are incomplete."""
