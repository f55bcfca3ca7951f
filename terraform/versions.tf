terraform {
  required_version = ">= 1.11"
  # State: make deploy writes backend.tf (an S3 backend locked by a lock file beside the
  # state, use_lockfile) on first use, after creating the bucket; without it (make plan on
  # a machine with no AWS account) the state is local.
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.100"
    }
  }
}
