# The public REST API: the API itself, its routes to the cluster-api function, the
# deployment and the stage. Concerns in their own files: authorizer.tf (Cognito),
# ingest_route.tf (POST /v1/ingest -> SQS), logging.tf (access logs, the account's role).
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

# API Gateway assumes the roles of ingest_route.tf (send to SQS) and logging.tf (write logs).
data "aws_iam_policy_document" "apigateway_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["apigateway.amazonaws.com"]
    }
  }
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

# --- /v1/users/{user_id}/{proxy+} -------------------------------------------------------

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

# --- deployment and stage ---------------------------------------------------------------

resource "aws_api_gateway_deployment" "this" {
  rest_api_id = aws_api_gateway_rest_api.this.id
  triggers = {
    redeployment = sha1(jsonencode([
      aws_api_gateway_resource.health, aws_api_gateway_method.health,
      aws_api_gateway_integration.health, aws_api_gateway_resource.user_proxy,
      aws_api_gateway_method.user_proxy, aws_api_gateway_integration.user_proxy,
      aws_api_gateway_resource.ingest, aws_api_gateway_method.ingest,
      aws_api_gateway_integration.ingest, aws_api_gateway_integration_response.ingest,
      aws_api_gateway_authorizer.cognito, aws_api_gateway_gateway_response.errors,
      aws_api_gateway_method.user_proxy_preflight, aws_api_gateway_integration.user_proxy_preflight,
    ]))
  }
  lifecycle {
    create_before_destroy = true
  }
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

# --- API Gateway's own answers, in the API's error format ---------------------------------
# Requests the authorizer or the throttle turns away never reach the function; their bodies
# take the same shape as the function's: {"error": {"code", "message"}}.

locals {
  gateway_errors = {
    UNAUTHORIZED  = { status = "401", code = "unauthorized" }
    ACCESS_DENIED = { status = "403", code = "forbidden" }
    THROTTLED     = { status = "429", code = "throttled" }
    DEFAULT_4XX   = { status = null, code = "gateway_rejected" }
    DEFAULT_5XX   = { status = null, code = "gateway_error" }
  }
}

resource "aws_api_gateway_gateway_response" "errors" {
  for_each      = local.gateway_errors
  rest_api_id   = aws_api_gateway_rest_api.this.id
  response_type = each.key
  status_code   = each.value.status
  response_templates = {
    "application/json" = "{\"error\": {\"code\": \"${each.value.code}\", \"message\": $context.error.messageString}}"
  }
  response_parameters = merge(
    each.key == "UNAUTHORIZED" ? { "gatewayresponse.header.WWW-Authenticate" = "'Bearer'" } : {},
    local.gateway_cors,
  )
}

locals {
  # API Gateway's own refusals (401, 403, 429, 5xx) never reach the app's CORS middleware:
  # without these headers a browser app sees a network error instead of the answer. One
  # origin is named; with several, the request's Origin is echoed (Vary: Origin).
  gateway_cors = length(var.cors_origins) == 0 ? {} : {
    "gatewayresponse.header.Access-Control-Allow-Origin" = (
      length(var.cors_origins) == 1 ? "'${var.cors_origins[0]}'" : "method.request.header.Origin"
    )
    "gatewayresponse.header.Access-Control-Expose-Headers" = "'ETag,Server-Timing,Location'"
    "gatewayresponse.header.Vary"                          = "'Origin'"
  }
}

# --- CORS preflight (only with cors_origins) ---------------------------------------------
# A browser's preflight carries no token: it goes to the function unauthenticated, where the
# CORS middleware answers it (204 for a listed origin) before any route runs.

resource "aws_api_gateway_method" "user_proxy_preflight" {
  # checkov:skip=CKV_AWS_59: CORS preflights carry no credentials by design; the app answers them without reading data
  count                = length(var.cors_origins) > 0 ? 1 : 0
  rest_api_id          = aws_api_gateway_rest_api.this.id
  resource_id          = aws_api_gateway_resource.user_proxy.id
  http_method          = "OPTIONS"
  authorization        = "NONE"
  request_validator_id = aws_api_gateway_request_validator.params.id
}

resource "aws_api_gateway_integration" "user_proxy_preflight" {
  count                   = length(var.cors_origins) > 0 ? 1 : 0
  rest_api_id             = aws_api_gateway_rest_api.this.id
  resource_id             = aws_api_gateway_resource.user_proxy.id
  http_method             = aws_api_gateway_method.user_proxy_preflight[0].http_method
  type                    = "AWS_PROXY"
  integration_http_method = "POST"
  uri                     = var.function_alias_invoke_arn
}
