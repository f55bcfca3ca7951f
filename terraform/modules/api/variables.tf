variable "name" {
  description = "Name of the REST API and its log group."
  type        = string
}

variable "stage_name" {
  description = "Stage name; it is the first path segment of the invoke URL."
  type        = string
  default     = "live"
  validation {
    condition     = can(regex("^[A-Za-z0-9_]{1,128}$", var.stage_name))
    error_message = "stage_name must be letters, digits or underscores."
  }
}

variable "function_name" {
  description = "The cluster-api function, invoked through its alias."
  type        = string
}

variable "function_alias" {
  description = "Alias of the cluster-api function that API Gateway invokes."
  type        = string
}

variable "function_alias_invoke_arn" {
  description = "Invoke ARN of that alias."
  type        = string
}

variable "queue_arn" {
  description = "The ingest queue that POST /v1/ingest sends backfill messages to."
  type        = string
}

variable "queue_name" {
  description = "Name of the ingest queue."
  type        = string
}

variable "queue_kms_key_arn" {
  description = "KMS key of the queue, if it uses one (the integration role may then encrypt)."
  type        = string
  default     = null
}

variable "user_pool_arn" {
  description = "Existing Cognito user pool whose tokens identify callers; null creates one."
  type        = string
  default     = null
}

variable "user_pool_client_ids" {
  description = "App clients of the existing user_pool_arn whose tokens the API accepts (their aud, or client_id)."
  type        = list(string)
  default     = []
  validation {
    condition     = var.user_pool_arn == null || length(var.user_pool_client_ids) > 0
    error_message = "With an existing user_pool_arn, name its app clients in user_pool_client_ids: the API checks every token's audience."
  }
}

variable "throttling_rate_limit" {
  description = "Steady-state requests per second across the stage."
  type        = number
  default     = 500
}

variable "throttling_burst_limit" {
  description = "Burst of requests across the stage."
  type        = number
  default     = 1000
}

variable "log_retention_days" {
  description = "Retention of the access log group."
  type        = number
  default     = 365
}

variable "manage_account_logging_role" {
  description = "Set the account-wide API Gateway CloudWatch role (once per account and region)."
  type        = bool
  default     = true
}

variable "web_acl_arn" {
  description = "Optional WAFv2 web ACL to associate with the stage."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}

variable "cors_origins" {
  description = "Web origins whose pages may call the API (a preflight route is added for them)."
  type        = list(string)
  default     = []
}

variable "deletion_protection" {
  description = "Cognito's deletion protection on the created user pool (its users' accounts)."
  type        = bool
  default     = true
}
