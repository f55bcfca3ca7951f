variable "name" {
  description = "Function name (also the log group's and role's)."
  type        = string
}

variable "image_uri" {
  description = "Container image of the function."
  type        = string
}

variable "command" {
  description = "image_config.command: the handler, e.g. [\"handler.handler\"]."
  type        = list(string)
}

variable "memory_mb" {
  description = "Memory (and CPU share) of the function."
  type        = number
  default     = 1024
  validation {
    condition     = var.memory_mb >= 128 && var.memory_mb <= 10240
    error_message = "memory_mb must be between 128 and 10240."
  }
}

variable "timeout_seconds" {
  description = "Function timeout."
  type        = number
  default     = 30
  validation {
    condition     = var.timeout_seconds >= 1 && var.timeout_seconds <= 900
    error_message = "timeout_seconds must be between 1 and 900."
  }
}

variable "reserved_concurrency" {
  description = "Concurrency reserved for (and capping) the function; -1 (default) for none: new accounts' quotas are small, and Lambda keeps 100 unreserved."
  type        = number
  default     = -1
}

variable "environment" {
  description = "Environment variables (PHOTOCLUSTER_*); no secrets."
  type        = map(string)
  default     = {}
}

variable "vpc_subnet_ids" {
  description = "Subnets to run in (with vpc_security_group_ids); empty for no VPC."
  type        = list(string)
  default     = []
}

variable "vpc_security_group_ids" {
  description = "Security groups when running in a VPC."
  type        = list(string)
  default     = []
}

variable "efs" {
  description = "EFS access point to mount, and where (under /mnt/); null for none."
  type = object({
    access_point_arn = string
    mount_path       = string
  })
  default = null
  validation {
    condition     = var.efs == null || startswith(try(var.efs.mount_path, ""), "/mnt/")
    error_message = "Lambda mounts EFS under /mnt/."
  }
}

variable "policy_json" {
  description = "The function's own least-privilege permissions (an aws_iam_policy_document)."
  type        = string
}

variable "provisioned_concurrency" {
  description = "Provisioned concurrency on the live alias (0 = none)."
  type        = number
  default     = 0
  validation {
    condition     = var.provisioned_concurrency >= 0
    error_message = "provisioned_concurrency must be >= 0."
  }
}

variable "enable_provisioned_concurrency" {
  description = "Create provisioned concurrency and its autoscaling (off for emulators that lack them)."
  type        = bool
  default     = true
}

variable "autoscaling_max" {
  description = "Upper bound of Application Auto Scaling on the alias's provisioned concurrency."
  type        = number
  default     = 20
}

variable "autoscaling_target_utilization" {
  description = "Target of LambdaProvisionedConcurrencyUtilization (0-1)."
  type        = number
  default     = 0.7
  validation {
    condition     = var.autoscaling_target_utilization > 0 && var.autoscaling_target_utilization <= 1
    error_message = "autoscaling_target_utilization must be in (0, 1]."
  }
}

variable "log_retention_days" {
  description = "Retention of the function's log group."
  type        = number
  default     = 365
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
