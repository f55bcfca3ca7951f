"""The remote state: an S3 bucket per account and region, created on first use, and the
``backend.tf`` that points Terraform at it. Locking is S3's own (``use_lockfile``: a lock
object beside the state, written with a conditional put), so no DynamoDB table."""

from __future__ import annotations

import json
import logging
from typing import Any

from photocluster.buckets import block_public_access
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


def ensure_state_bucket(
    s3: Any, bucket: str, region: str, account: str, tls_only: bool = True
) -> None:
    """The state bucket, created unless it exists, then hardened on every run (an earlier
    version's bucket, or one made by hand, gets what is missing): public access blocked,
    versioned, encrypted with KMS, TLS only. A bucket of that name in another account is
    refused (``ExpectedBucketOwner``): the state would be written to a stranger's bucket.
    ``tls_only`` off for an emulator, which is plain HTTP (moto applies bucket policies)."""
    from botocore.exceptions import ClientError

    try:
        s3.head_bucket(Bucket=bucket, ExpectedBucketOwner=account)
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
    harden_state_bucket(s3, bucket, partition_of(region), tls_only)


def partition_of(region: str) -> str:
    """The ARN partition of ``region``."""
    if region.startswith("cn-"):
        return "aws-cn"
    return "aws-us-gov" if region.startswith("us-gov-") else "aws"


def harden_state_bucket(
    s3: Any, bucket: str, partition: str = "aws", tls_only: bool = True
) -> None:
    """Whatever of the state bucket's protections is missing, put (each call is idempotent;
    an operator's own KMS key or extra policy statements are kept)."""
    block_public_access(s3, bucket)
    if s3.get_bucket_versioning(Bucket=bucket).get("Status") != "Enabled":
        log.warning("state bucket %s: versioning was off (an overwritten state is lost)", bucket)
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    if _default_encryption(s3, bucket) != "aws:kms":
        s3.put_bucket_encryption(
            Bucket=bucket,
            ServerSideEncryptionConfiguration={
                "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}]
            },
        )
    policy = _policy(s3, bucket)
    if tls_only and not any(st.get("Sid") == TLS_ONLY_SID for st in policy["Statement"]):
        policy["Statement"].append(tls_only_statement(bucket, partition))
        s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))


TLS_ONLY_SID = "DenyInsecureTransport"


def tls_only_statement(bucket: str, partition: str = "aws") -> dict[str, Any]:
    """Deny every request to ``bucket`` that does not come over TLS."""
    arn = f"arn:{partition}:s3:::{bucket}"
    return {
        "Sid": TLS_ONLY_SID,
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [arn, f"{arn}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def _default_encryption(s3: Any, bucket: str) -> str | None:
    from botocore.exceptions import ClientError

    try:
        rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]
    except ClientError:  # ServerSideEncryptionConfigurationNotFoundError
        return None
    default = rules["Rules"][0].get("ApplyServerSideEncryptionByDefault", {})
    return str(default.get("SSEAlgorithm")) if default else None


def _policy(s3: Any, bucket: str) -> dict[str, Any]:
    from botocore.exceptions import ClientError

    try:
        return dict(json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"]))
    except ClientError:  # NoSuchBucketPolicy
        return {"Version": "2012-10-17", "Statement": []}


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
