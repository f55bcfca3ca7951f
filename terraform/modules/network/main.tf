# Where the EFS-bound Lambdas (writer, cluster API) run: an existing VPC and subnets, or a
# minimal private VPC. Either way they reach S3 (the API presigns and deletes uploads,
# lists them for thumbnails) through an S3 gateway endpoint: created here on the VPC's
# route tables, or one the VPC already has (its prefix list given).
# Security groups allow exactly two paths: Lambda -> EFS on NFS (2049), Lambda -> S3 (443).

resource "aws_vpc" "this" {
  count                = var.create_vpc ? 1 : 0
  cidr_block           = var.cidr_block
  enable_dns_support   = true
  enable_dns_hostnames = true
  tags                 = merge(var.tags, { Name = var.name })
}

resource "aws_default_security_group" "this" {
  count  = var.create_vpc ? 1 : 0
  vpc_id = aws_vpc.this[0].id
  tags   = merge(var.tags, { Name = "${var.name}-default-closed" })
}

resource "aws_subnet" "private" {
  count             = var.create_vpc ? length(var.availability_zones) : 0
  vpc_id            = aws_vpc.this[0].id
  availability_zone = var.availability_zones[count.index]
  cidr_block        = cidrsubnet(var.cidr_block, 4, count.index)
  tags              = merge(var.tags, { Name = "${var.name}-private-${var.availability_zones[count.index]}" })
}

resource "aws_route_table" "private" {
  count  = var.create_vpc ? 1 : 0
  vpc_id = aws_vpc.this[0].id
  tags   = merge(var.tags, { Name = "${var.name}-private" })
}

resource "aws_route_table_association" "private" {
  count          = var.create_vpc ? length(var.availability_zones) : 0
  subnet_id      = aws_subnet.private[count.index].id
  route_table_id = aws_route_table.private[0].id
}

resource "aws_vpc_endpoint" "s3" {
  count             = var.s3_prefix_list_id == null ? 1 : 0
  vpc_id            = local.vpc_id
  service_name      = "com.amazonaws.${data.aws_region.current.name}.s3"
  vpc_endpoint_type = "Gateway"
  route_table_ids   = var.create_vpc ? [aws_route_table.private[0].id] : var.route_table_ids
  tags              = merge(var.tags, { Name = "${var.name}-s3" })
}

data "aws_region" "current" {}

resource "aws_cloudwatch_log_group" "flow_logs" {
  # checkov:skip=CKV_AWS_338: retention is var.log_retention_days: a year in the prod example, 30 days by default (cost)
  # checkov:skip=CKV_AWS_158: CloudWatch encrypts log data at rest by default; a CMK is an account choice
  count             = var.create_vpc ? 1 : 0
  name              = "/aws/vpc/${var.name}/flow-logs"
  retention_in_days = var.flow_log_retention_days
  tags              = var.tags
}

data "aws_iam_policy_document" "flow_logs_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["vpc-flow-logs.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "flow_logs" {
  count = var.create_vpc ? 1 : 0
  statement {
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
    resources = ["${aws_cloudwatch_log_group.flow_logs[0].arn}:*"]
  }
}

resource "aws_iam_role" "flow_logs" {
  count              = var.create_vpc ? 1 : 0
  name               = "${var.name}-flow-logs"
  assume_role_policy = data.aws_iam_policy_document.flow_logs_assume.json
  tags               = var.tags
}

resource "aws_iam_role_policy" "flow_logs" {
  count  = var.create_vpc ? 1 : 0
  name   = "write-flow-logs"
  role   = aws_iam_role.flow_logs[0].id
  policy = data.aws_iam_policy_document.flow_logs[0].json
}

resource "aws_flow_log" "this" {
  count           = var.create_vpc ? 1 : 0
  vpc_id          = aws_vpc.this[0].id
  traffic_type    = var.flow_log_traffic_type
  log_destination = aws_cloudwatch_log_group.flow_logs[0].arn
  iam_role_arn    = aws_iam_role.flow_logs[0].arn
  tags            = var.tags
}

locals {
  vpc_id     = var.create_vpc ? aws_vpc.this[0].id : var.vpc_id
  subnet_ids = var.create_vpc ? aws_subnet.private[*].id : var.subnet_ids
}

resource "aws_security_group" "lambda" {
  # checkov:skip=CKV2_AWS_5: attached by the lambda_service module (vpc_config), through this module's output
  name        = "${var.name}-lambda"
  description = "Lambdas that mount the embeddings file system"
  vpc_id      = local.vpc_id
  tags        = var.tags
}

resource "aws_security_group" "efs" {
  # checkov:skip=CKV2_AWS_5: attached by the efs module (mount targets), through this module's output
  name        = "${var.name}-efs"
  description = "The embeddings file system: NFS from the Lambdas only"
  vpc_id      = local.vpc_id
  tags        = var.tags
}

resource "aws_vpc_security_group_egress_rule" "lambda_to_efs" {
  security_group_id            = aws_security_group.lambda.id
  description                  = "NFS to the embeddings file system"
  ip_protocol                  = "tcp"
  from_port                    = 2049
  to_port                      = 2049
  referenced_security_group_id = aws_security_group.efs.id
}

resource "aws_vpc_security_group_egress_rule" "lambda_to_s3" {
  security_group_id = aws_security_group.lambda.id
  description       = "HTTPS to S3 through the gateway endpoint (uploads, deletions, thumbnails)"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  prefix_list_id    = coalesce(var.s3_prefix_list_id, one(aws_vpc_endpoint.s3[*].prefix_list_id))
}

resource "aws_vpc_security_group_ingress_rule" "efs_from_lambda" {
  security_group_id            = aws_security_group.efs.id
  description                  = "NFS from the Lambdas"
  ip_protocol                  = "tcp"
  from_port                    = 2049
  to_port                      = 2049
  referenced_security_group_id = aws_security_group.lambda.id
}
