variable "name" {
  description = "Name of the file system."
  type        = string
}

variable "subnet_ids" {
  description = "Subnets that get a mount target (one per AZ)."
  type        = list(string)
  validation {
    condition     = length(var.subnet_ids) >= 1
    error_message = "At least one subnet is required."
  }
}

variable "security_group_id" {
  description = "Security group of the mount targets (NFS from the Lambdas only)."
  type        = string
}

variable "performance_mode" {
  description = "maxIO (many clients, higher latency) or generalPurpose (lower latency, elastic throughput)."
  type        = string
  default     = "maxIO"
  validation {
    condition     = contains(["maxIO", "generalPurpose"], var.performance_mode)
    error_message = "performance_mode must be maxIO or generalPurpose."
  }
}

variable "throughput_mode" {
  description = "bursting, elastic (generalPurpose only) or provisioned."
  type        = string
  default     = "bursting"
  validation {
    condition     = contains(["bursting", "elastic", "provisioned"], var.throughput_mode)
    error_message = "throughput_mode must be bursting, elastic or provisioned."
  }
  validation {
    condition     = var.throughput_mode != "elastic" || var.performance_mode == "generalPurpose"
    error_message = "Elastic throughput needs performance_mode = generalPurpose (Max I/O file systems do not support it)."
  }
}

variable "provisioned_throughput_mibps" {
  description = "Throughput when throughput_mode is provisioned."
  type        = number
  default     = null
}

variable "kms_key_arn" {
  description = "KMS key for encryption at rest; null uses the AWS managed key (aws/elasticfilesystem)."
  type        = string
  default     = null
}

variable "posix_uid" {
  description = "User id every access through the access point runs as (the images' USER)."
  type        = number
  default     = 1000
}

variable "posix_gid" {
  description = "Group id every access through the access point runs as."
  type        = number
  default     = 1000
}

variable "root_path" {
  description = "Directory the access point exposes as the file system root."
  type        = string
  default     = "/photocluster"
  validation {
    condition     = startswith(var.root_path, "/") && !strcontains(var.root_path, "..")
    error_message = "root_path must be an absolute path without '..'."
  }
}

variable "enable_tls_policy" {
  description = "Attach the file system policy denying non-TLS access (off only for emulators lacking the API)."
  type        = bool
  default     = true
}

variable "enable_backup_policy" {
  description = "Turn on AWS Backup for the file system (off only for emulators that lack the API)."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
