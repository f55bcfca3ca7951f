# POST /v1/ingest: a backfill message straight into the ingest queue (an SQS service
# integration, IAM-authorised, the body validated against the Backfill model).

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
