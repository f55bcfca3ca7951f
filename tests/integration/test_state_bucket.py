"""make deploy's state bucket against moto: created hardened, and hardened again on a later
run when it was not (a bucket of an earlier version, or one made by hand)."""

from __future__ import annotations

import json
from typing import Any

from photocluster.deploy.state import TLS_ONLY_SID, ensure_state_bucket
from photocluster.local.aws import emulator_client

REGION = "eu-west-1"
ACCOUNT = "123456789012"
BUCKET = f"photocluster-tfstate-{ACCOUNT}-{REGION}"


def protections(s3: Any) -> dict[str, object]:
    policy = json.loads(s3.get_bucket_policy(Bucket=BUCKET)["Policy"])
    rules = s3.get_bucket_encryption(Bucket=BUCKET)["ServerSideEncryptionConfiguration"]
    block = s3.get_public_access_block(Bucket=BUCKET)["PublicAccessBlockConfiguration"]
    return {
        "versioning": s3.get_bucket_versioning(Bucket=BUCKET).get("Status"),
        "encryption": rules["Rules"][0]["ApplyServerSideEncryptionByDefault"],
        "public access blocked": all(block.values()) and len(block) == 4,
        "statements": sorted(st.get("Sid", "") for st in policy["Statement"]),
    }


def test_a_new_state_bucket_is_private_versioned_encrypted_and_tls_only(aws: str) -> None:
    s3 = emulator_client("s3", aws, REGION)
    ensure_state_bucket(s3, BUCKET, REGION, ACCOUNT)
    assert protections(s3) == {
        "versioning": "Enabled",
        "encryption": {"SSEAlgorithm": "aws:kms"},
        "public access blocked": True,
        "statements": [TLS_ONLY_SID],
    }


def test_a_bucket_without_them_gets_them_on_the_next_run_keeping_the_operators_own(
    aws: str,
) -> None:
    s3 = emulator_client("s3", aws, REGION)
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    key = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    s3.put_bucket_encryption(
        Bucket=BUCKET,
        ServerSideEncryptionConfiguration={
            "Rules": [
                {
                    "ApplyServerSideEncryptionByDefault": {
                        "SSEAlgorithm": "aws:kms",
                        "KMSMasterKeyID": key,
                    }
                }
            ]
        },
    )
    audit = {
        "Sid": "AuditorsRead",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/auditor"},
        "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{BUCKET}/*",
    }
    s3.put_bucket_policy(
        Bucket=BUCKET, Policy=json.dumps({"Version": "2012-10-17", "Statement": [audit]})
    )

    for _ in range(2):  # and a run after that changes nothing
        ensure_state_bucket(s3, BUCKET, REGION, ACCOUNT)
        assert protections(s3) == {
            "versioning": "Enabled",
            "encryption": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key},
            "public access blocked": True,
            "statements": ["AuditorsRead", TLS_ONLY_SID],
        }
