"""The remote state: an S3 bucket per account and region, created on first use, and the
``backend.tf`` that points Terraform at it. Locking is S3's own (``use_lockfile``: a lock
object beside the state, written with a conditional put), so no DynamoDB table."""

from __future__ import annotations

import logging
from typing import Any

from photocluster.errors import DeployError

log = logging.getLogger(__name__)

BACKEND_FILE = "backend.tf"


def state_bucket_name(project: str, account: str, region: str) -> str:
    """``{project}-tfstate-{account}-{region}``: one per account and region, every
    environment's state under its own key."""
    name = f"{project}-tfstate-{account}-{region}"
    if len(name) > 63:
        raise DeployError(f"state bucket name {name!r} is over S3's 63 characters")
    return name


def ensure_state_bucket(s3: Any, bucket: str, region: str) -> None:
    """Create the state bucket unless it exists: private, versioned, encrypted."""
    from botocore.exceptions import ClientError

    try:
        s3.head_bucket(Bucket=bucket)
        return
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket"):
            raise DeployError(f"state bucket {bucket} exists but is not yours: {exc}") from exc
    log.info("creating the state bucket %s", bucket)
    where = (
        {}
        if region == "us-east-1"
        else {"CreateBucketConfiguration": {"LocationConstraint": region}}
    )
    s3.create_bucket(Bucket=bucket, **where)
    block_public_access(s3, bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}]
        },
    )


def backend_block(bucket: str, key: str, region: str, emulator: str | None = None) -> str:
    """The ``terraform { backend "s3" {...} }`` block of ``backend.tf``."""
    lines = [
        f'bucket       = "{bucket}"',
        f'key          = "{key}"',
        f'region       = "{region}"',
        "encrypt      = true",
        "use_lockfile = true",
    ]
    if emulator is not None:  # the emulator's S3, with its dummy credentials
        lines += [
            f'endpoints    = {{ s3 = "{emulator}" }}',
            "use_path_style              = true",
            'access_key                  = "test"',
            'secret_key                  = "test"',
            "skip_credentials_validation = true",
            "skip_requesting_account_id  = true",
            "skip_metadata_api_check     = true",
            "skip_region_validation      = true",
        ]
    body = "\n".join(f"    {line}" for line in lines)
    return (
        "# Written by make deploy (photocluster.deploy.state): where this folder's state lives.\n"
        f'terraform {{\n  backend "s3" {{\n{body}\n  }}\n}}\n'
    )


def block_public_access(s3: Any, bucket: str) -> None:
    """Refuse every public ACL and policy on ``bucket`` (the state, the emulator's uploads)."""
    s3.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
