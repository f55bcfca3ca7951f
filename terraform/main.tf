# photocluster on AWS: the root only wires the modules together.
#
#   S3 uploads/ --notification--> SQS ingest (+DLQ) --mapping--> Lambda ingest
#   Lambda ingest --InvokeEndpoint--> SageMaker serverless embedder
#   Lambda ingest --Invoke (sync)--> Lambda writer (VPC, EFS) --> one file per user
#   API Gateway /v1/users/{user_id}/... --> Lambda cluster-api (VPC, EFS)
#   API Gateway POST /v1/ingest --> SQS ingest (backfill)

data "aws_partition" "current" {}

data "aws_caller_identity" "current" {
  count = var.account_id == null ? 1 : 0 # a plan with no AWS account names it instead
}

locals {
  name = "${var.project}-${var.environment}"
  tags = merge({ Project = var.project, Environment = var.environment, ManagedBy = "terraform" }, var.tags)
  # S3's bucket names are global: the account and the region make this one the stack's own.
  account_id  = var.account_id != null ? var.account_id : data.aws_caller_identity.current[0].account_id
  bucket_name = "${local.name}-uploads-${local.account_id}-${var.region}"
  bucket_arn  = "arn:${data.aws_partition.current.partition}:s3:::${local.bucket_name}"
  efs_mount   = "/mnt/efs"
  # var.emulator (make deploy's emulator mode, and its test): off, what moto lacks.
  provisioned_concurrency = var.enable_provisioned_concurrency && !var.emulator # 404
  repositories = {
    ingest        = "${local.name}-ingest" # the ingest and writer functions' image
    "cluster-api" = "${local.name}-cluster-api"
    embedder      = "${local.name}-embedder"
  }
  store_root = "${local.efs_mount}/store"
}

# --- images ----------------------------------------------------------------------------------
# One repository per image, here at the root: make deploy creates them first (a targeted
# apply of module.repository), pushes the images, then applies the rest.

module "repository" {
  source   = "./modules/image_repository"
  for_each = local.repositories
  name     = each.value
  tags     = local.tags
}

moved {
  from = module.ingest.module.repository[0]
  to   = module.repository["ingest"]
}

moved {
  from = module.cluster_api.module.repository[0]
  to   = module.repository["cluster-api"]
}

moved {
  from = module.embedder.module.repository
  to   = module.repository["embedder"]
}

module "network" {
  source                  = "./modules/network"
  name                    = local.name
  create_vpc              = var.create_vpc
  vpc_id                  = var.vpc_id
  subnet_ids              = var.subnet_ids
  route_table_ids         = var.route_table_ids
  s3_prefix_list_id       = var.s3_prefix_list_id
  cidr_block              = var.vpc_cidr
  availability_zones      = var.availability_zones
  flow_log_traffic_type   = var.flow_log_traffic_type
  flow_log_retention_days = var.log_retention_days
  tags                    = local.tags
}

module "efs" {
  source               = "./modules/efs"
  name                 = "${local.name}-embeddings"
  subnet_ids           = module.network.subnet_ids
  security_group_id    = module.network.efs_security_group_id
  performance_mode     = var.efs_performance_mode
  throughput_mode      = var.efs_throughput_mode
  enable_backup_policy = !var.emulator # moto answers PutBackupPolicy with a 500
  enable_tls_policy    = !var.emulator # and the file system policy calls too
  tags                 = local.tags
}

module "queue" {
  source                     = "./modules/queue"
  name                       = "${local.name}-ingest"
  delay_seconds              = var.queue_delay_seconds
  consumer_timeout_seconds   = var.ingest_timeout_seconds
  visibility_timeout_seconds = 6 * var.ingest_timeout_seconds
  max_receive_count          = var.queue_max_receive_count
  source_bucket_arn          = local.bucket_arn
  restrict_dlq_sources       = !var.emulator # moto never reports RedriveAllowPolicy
  alarm_actions              = var.alarm_actions
  tags                       = local.tags
}

module "storage" {
  source               = "./modules/storage"
  bucket_name          = local.bucket_name
  upload_prefix        = var.upload_prefix
  cors_allowed_origins = var.upload_cors_origins
  rejected_upload_days = var.rejected_upload_days
  force_destroy        = !var.deletion_protection # destroy removes every object and version
  queue_arn            = module.queue.queue_arn
  tags                 = local.tags
  depends_on           = [module.queue] # S3 checks the queue policy when the notification is set
}

module "embedder" {
  source                      = "./modules/embedder"
  name                        = "${local.name}-embedder"
  repository_arn              = module.repository["embedder"].arn
  image_uri                   = var.embedder_image_uri
  memory_size_mb              = var.embedder_memory_mb
  max_concurrency             = var.embedder_max_concurrency
  provisioned_concurrency     = var.embedder_provisioned_concurrency
  autoscaling_max_provisioned = var.embedder_autoscaling_max
  enable_autoscaling          = local.provisioned_concurrency
  tags                        = local.tags
}

# --- least-privilege permissions of each function -------------------------------------------

data "aws_iam_policy_document" "ingest" {
  statement {
    sid       = "ReadUploads"
    actions   = ["s3:GetObject"]
    resources = ["${local.bucket_arn}/${var.upload_prefix}*"]
  }
  statement {
    # An upload that failed for good is tagged; the bucket's lifecycle rule removes it.
    sid       = "TagRejectedUploads"
    actions   = ["s3:PutObjectTagging", "s3:PutObjectVersionTagging"]
    resources = ["${local.bucket_arn}/${var.upload_prefix}*"]
  }
  statement {
    sid = "ConsumeTheIngestQueue"
    actions = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility",
    "sqs:GetQueueAttributes"]
    resources = [module.queue.queue_arn]
  }
  statement {
    sid       = "ReportBadUploads"
    actions   = ["sqs:SendMessage"]
    resources = [module.queue.dlq_arn]
  }
  statement {
    sid       = "Embed"
    actions   = ["sagemaker:InvokeEndpoint"]
    resources = [module.embedder.endpoint_arn]
  }
  statement {
    sid       = "Store"
    actions   = ["lambda:InvokeFunction"]
    resources = [module.writer.alias_arn]
  }
}

data "aws_iam_policy_document" "writer" {
  statement {
    sid       = "MountTheEmbeddingsReadWrite"
    actions   = ["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"]
    resources = [module.efs.file_system_arn]
    condition {
      test     = "StringEquals"
      variable = "elasticfilesystem:AccessPointArn"
      values   = [module.efs.access_point_arn]
    }
  }
}

data "aws_iam_policy_document" "cluster_api" {
  statement {
    sid       = "MountTheEmbeddings" # write: DELETE /v1/users/{user_id}/images/{image_id}
    actions   = ["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"]
    resources = [module.efs.file_system_arn]
    condition {
      test     = "StringEquals"
      variable = "elasticfilesystem:AccessPointArn"
      values   = [module.efs.access_point_arn]
    }
  }
  statement {
    sid       = "ListUploadsForThumbnails"
    actions   = ["s3:ListBucket"]
    resources = [local.bucket_arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${var.upload_prefix}*"]
    }
  }
  statement {
    sid       = "PresignThumbnails"
    actions   = ["s3:GetObject"]
    resources = ["${local.bucket_arn}/${var.upload_prefix}*"]
  }
  statement {
    # A presigned PUT acts with its signer's rights: the phone may write under the upload
    # prefix only. DELETE /v1/users/{user_id}/images/{image_id} removes the object too.
    sid       = "PresignUploadsAndDeleteThem"
    actions   = ["s3:PutObject", "s3:DeleteObject"]
    resources = ["${local.bucket_arn}/${var.upload_prefix}*"]
  }
}

# --- functions --------------------------------------------------------------------------------

module "writer" {
  source                         = "./modules/lambda_service"
  name                           = "${local.name}-writer"
  image_uri                      = var.ingest_image_uri
  command                        = ["writer.handler"]
  memory_mb                      = var.writer_memory_mb
  timeout_seconds                = var.writer_timeout_seconds
  policy_json                    = data.aws_iam_policy_document.writer.json
  vpc_subnet_ids                 = module.network.subnet_ids
  vpc_security_group_ids         = [module.network.lambda_security_group_id]
  efs                            = { access_point_arn = module.efs.access_point_arn, mount_path = local.efs_mount }
  provisioned_concurrency        = var.provisioned_concurrency.writer
  autoscaling_max                = var.autoscaling_max.writer
  enable_provisioned_concurrency = local.provisioned_concurrency
  log_retention_days             = var.log_retention_days
  environment = {
    PHOTOCLUSTER_STORE_ROOT = local.store_root
    PHOTOCLUSTER_MODEL      = var.model_id
    POWERTOOLS_SERVICE_NAME = "photocluster-writer"
  }
  tags       = local.tags
  depends_on = [module.efs] # mount targets must exist before a function mounts the file system
}

module "ingest" {
  source                         = "./modules/lambda_service"
  name                           = "${local.name}-ingest"
  image_uri                      = var.ingest_image_uri
  command                        = ["handler.handler"]
  memory_mb                      = var.ingest_memory_mb
  timeout_seconds                = var.ingest_timeout_seconds
  policy_json                    = data.aws_iam_policy_document.ingest.json
  provisioned_concurrency        = var.provisioned_concurrency.ingest
  autoscaling_max                = var.autoscaling_max.ingest
  enable_provisioned_concurrency = local.provisioned_concurrency
  log_retention_days             = var.log_retention_days
  environment = {
    PHOTOCLUSTER_ENDPOINT_NAME   = module.embedder.endpoint_name
    PHOTOCLUSTER_WRITER_FUNCTION = module.writer.alias_arn
    PHOTOCLUSTER_DLQ_URL         = module.queue.dlq_url
    PHOTOCLUSTER_UPLOAD_PREFIX   = var.upload_prefix
    PHOTOCLUSTER_MODEL           = var.model_id
    # The last receive of a message: its image is then failed, not pending, in its status.
    PHOTOCLUSTER_QUEUE_MAX_RECEIVE = tostring(var.queue_max_receive_count)
    # A quarter of the function's memory for what a batch decodes at once (512 MiB of 2048
    # MB): ten 7,999 px PNGs peak under 600 MB; the rest holds the interpreter and OpenCV.
    PHOTOCLUSTER_IMAGE_MAX_DECODED_BYTES = tostring(floor(var.ingest_memory_mb / 4) * 1048576)
    POWERTOOLS_SERVICE_NAME              = "photocluster-ingest"
  }
  tags = local.tags
}

module "cluster_api" {
  source                         = "./modules/lambda_service"
  name                           = "${local.name}-cluster-api"
  image_uri                      = var.cluster_api_image_uri
  command                        = ["handler.handler"]
  memory_mb                      = var.api_memory_mb
  timeout_seconds                = var.api_timeout_seconds
  policy_json                    = data.aws_iam_policy_document.cluster_api.json
  vpc_subnet_ids                 = module.network.subnet_ids
  vpc_security_group_ids         = [module.network.lambda_security_group_id]
  efs                            = { access_point_arn = module.efs.access_point_arn, mount_path = local.efs_mount }
  provisioned_concurrency        = var.provisioned_concurrency.cluster_api
  autoscaling_max                = var.autoscaling_max.cluster_api
  enable_provisioned_concurrency = local.provisioned_concurrency
  log_retention_days             = var.log_retention_days
  environment = {
    PHOTOCLUSTER_AUTH_MODE           = "apigateway"
    PHOTOCLUSTER_JWT_ISSUER          = module.api.token_issuer
    PHOTOCLUSTER_JWT_AUDIENCE        = join(",", module.api.app_client_ids)
    PHOTOCLUSTER_STORE_ROOT          = local.store_root
    PHOTOCLUSTER_BUCKET              = local.bucket_name
    PHOTOCLUSTER_UPLOAD_PREFIX       = var.upload_prefix
    PHOTOCLUSTER_UPLOAD_URL_EXPIRY_S = tostring(var.upload_url_expiry_seconds)
    PHOTOCLUSTER_MODEL               = var.model_id
    PHOTOCLUSTER_CORS_ORIGINS        = join(",", var.api_cors_origins)
    # A quarter of the function's memory for what it keeps between requests.
    PHOTOCLUSTER_CACHE_MB   = tostring(floor(var.api_memory_mb / 4))
    POWERTOOLS_SERVICE_NAME = "photocluster-cluster-api"
  }
  tags       = local.tags
  depends_on = [module.efs]
}

resource "aws_lambda_event_source_mapping" "ingest" {
  count                              = var.enable_event_source_mapping && !var.emulator ? 1 : 0
  event_source_arn                   = module.queue.queue_arn
  function_name                      = module.ingest.alias_arn
  batch_size                         = var.ingest_batch_size
  maximum_batching_window_in_seconds = var.ingest_batching_window_seconds
  function_response_types            = ["ReportBatchItemFailures"]
  scaling_config {
    maximum_concurrency = var.ingest_max_concurrency
  }
}

module "api" {
  source                      = "./modules/api"
  name                        = local.name
  function_name               = module.cluster_api.function_name
  function_alias              = module.cluster_api.alias_name
  function_alias_invoke_arn   = module.cluster_api.alias_invoke_arn
  queue_arn                   = module.queue.queue_arn
  queue_name                  = module.queue.queue_name
  user_pool_arn               = var.user_pool_arn
  user_pool_client_ids        = var.user_pool_client_ids
  throttling_rate_limit       = var.api_throttling_rate_limit
  throttling_burst_limit      = var.api_throttling_burst_limit
  manage_account_logging_role = var.manage_account_logging_role
  deletion_protection         = var.deletion_protection
  log_retention_days          = var.log_retention_days
  cors_origins                = var.api_cors_origins
  tags                        = local.tags
}
