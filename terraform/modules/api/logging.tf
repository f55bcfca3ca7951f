# Access logs of the stage, and the account-wide role API Gateway writes logs with.

resource "aws_cloudwatch_log_group" "access" {
  # checkov:skip=CKV_AWS_338: retention is var.log_retention_days: a year in the prod example, 30 days by default (cost)
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
  # The role must carry its policy first, or API Gateway refuses it ("does not have
  # required permissions"), now and then, on a first apply.
  depends_on = [aws_iam_role_policy.account_logging]
}
