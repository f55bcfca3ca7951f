"""The AWS resources of the write path, created through boto3 against any endpoint.

Used by the local runtime (``make demo`` / ``make up``), the integration tests and the
end-to-end test, against moto (or LocalStack) on loopback. Names follow Terraform's
(``{name}-uploads``, ``{name}-ingest``, ``{name}-ingest-dlq``) and the queue attributes
come from the same Settings defaults that ``terraform/`` is checked against.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from typing import Any

from photocluster.buckets import block_public_access
from photocluster.config import Settings


@dataclass(frozen=True)
class Resources:
    bucket: str
    queue_url: str
    queue_arn: str
    dlq_url: str
    dlq_arn: str


#: Emulators accept any credentials; "test" is the conventional dummy, never a real key.
EMULATOR_KEY = "test"


def emulator_client(service: str, url: str, region: str = "us-east-1") -> Any:
    """A boto3 client of an AWS emulator (moto or LocalStack) on ``url``."""
    import boto3

    session = boto3.session.Session(
        aws_access_key_id=EMULATOR_KEY, aws_secret_access_key=EMULATOR_KEY, region_name=region
    )
    return session.client(service, endpoint_url=url)  # type: ignore[call-overload]


def emulator_env(url: str, region: str = "us-east-1") -> dict[str, str]:
    """Environment variables that point boto3 in a child process at the emulator."""
    return {
        "AWS_ENDPOINT_URL": url,
        "AWS_ACCESS_KEY_ID": EMULATOR_KEY,
        "AWS_SECRET_ACCESS_KEY": EMULATOR_KEY,
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
    }


def resource_names(name: str) -> dict[str, str]:
    return {"bucket": f"{name}-uploads", "queue": f"{name}-ingest", "dlq": f"{name}-ingest-dlq"}


def bootstrap(s3: Any, sqs: Any, settings: Settings, name: str | None = None) -> Resources:
    """Create (idempotently) the bucket, the ingest queue with its DLQ, and the bucket
    notification: ObjectCreated and ObjectRemoved under the upload prefix -> queue."""
    names = resource_names(name or settings.name)
    _private_bucket(s3, names["bucket"])
    dlq_url = sqs.create_queue(
        QueueName=names["dlq"], Attributes={"MessageRetentionPeriod": "1209600"}
    )["QueueUrl"]
    dlq_arn = _queue_arn(sqs, dlq_url)
    queue_url = sqs.create_queue(
        QueueName=names["queue"],
        Attributes={
            "DelaySeconds": str(settings.queue_delay_s),
            "VisibilityTimeout": str(settings.queue_visibility_s),
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": settings.queue_max_receive}
            ),
        },
    )["QueueUrl"]
    queue_arn = _queue_arn(sqs, queue_url)
    policy = _bucket_may_send(names["bucket"], queue_arn)
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": json.dumps(policy)})
    _notify_queue(s3, names["bucket"], queue_arn, settings.upload_prefix)
    return Resources(names["bucket"], queue_url, queue_arn, dlq_url, dlq_arn)


def _private_bucket(s3: Any, bucket: str) -> None:
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
        s3.create_bucket(Bucket=bucket)
    block_public_access(s3, bucket)


def allow_uploads_from(s3: Any, bucket: str, origins: list[str]) -> None:
    """The bucket's CORS rule for a web page's presigned PUTs (Terraform's storage module
    writes the same for ``upload_cors_origins``)."""
    rule = {
        "AllowedMethods": ["PUT"],
        "AllowedOrigins": origins,
        "AllowedHeaders": ["content-type", "content-length"],
        "MaxAgeSeconds": 3600,
    }
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": [rule]})


def _queue_arn(sqs: Any, queue_url: str) -> str:
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    return str(attributes["Attributes"]["QueueArn"])


def _bucket_may_send(bucket: str, queue_arn: str) -> dict[str, Any]:
    """The queue policy letting only the bucket send (upload events) to the queue."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "BucketSendsUploadEvents",
                "Effect": "Allow",
                "Principal": {"Service": "s3.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": f"arn:aws:s3:::{bucket}"}},
            }
        ],
    }


def _notify_queue(s3: Any, bucket: str, queue_arn: str, prefix: str) -> None:
    rule = {"Key": {"FilterRules": [{"Name": "prefix", "Value": prefix}]}}
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "Id": "uploads-to-ingest",
                    "QueueArn": queue_arn,
                    "Events": ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"],
                    "Filter": rule,
                }
            ]
        },
    )


def lambda_sqs_event(
    messages: list[dict[str, Any]], queue_arn: str, region: str = "us-east-1"
) -> dict[str, Any]:
    """The event the Lambda SQS event source mapping delivers for these received messages
    (what ``receive_message`` returned, with AttributeNames=["All"])."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": {
                    "ApproximateReceiveCount": m.get("Attributes", {}).get(
                        "ApproximateReceiveCount", "1"
                    ),
                    "SentTimestamp": m.get("Attributes", {}).get("SentTimestamp", "0"),
                    "SenderId": m.get("Attributes", {}).get("SenderId", ""),
                    "ApproximateFirstReceiveTimestamp": m.get("Attributes", {}).get(
                        "ApproximateFirstReceiveTimestamp", "0"
                    ),
                },
                "messageAttributes": {},
                "md5OfBody": m.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
            for m in messages
        ]
    }
