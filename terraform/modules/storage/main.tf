# The uploads bucket: private, encrypted, TLS-only; uploads and deletions under the upload
# prefix notify the ingest queue (one configuration per image suffix).

resource "aws_s3_bucket" "uploads" {
  # checkov:skip=CKV_AWS_18: access logging needs a separate log bucket; add one per account policy
  # checkov:skip=CKV_AWS_144: cross-region replication is a per-deployment choice, not a default
  bucket        = var.bucket_name
  force_destroy = var.force_destroy
  tags          = var.tags
}

resource "aws_s3_bucket_public_access_block" "uploads" {
  bucket                  = aws_s3_bucket.uploads.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "uploads" {
  bucket = aws_s3_bucket.uploads.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "uploads" {
  bucket = aws_s3_bucket.uploads.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = var.kms_key_arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_versioning" "uploads" {
  bucket = aws_s3_bucket.uploads.id
  versioning_configuration {
    status = var.versioning ? "Enabled" : "Suspended"
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "uploads" {
  bucket = aws_s3_bucket.uploads.id
  rule {
    id     = "housekeeping"
    status = "Enabled"
    filter {}
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_days
    }
  }
  # Ingest tags an upload that failed for good (too_large, invalid_image, unsupported_type:
  # photocluster.ingest.pipeline.REJECTED_TAG); its image's status keeps saying why.
  rule {
    id     = "rejected-uploads"
    status = "Enabled"
    filter {
      tag {
        key   = "photocluster-status"
        value = "rejected"
      }
    }
    expiration {
      days = var.rejected_upload_days
    }
  }
  depends_on = [aws_s3_bucket_versioning.uploads]
}

data "aws_iam_policy_document" "tls_only" {
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.uploads.arn, "${aws_s3_bucket.uploads.arn}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "uploads" {
  bucket     = aws_s3_bucket.uploads.id
  policy     = data.aws_iam_policy_document.tls_only.json
  depends_on = [aws_s3_bucket_public_access_block.uploads]
}

# Every key under the prefix, whatever its suffix: S3's suffix filters are case-sensitive,
# so filtering by extension missed "photo.Jpeg" and "photo.WEBP" (never ingested, forever
# pending), and a non-photo (clip.mov) vanished silently. Ingest decides what is a photo,
# ignoring case, and records the rest as failed (unsupported_type).
resource "aws_s3_bucket_notification" "uploads" {
  bucket = aws_s3_bucket.uploads.id
  queue {
    id            = "uploads-to-ingest"
    queue_arn     = var.queue_arn
    events        = ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]
    filter_prefix = var.upload_prefix
  }
}

# Browsers need CORS to PUT to a presigned URL; native apps do not (off unless origins given).
resource "aws_s3_bucket_cors_configuration" "uploads" {
  count  = length(var.cors_allowed_origins) > 0 ? 1 : 0
  bucket = aws_s3_bucket.uploads.id
  cors_rule {
    allowed_methods = ["PUT"]
    allowed_origins = var.cors_allowed_origins
    allowed_headers = ["content-type", "content-length"]
    max_age_seconds = 3600
  }
}
