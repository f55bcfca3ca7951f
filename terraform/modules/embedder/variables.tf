variable "name" {
  description = "Name of the model (plus a digest of the image), endpoint configuration and endpoint."
  type        = string
}

variable "repository_arn" {
  description = "ECR repository of the embedder image (the root creates every repository)."
  type        = string
}

variable "image_uri" {
  description = "Embedder image (docker/embedder.Dockerfile) in repository_arn."
  type        = string
}

variable "model_data_url" {
  description = "Optional S3 URL of a model.tar.gz that SageMaker unpacks into /opt/ml/model."
  type        = string
  default     = null
}

variable "memory_size_mb" {
  # 2048: the int8 ViT-B/16 server peaks at ~350 MiB, and one vCPU embeds more images per
  # GB-second than two (threads scale sublinearly); README, "Sizing the embedder".
  description = "Serverless memory (its vCPUs follow): 1024-6144 in steps of 1024. The torch runtime needs >= 2048."
  type        = number
  default     = 2048
  validation {
    condition     = contains([1024, 2048, 3072, 4096, 5120, 6144], var.memory_size_mb)
    error_message = "memory_size_mb must be one of 1024, 2048, 3072, 4096, 5120, 6144."
  }
}

variable "max_concurrency" {
  description = "Most concurrent invocations the serverless endpoint serves (1-200)."
  type        = number
  default     = 20
  validation {
    condition     = var.max_concurrency >= 1 && var.max_concurrency <= 200
    error_message = "max_concurrency must be between 1 and 200."
  }
}

variable "provisioned_concurrency" {
  description = "Warm instances kept ready (0 = none); must not exceed max_concurrency."
  type        = number
  default     = 2
  validation {
    condition     = var.provisioned_concurrency >= 0 && var.provisioned_concurrency <= var.max_concurrency
    error_message = "provisioned_concurrency must be between 0 and max_concurrency."
  }
}

variable "autoscaling_max_provisioned" {
  description = "Upper bound for Application Auto Scaling of the provisioned concurrency."
  type        = number
  default     = 10
}

variable "autoscaling_target_utilization" {
  description = "Target of SageMakerVariantProvisionedConcurrencyUtilization (0-1)."
  type        = number
  default     = 0.7
  validation {
    condition     = var.autoscaling_target_utilization > 0 && var.autoscaling_target_utilization <= 1
    error_message = "autoscaling_target_utilization must be in (0, 1]."
  }
}

variable "enable_autoscaling" {
  description = "Create the scaling target and policy (off for emulators that lack the API)."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
