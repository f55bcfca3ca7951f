variable "name" {
  description = "Name prefix of the network resources."
  type        = string
}

variable "create_vpc" {
  description = "Create a minimal VPC (private subnets, no NAT); false to use vpc_id and subnet_ids."
  type        = bool
  default     = true
}

variable "vpc_id" {
  description = "Existing VPC, when create_vpc is false."
  type        = string
  default     = null
  validation {
    condition     = var.create_vpc || var.vpc_id != null
    error_message = "vpc_id is required when create_vpc is false."
  }
}

variable "subnet_ids" {
  description = "Existing private subnets (one per AZ) for the Lambdas and EFS mount targets, when create_vpc is false."
  type        = list(string)
  default     = []
  validation {
    condition     = var.create_vpc || length(var.subnet_ids) >= 1
    error_message = "subnet_ids is required when create_vpc is false."
  }
}

variable "cidr_block" {
  description = "CIDR of the VPC created when create_vpc is true."
  type        = string
  default     = "10.42.0.0/16"
  validation {
    condition     = can(cidrhost(var.cidr_block, 0))
    error_message = "cidr_block must be a valid IPv4 CIDR."
  }
}

variable "availability_zones" {
  description = "AZs of the created subnets (one subnet each), e.g. [\"eu-west-1a\", \"eu-west-1b\"]."
  type        = list(string)
  default     = []
  validation {
    condition     = !var.create_vpc || length(var.availability_zones) >= 2
    error_message = "Give at least two availability_zones when create_vpc is true."
  }
}

variable "route_table_ids" {
  description = "Route tables of subnet_ids (existing VPC): an S3 gateway endpoint is added to them."
  type        = list(string)
  default     = []
  validation {
    condition     = var.create_vpc || length(var.route_table_ids) > 0 || var.s3_prefix_list_id != null
    error_message = "With an existing VPC, give route_table_ids (an S3 gateway endpoint is added to them) or s3_prefix_list_id (the VPC already has one): the functions must reach S3."
  }
}

variable "s3_prefix_list_id" {
  description = "Prefix list of an S3 gateway endpoint the existing VPC already has (pl-...); null creates one."
  type        = string
  default     = null
  validation {
    condition     = var.s3_prefix_list_id == null || can(regex("^pl-[0-9a-f]+$", var.s3_prefix_list_id))
    error_message = "s3_prefix_list_id must look like pl-0123abcd."
  }
}

variable "flow_log_traffic_type" {
  description = "Which traffic the VPC flow logs record (created VPC only): REJECT is what an investigation needs, ALL costs more."
  type        = string
  default     = "REJECT"
  validation {
    condition     = contains(["ACCEPT", "REJECT", "ALL"], var.flow_log_traffic_type)
    error_message = "flow_log_traffic_type must be ACCEPT, REJECT or ALL."
  }
}

variable "flow_log_retention_days" {
  description = "Retention of the VPC flow logs (created VPC only)."
  type        = number
  default     = 30
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
