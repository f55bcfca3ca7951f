# The embedding endpoint: the embedder image (ViT weights baked in) as a SageMaker
# Serverless endpoint, with provisioned concurrency scaled by Application Auto Scaling.

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["sagemaker.amazonaws.com"]
    }
  }
}

data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  account_id = split(":", var.repository_arn)[4]
  log_group  = "arn:${data.aws_partition.current.partition}:logs:${data.aws_region.current.name}:${local.account_id}:log-group:/aws/sagemaker/Endpoints/${var.name}"
}

data "aws_iam_policy_document" "execution" {
  statement {
    sid       = "PullTheEmbedderImage"
    actions   = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"]
    resources = [var.repository_arn]
  }
  statement {
    sid       = "EcrLogin"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"] # the API has no resource-level permissions
  }
  statement {
    sid       = "EndpointLogs"
    actions   = ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
    resources = [local.log_group, "${local.log_group}:*"]
  }
  statement {
    sid       = "EndpointMetrics"
    actions   = ["cloudwatch:PutMetricData"]
    resources = ["*"] # the API has no resource-level permissions
    condition {
      test     = "StringEquals"
      variable = "cloudwatch:namespace"
      values   = ["/aws/sagemaker/Endpoints"]
    }
  }
  dynamic "statement" {
    for_each = var.model_data_url == null ? [] : [var.model_data_url]
    content {
      sid       = "ReadModelArtifacts"
      actions   = ["s3:GetObject"]
      resources = ["arn:${data.aws_partition.current.partition}:s3:::${trimprefix(statement.value, "s3://")}"]
    }
  }
}

resource "aws_iam_role" "execution" {
  name               = "${var.name}-sagemaker"
  assume_role_policy = data.aws_iam_policy_document.assume.json
  tags               = var.tags
}

resource "aws_iam_role_policy" "execution" {
  name   = "embedder"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution.json
}

resource "aws_sagemaker_model" "this" {
  # checkov:skip=CKV_AWS_370: serverless endpoints do not support network isolation (the apply fails with it)
  # A name per image: a new image is a new model, created before the old one goes (the
  # endpoint configuration's create_before_destroy reaches it), so a redeploy never asks
  # for a second model under the first one's name, which SageMaker refuses.
  name               = "${var.name}-${substr(sha256(var.image_uri), 0, 12)}"
  execution_role_arn = aws_iam_role.execution.arn
  # No enable_network_isolation: serverless endpoints do not support it (the weights are
  # baked in, so the container needs no network anyway).
  primary_container {
    image          = var.image_uri
    model_data_url = var.model_data_url
    environment = {
      PHOTOCLUSTER_LOG_LEVEL = "INFO"
    }
  }
  lifecycle {
    create_before_destroy = true
  }
  tags = var.tags
}

resource "aws_sagemaker_endpoint_configuration" "this" {
  # checkov:skip=CKV_AWS_98: serverless endpoints take no KMS key (no ML storage volume to encrypt)
  name_prefix = "${var.name}-"
  production_variants {
    variant_name = "AllTraffic"
    model_name   = aws_sagemaker_model.this.name
    serverless_config {
      memory_size_in_mb       = var.memory_size_mb
      max_concurrency         = var.max_concurrency
      provisioned_concurrency = var.provisioned_concurrency > 0 ? var.provisioned_concurrency : null
    }
  }
  lifecycle {
    create_before_destroy = true
  }
  tags = var.tags
}

resource "aws_sagemaker_endpoint" "this" {
  name                 = var.name
  endpoint_config_name = aws_sagemaker_endpoint_configuration.this.name
  tags                 = var.tags
}

resource "aws_appautoscaling_target" "this" {
  count              = var.enable_autoscaling && var.provisioned_concurrency > 0 ? 1 : 0
  service_namespace  = "sagemaker"
  resource_id        = "endpoint/${aws_sagemaker_endpoint.this.name}/variant/AllTraffic"
  scalable_dimension = "sagemaker:variant:DesiredProvisionedConcurrency"
  min_capacity       = var.provisioned_concurrency
  max_capacity       = max(var.provisioned_concurrency, var.autoscaling_max_provisioned)
}

resource "aws_appautoscaling_policy" "this" {
  count              = length(aws_appautoscaling_target.this)
  name               = "${var.name}-provisioned-concurrency"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.this[0].service_namespace
  resource_id        = aws_appautoscaling_target.this[0].resource_id
  scalable_dimension = aws_appautoscaling_target.this[0].scalable_dimension
  target_tracking_scaling_policy_configuration {
    target_value       = var.autoscaling_target_utilization
    scale_in_cooldown  = 300
    scale_out_cooldown = 60
    predefined_metric_specification {
      predefined_metric_type = "SageMakerVariantProvisionedConcurrencyUtilization"
    }
  }
}
