"""The uploads bucket as the API uses it: presigned uploads for one key, and deletions.

The phone never holds AWS credentials: it asks the API for a presigned PUT of exactly one
key, with the content type and the length signed in, so S3 refuses any other body. The
URL is signed with the API function's own credentials, which may put objects under the
upload prefix only (Terraform's policy).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from photocluster.config import Settings
from photocluster.errors import StorageUnavailable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PresignedUpload:
    url: str
    headers: dict[str, str]
    expires_at: datetime


@dataclass
class UploadBucket:
    s3: Any
    bucket: str
    url_expiry_s: int
    presigner: Any | None = None  # signs URLs for the S3 endpoint clients reach, if another

    @classmethod
    def from_settings(cls, settings: Settings, s3: Any | None = None) -> UploadBucket | None:
        """The bucket as configured (None without ``PHOTOCLUSTER_BUCKET``)."""
        if not settings.bucket:
            return None
        public = s3_client(settings.s3_public_url) if settings.s3_public_url else None
        return cls(s3 or s3_client(), settings.bucket, settings.upload_url_expiry_s, public)

    def presign_upload(self, key: str, content_type: str, size: int) -> PresignedUpload:
        """A PUT of ``key`` that S3 accepts only with this content type and length (both
        are signed headers: another type or a body of another length fails the signature)."""
        params: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": key,
            "ContentType": content_type,
            "ContentLength": size,
        }
        headers = {"Content-Type": content_type, "Content-Length": str(size)}
        expires_at = datetime.now(UTC) + timedelta(seconds=self.url_expiry_s)
        url = (self.presigner or self.s3).generate_presigned_url(
            "put_object", Params=params, ExpiresIn=self.url_expiry_s, HttpMethod="PUT"
        )
        return PresignedUpload(str(url), headers, expires_at.replace(microsecond=0))

    def remove(self, key: str) -> float | None:
        """Delete ``key``; the LastModified of what was deleted (None if nothing was)."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            modified = self._last_modified(key)
            self.s3.delete_object(Bucket=self.bucket, Key=key)
        except (BotoCoreError, ClientError) as exc:
            log.error("could not delete s3://%s/%s: %s", self.bucket, key, exc)
            raise StorageUnavailable("the photo could not be deleted from storage") from exc
        return modified

    def _last_modified(self, key: str) -> float | None:
        from botocore.exceptions import ClientError

        try:
            head = self.s3.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return float(head["LastModified"].timestamp())


def s3_client(endpoint_url: str | None = None) -> Any:
    """An S3 client that signs with SigV4 (presigned URLs of every region need it)."""
    import boto3
    from botocore.config import Config

    config = Config(signature_version="s3v4")
    return boto3.client("s3", endpoint_url=endpoint_url, config=config)
