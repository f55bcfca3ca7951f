variable "name" {
  description = "Queue name; the dead-letter queue is named \"{name}-dlq\"."
  type        = string
  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,76}$", var.name))
    error_message = "name must be 1-76 letters, digits, hyphens or underscores."
  }
}

variable "delay_seconds" {
  description = "Delivery delay of every message: spreads bursts so the embedding endpoint throttles less."
  type        = number
  default     = 5
  validation {
    condition     = var.delay_seconds >= 0 && var.delay_seconds <= 900
    error_message = "delay_seconds must be between 0 and 900."
  }
}

variable "consumer_timeout_seconds" {
  description = "Timeout of the function that consumes the queue (the ingest Lambda)."
  type        = number
  validation {
    condition     = var.consumer_timeout_seconds >= 1 && var.consumer_timeout_seconds <= 900
    error_message = "consumer_timeout_seconds must be between 1 and 900."
  }
}

variable "visibility_timeout_seconds" {
  description = "How long a received message stays hidden; AWS advises at least 6x the consumer's timeout."
  type        = number
  validation {
    condition     = var.visibility_timeout_seconds >= 6 * var.consumer_timeout_seconds && var.visibility_timeout_seconds <= 43200
    error_message = "visibility_timeout_seconds must be at least 6x consumer_timeout_seconds (and at most 43200)."
  }
}

variable "max_receive_count" {
  description = "Receives before a message moves to the dead-letter queue."
  type        = number
  default     = 5
  validation {
    condition     = var.max_receive_count >= 1 && var.max_receive_count <= 1000
    error_message = "max_receive_count must be between 1 and 1000."
  }
}

variable "source_bucket_arn" {
  description = "The uploads bucket: the only sender allowed by the queue policy."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key for server-side encryption; null uses SQS-managed encryption (SSE-SQS)."
  type        = string
  default     = null
}

variable "alarm_actions" {
  description = "SNS topic ARNs notified when the dead-letter queue holds messages."
  type        = list(string)
  default     = []
}

variable "restrict_dlq_sources" {
  description = "Let only the ingest queue redrive into the DLQ (off only for emulators lacking the attribute)."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
