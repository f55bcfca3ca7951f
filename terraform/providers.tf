locals {
  # An emulator (moto, LocalStack) instead of AWS: for offline plans and local applies.
  emulated = var.aws_endpoint_url != null
}

provider "aws" {
  region = var.region

  default_tags {
    tags = local.tags
  }

  access_key                  = local.emulated ? "test" : null
  secret_key                  = local.emulated ? "test" : null
  skip_credentials_validation = local.emulated
  skip_requesting_account_id  = local.emulated
  skip_metadata_api_check     = local.emulated
  s3_use_path_style           = local.emulated
  max_retries                 = local.emulated ? 3 : null # an emulator's dropped connection is retried

  endpoints {
    apigateway             = var.aws_endpoint_url
    applicationautoscaling = var.aws_endpoint_url
    cloudwatch             = var.aws_endpoint_url
    cloudwatchlogs         = var.aws_endpoint_url
    cognitoidp             = var.aws_endpoint_url
    ec2                    = var.aws_endpoint_url
    ecr                    = var.aws_endpoint_url
    efs                    = var.aws_endpoint_url
    iam                    = var.aws_endpoint_url
    lambda                 = var.aws_endpoint_url
    s3                     = var.aws_endpoint_url
    sagemaker              = var.aws_endpoint_url
    sqs                    = var.aws_endpoint_url
    sts                    = var.aws_endpoint_url
    wafv2                  = var.aws_endpoint_url
  }
}
