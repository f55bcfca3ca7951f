# One container-image Lambda with its log group, least-privilege role, the alias "live",
# provisioned concurrency on that alias and Application Auto Scaling of it. Its image's
# repository is the root's (make deploy creates the repositories before any function).

resource "aws_cloudwatch_log_group" "this" {
  # checkov:skip=CKV_AWS_338: retention is var.log_retention_days: a year in the prod example, 30 days by default (cost)
  # checkov:skip=CKV_AWS_158: CloudWatch encrypts log data at rest by default; a CMK is an account choice
  name              = "/aws/lambda/${var.name}"
  retention_in_days = var.log_retention_days
  tags              = var.tags
}

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

locals {
  in_vpc = length(var.vpc_subnet_ids) > 0
}

data "aws_iam_policy_document" "runtime" {
  statement {
    sid       = "OwnLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.this.arn}:*"]
  }
  statement {
    sid       = "Tracing"
    actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    resources = ["*"] # X-Ray has no resource-level permissions
  }
  dynamic "statement" {
    for_each = local.in_vpc ? [1] : []
    content {
      sid = "VpcNetworkInterfaces"
      actions = ["ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces",
      "ec2:DeleteNetworkInterface", "ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses"]
      resources = ["*"] # ENI management has no resource-level scoping for Lambda
    }
  }
}

resource "aws_iam_role" "this" {
  name               = var.name
  assume_role_policy = data.aws_iam_policy_document.assume.json
  tags               = var.tags
}

resource "aws_iam_role_policy" "runtime" {
  name   = "runtime"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.runtime.json
}

resource "aws_iam_role_policy" "own" {
  name   = "function"
  role   = aws_iam_role.this.id
  policy = var.policy_json
}

resource "aws_lambda_function" "this" {
  # checkov:skip=CKV_AWS_116: invoked synchronously or by an SQS mapping whose queue has a DLQ
  # checkov:skip=CKV_AWS_173: environment holds names and URLs only, no secrets
  # checkov:skip=CKV_AWS_272: code signing applies to zip packages, not container images
  function_name                  = var.name
  package_type                   = "Image"
  image_uri                      = var.image_uri
  role                           = aws_iam_role.this.arn
  memory_size                    = var.memory_mb
  timeout                        = var.timeout_seconds
  reserved_concurrent_executions = var.reserved_concurrency
  architectures                  = ["x86_64"]
  publish                        = true

  image_config {
    command = var.command
  }

  environment {
    variables = var.environment
  }

  tracing_config {
    mode = "Active"
  }

  dynamic "vpc_config" {
    for_each = local.in_vpc ? [1] : []
    content {
      subnet_ids         = var.vpc_subnet_ids
      security_group_ids = var.vpc_security_group_ids
    }
  }

  dynamic "file_system_config" {
    for_each = var.efs == null ? [] : [var.efs] # known at plan time even while the ARN is not
    content {
      arn              = file_system_config.value.access_point_arn
      local_mount_path = file_system_config.value.mount_path
    }
  }

  logging_config {
    log_format = "JSON"
    log_group  = aws_cloudwatch_log_group.this.name
  }

  depends_on = [aws_iam_role_policy.runtime, aws_iam_role_policy.own]
  tags       = var.tags
}

resource "aws_lambda_alias" "live" {
  name             = "live"
  function_name    = aws_lambda_function.this.function_name
  function_version = aws_lambda_function.this.version
}

locals {
  provisioned = var.enable_provisioned_concurrency && var.provisioned_concurrency > 0
}

resource "aws_lambda_provisioned_concurrency_config" "live" {
  count                             = local.provisioned ? 1 : 0
  function_name                     = aws_lambda_function.this.function_name
  qualifier                         = aws_lambda_alias.live.name
  provisioned_concurrent_executions = var.provisioned_concurrency
  lifecycle {
    # Application Auto Scaling owns the amount once it is created (between min and max):
    # an apply must not reset it to the minimum every time.
    ignore_changes = [provisioned_concurrent_executions]
  }
}

resource "aws_appautoscaling_target" "live" {
  count              = local.provisioned ? 1 : 0
  service_namespace  = "lambda"
  resource_id        = "function:${aws_lambda_function.this.function_name}:${aws_lambda_alias.live.name}"
  scalable_dimension = "lambda:function:ProvisionedConcurrency"
  min_capacity       = var.provisioned_concurrency
  max_capacity       = max(var.provisioned_concurrency, var.autoscaling_max)
  depends_on         = [aws_lambda_provisioned_concurrency_config.live]
}

resource "aws_appautoscaling_policy" "live" {
  count              = local.provisioned ? 1 : 0
  name               = "${var.name}-provisioned-concurrency"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.live[0].service_namespace
  resource_id        = aws_appautoscaling_target.live[0].resource_id
  scalable_dimension = aws_appautoscaling_target.live[0].scalable_dimension
  target_tracking_scaling_policy_configuration {
    target_value = var.autoscaling_target_utilization
    predefined_metric_specification {
      predefined_metric_type = "LambdaProvisionedConcurrencyUtilization"
    }
  }
}
