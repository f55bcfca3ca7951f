# The public REST API.
#   GET  /health                   -> cluster-api (no auth)
#   ANY  /v1/users/{user_id}/...   -> cluster-api alias, Cognito authorizer (the app checks
#                                     that the token's sub equals {user_id})
#   POST /v1/ingest                -> SQS SendMessage on the ingest queue (backfill; IAM auth)

data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  account_id = split(":", var.queue_arn)[4]
}

resource "aws_api_gateway_rest_api" "this" {
  name        = var.name
  description = "photocluster: groups of similar photos per user"
  endpoint_configuration {
    types = ["REGIONAL"]
  }
  lifecycle {
    create_before_destroy = true
  }
  tags = var.tags
}

# --- callers: Cognito user pool tokens ---------------------------------------------------

resource "aws_cognito_user_pool" "this" {
  count                    = var.user_pool_arn == null ? 1 : 0
  name                     = var.name
  username_attributes      = ["email"]
  auto_verified_attributes = ["email"]
  mfa_configuration        = "OPTIONAL"
  software_token_mfa_configuration {
    enabled = true
  }
  password_policy {
    minimum_length    = 12
    require_lowercase = true
    require_uppercase = true
    require_numbers   = true
    require_symbols   = false
  }
  tags = var.tags
}

resource "aws_cognito_user_pool_client" "mobile" {
  count                         = var.user_pool_arn == null ? 1 : 0
  name                          = "${var.name}-mobile"
  user_pool_id                  = aws_cognito_user_pool.this[0].id
  generate_secret               = false
  explicit_auth_flows           = ["ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]
  prevent_user_existence_errors = "ENABLED"
}

locals {
  user_pool_arn = var.user_pool_arn == null ? aws_cognito_user_pool.this[0].arn : var.user_pool_arn
}

resource "aws_api_gateway_authorizer" "cognito" {
  name            = "cognito"
  rest_api_id     = aws_api_gateway_rest_api.this.id
  type            = "COGNITO_USER_POOLS"
  provider_arns   = [local.user_pool_arn]
  identity_source = "method.request.header.Authorization"
}

# --- /health ----------------------------------------------------------------------------

resource "aws_api_gateway_resource" "health" {
  rest_api_id = aws_api_gateway_rest_api.this.id
  parent_id   = aws_api_gateway_rest_api.this.root_resource_id
  path_part   = "health"
}

resource "aws_api_gateway_request_validator" "params" {
  rest_api_id                 = aws_api_gateway_rest_api.this.id
  name                        = "params"
  validate_request_parameters = true
}

resource "aws_api_gateway_method" "health" {
  # checkov:skip=CKV_AWS_59: the liveness probe is public by design and returns no data
  rest_api_id          = aws_api_gateway_rest_api.this.id
  resource_id          = aws_api_gateway_resource.health.id
  http_method          = "GET"
  authorization        = "NONE"
  request_validator_id = aws_api_gateway_request_validator.params.id
}

resource "aws_api_gateway_integration" "health" {
  rest_api_id             = aws_api_gateway_rest_api.this.id
  resource_id             = aws_api_gateway_resource.health.id
  http_method             = aws_api_gateway_method.health.http_method
  type                    = "AWS_PROXY"
  integration_http_method = "POST"
  uri                     = var.function_alias_invoke_arn
}

# --- /v1/users/{user_id}/{proxy+} --------------------------------------------------------

resource "aws_api_gateway_resource" "v1" {
  rest_api_id = aws_api_gateway_rest_api.this.id
  parent_id   = aws_api_gateway_rest_api.this.root_resource_id
  path_part   = "v1"
}

resource "aws_api_gateway_resource" "users" {
  rest_api_id = aws_api_gateway_rest_api.this.id
  parent_id   = aws_api_gateway_resource.v1.id
  path_part   = "users"
}

resource "aws_api_gateway_resource" "user" {
  rest_api_id = aws_api_gateway_rest_api.this.id
  parent_id   = aws_api_gateway_resource.users.id
  path_part   = "{user_id}"
}

resource "aws_api_gateway_resource" "user_proxy" {
  rest_api_id = aws_api_gateway_rest_api.this.id
  parent_id   = aws_api_gateway_resource.user.id
  path_part   = "{proxy+}"
}

resource "aws_api_gateway_method" "user_proxy" {
  rest_api_id          = aws_api_gateway_rest_api.this.id
  resource_id          = aws_api_gateway_resource.user_proxy.id
  http_method          = "ANY"
  authorization        = "COGNITO_USER_POOLS"
  authorizer_id        = aws_api_gateway_authorizer.cognito.id
  request_validator_id = aws_api_gateway_request_validator.params.id
  request_parameters = {
    "method.request.path.user_id" = true
    "method.request.path.proxy"   = true
  }
}

resource "aws_api_gateway_integration" "user_proxy" {
  rest_api_id             = aws_api_gateway_rest_api.this.id
  resource_id             = aws_api_gateway_resource.user_proxy.id
  http_method             = aws_api_gateway_method.user_proxy.http_method
  type                    = "AWS_PROXY"
  integration_http_method = "POST"
  uri                     = var.function_alias_invoke_arn
}

resource "aws_lambda_permission" "api" {
  statement_id  = "AllowApiGateway"
  action        = "lambda:InvokeFunction"
  function_name = var.function_name
  qualifier     = var.function_alias
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_api_gateway_rest_api.this.execution_arn}/*/*"
}

# --- POST /v1/ingest -> SQS --------------------------------------------------------------

resource "aws_api_gateway_resource" "ingest" {
  rest_api_id = aws_api_gateway_rest_api.this.id
  parent_id   = aws_api_gateway_resource.v1.id
  path_part   = "ingest"
}

resource "aws_api_gateway_model" "backfill" {
  rest_api_id  = aws_api_gateway_rest_api.this.id
  name         = "Backfill"
  description  = "One existing object to ingest"
  content_type = "application/json"
  schema = jsonencode({
    "$schema"            = "http://json-schema.org/draft-04/schema#"
    type                 = "object"
    required             = ["bucket", "key"]
    additionalProperties = false
    properties = {
      bucket = { type = "string", minLength = 3, maxLength = 63 }
      key    = { type = "string", minLength = 1, maxLength = 1024 }
    }
  })
}

resource "aws_api_gateway_request_validator" "body" {
  rest_api_id           = aws_api_gateway_rest_api.this.id
  name                  = "body"
  validate_request_body = true
}

resource "aws_api_gateway_method" "ingest" {
  rest_api_id          = aws_api_gateway_rest_api.this.id
  resource_id          = aws_api_gateway_resource.ingest.id
  http_method          = "POST"
  authorization        = "AWS_IAM"
  request_validator_id = aws_api_gateway_request_validator.body.id
  request_models       = { "application/json" = aws_api_gateway_model.backfill.name }
}

data "aws_iam_policy_document" "apigateway_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["apigateway.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "send_to_queue" {
  statement {
    sid       = "SendBackfillMessages"
    actions   = ["sqs:SendMessage"]
    resources = [var.queue_arn]
  }
  dynamic "statement" {
    for_each = var.queue_kms_key_arn == null ? [] : [var.queue_kms_key_arn]
    content {
      sid       = "EncryptForTheQueue"
      actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
      resources = [statement.value]
    }
  }
}

resource "aws_iam_role" "send_to_queue" {
  name               = "${var.name}-ingest-sqs"
  assume_role_policy = data.aws_iam_policy_document.apigateway_assume.json
  tags               = var.tags
}

resource "aws_iam_role_policy" "send_to_queue" {
  name   = "send-backfill"
  role   = aws_iam_role.send_to_queue.id
  policy = data.aws_iam_policy_document.send_to_queue.json
}

resource "aws_api_gateway_integration" "ingest" {
  rest_api_id             = aws_api_gateway_rest_api.this.id
  resource_id             = aws_api_gateway_resource.ingest.id
  http_method             = aws_api_gateway_method.ingest.http_method
  type                    = "AWS"
  integration_http_method = "POST"
  uri                     = "arn:${data.aws_partition.current.partition}:apigateway:${data.aws_region.current.name}:sqs:path/${local.account_id}/${var.queue_name}"
  credentials             = aws_iam_role.send_to_queue.arn
  passthrough_behavior    = "NEVER"
  request_parameters = {
    "integration.request.header.Content-Type" = "'application/x-www-form-urlencoded'"
  }
  request_templates = {
    "application/json" = "Action=SendMessage&MessageBody=$util.urlEncode($input.body)"
  }
}

resource "aws_api_gateway_method_response" "ingest" {
  rest_api_id = aws_api_gateway_rest_api.this.id
  resource_id = aws_api_gateway_resource.ingest.id
  http_method = aws_api_gateway_method.ingest.http_method
  status_code = "202"
}

resource "aws_api_gateway_integration_response" "ingest" {
  rest_api_id       = aws_api_gateway_rest_api.this.id
  resource_id       = aws_api_gateway_resource.ingest.id
  http_method       = aws_api_gateway_method.ingest.http_method
  status_code       = aws_api_gateway_method_response.ingest.status_code
  selection_pattern = "2\\d{2}"
  response_templates = {
    "application/json" = "{\"queued\": true}"
  }
  depends_on = [aws_api_gateway_integration.ingest]
}

# --- deployment, stage, logs ---------------------------------------------------------------

resource "aws_api_gateway_deployment" "this" {
  rest_api_id = aws_api_gateway_rest_api.this.id
  triggers = {
    redeployment = sha1(jsonencode([
      aws_api_gateway_resource.health, aws_api_gateway_method.health,
      aws_api_gateway_integration.health, aws_api_gateway_resource.user_proxy,
      aws_api_gateway_method.user_proxy, aws_api_gateway_integration.user_proxy,
      aws_api_gateway_resource.ingest, aws_api_gateway_method.ingest,
      aws_api_gateway_integration.ingest, aws_api_gateway_integration_response.ingest,
      aws_api_gateway_authorizer.cognito,
    ]))
  }
  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_cloudwatch_log_group" "access" {
  # checkov:skip=CKV_AWS_158: CloudWatch encrypts log data at rest by default; a CMK is an account choice
  name              = "/aws/apigateway/${var.name}/access"
  retention_in_days = var.log_retention_days
  tags              = var.tags
}

data "aws_iam_policy_document" "account_logging" {
  statement {
    actions = ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:DescribeLogGroups",
    "logs:DescribeLogStreams", "logs:PutLogEvents", "logs:GetLogEvents", "logs:FilterLogEvents"]
    resources = ["arn:${data.aws_partition.current.partition}:logs:${data.aws_region.current.name}:${local.account_id}:log-group:*"]
  }
}

resource "aws_iam_role" "account_logging" {
  count              = var.manage_account_logging_role ? 1 : 0
  name               = "${var.name}-apigateway-logs"
  assume_role_policy = data.aws_iam_policy_document.apigateway_assume.json
  tags               = var.tags
}

resource "aws_iam_role_policy" "account_logging" {
  count  = var.manage_account_logging_role ? 1 : 0
  name   = "cloudwatch-logs"
  role   = aws_iam_role.account_logging[0].id
  policy = data.aws_iam_policy_document.account_logging.json
}

resource "aws_api_gateway_account" "this" {
  count               = var.manage_account_logging_role ? 1 : 0
  cloudwatch_role_arn = aws_iam_role.account_logging[0].arn
}

resource "aws_api_gateway_stage" "this" {
  # checkov:skip=CKV_AWS_120: responses are per user and per threshold; caching them would leak or go stale
  # checkov:skip=CKV2_AWS_29: attach a WAFv2 ACL with web_acl_arn (an account-level choice)
  # checkov:skip=CKV2_AWS_77: no WAF ACL by default; the one attached with web_acl_arn carries its rules
  # checkov:skip=CKV2_AWS_51: mobile clients authenticate with Cognito tokens, not client certificates
  rest_api_id          = aws_api_gateway_rest_api.this.id
  deployment_id        = aws_api_gateway_deployment.this.id
  stage_name           = var.stage_name
  xray_tracing_enabled = true
  access_log_settings {
    destination_arn = aws_cloudwatch_log_group.access.arn
    format = jsonencode({
      requestId = "$context.requestId", ip = "$context.identity.sourceIp",
      caller    = "$context.authorizer.claims.sub", time = "$context.requestTime",
      method    = "$context.httpMethod", path = "$context.path", status = "$context.status",
      latencyMs = "$context.responseLatency", integrationMs = "$context.integrationLatency"
    })
  }
  depends_on = [aws_api_gateway_account.this]
  tags       = var.tags
}

resource "aws_api_gateway_method_settings" "all" {
  # checkov:skip=CKV_AWS_225: no caching, see the stage
  rest_api_id = aws_api_gateway_rest_api.this.id
  stage_name  = aws_api_gateway_stage.this.stage_name
  method_path = "*/*"
  settings {
    metrics_enabled        = true
    logging_level          = "INFO"
    data_trace_enabled     = false
    throttling_rate_limit  = var.throttling_rate_limit
    throttling_burst_limit = var.throttling_burst_limit
  }
}

resource "aws_wafv2_web_acl_association" "this" {
  count        = var.web_acl_arn == null ? 0 : 1
  resource_arn = aws_api_gateway_stage.this.arn
  web_acl_arn  = var.web_acl_arn
}
