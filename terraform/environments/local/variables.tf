variable "endpoint" {
  description = "The AWS emulator (moto in server mode, or LocalStack)."
  type        = string
  default     = "http://127.0.0.1:4566"
}

variable "region" {
  description = "Region the emulator pretends to be."
  type        = string
  default     = "us-east-1"
}

variable "name" {
  description = "Name prefix: the same as the local runtime's (photocluster.local.aws)."
  type        = string
  default     = "photocluster-local"
}

variable "queue_delay_seconds" {
  description = "Delivery delay of the ingest queue (production's default)."
  type        = number
  default     = 5
}

variable "queue_max_receive_count" {
  description = "Receives before the dead-letter queue (production's default)."
  type        = number
  default     = 5
}

variable "ingest_timeout_seconds" {
  description = "Ingest function timeout the queue's visibility is derived from (production's)."
  type        = number
  default     = 60
}
