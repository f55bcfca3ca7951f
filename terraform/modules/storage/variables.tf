variable "bucket_name" {
  description = "Name of the uploads bucket (the root derives it from local.name)."
  type        = string
  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.bucket_name))
    error_message = "bucket_name must be a valid S3 bucket name."
  }
}

variable "upload_prefix" {
  description = "Key prefix of uploads: uploads/{user_id}/{filename}."
  type        = string
  default     = "uploads/"
  validation {
    condition     = endswith(var.upload_prefix, "/")
    error_message = "upload_prefix must end with a slash."
  }
}

variable "cors_allowed_origins" {
  description = "Web origins that may PUT to presigned upload URLs (browsers need CORS; native apps do not)."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for o in var.cors_allowed_origins : can(regex("^https?://[^/*]+$", o))])
    error_message = "cors_allowed_origins must be origins such as https://app.example.com (no paths, no wildcards)."
  }
}

variable "queue_arn" {
  description = "ARN of the ingest queue that receives ObjectCreated and ObjectRemoved events."
  type        = string
}

variable "versioning" {
  description = "Keep previous versions of overwritten or deleted uploads."
  type        = bool
  default     = true
}

variable "noncurrent_version_days" {
  description = "Days a previous version of an upload is kept before it expires."
  type        = number
  default     = 30
  validation {
    condition     = var.noncurrent_version_days >= 1
    error_message = "noncurrent_version_days must be at least 1."
  }
}

variable "rejected_upload_days" {
  description = "Days an upload that failed for good (too large, not a decodable image, not a photo) is kept before it expires."
  type        = number
  default     = 7
  validation {
    condition     = var.rejected_upload_days >= 1
    error_message = "rejected_upload_days must be at least 1."
  }
}

variable "kms_key_arn" {
  description = "KMS key for server-side encryption; null uses the AWS managed key (aws/s3)."
  type        = string
  default     = null
}

variable "force_destroy" {
  description = "Let terraform destroy delete a bucket that still holds objects."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
