# The part of the deployment an emulator supports, applied to moto or LocalStack on loopback:
# the uploads bucket and its notification, the ingest queue and DLQ, a VPC, the EFS file
# system with its access point. (Provisioned concurrency, Application Auto Scaling,
# SageMaker serving and API Gateway invocation are not emulated; the root module's plan
# covers them.) The same modules as production, with production's defaults.

provider "aws" {
  region                      = var.region
  access_key                  = "test"
  secret_key                  = "test"
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
  s3_use_path_style           = true
  # Retries for a dropped loopback connection (seen on DescribeNetworkInterfaces during
  # destroy). The root module keeps 1: there, Application Auto Scaling's 500s under moto
  # would be retried for minutes; nothing here calls an API moto lacks.
  max_retries = 3
  endpoints {
    cloudwatch     = var.endpoint
    cloudwatchlogs = var.endpoint
    ec2            = var.endpoint
    efs            = var.endpoint
    iam            = var.endpoint
    s3             = var.endpoint
    sqs            = var.endpoint
    sts            = var.endpoint
  }
}

locals {
  bucket_name = "${var.name}-uploads"
}

module "queue" {
  source                     = "../../modules/queue"
  name                       = "${var.name}-ingest"
  delay_seconds              = var.queue_delay_seconds
  consumer_timeout_seconds   = var.ingest_timeout_seconds
  visibility_timeout_seconds = 6 * var.ingest_timeout_seconds
  max_receive_count          = var.queue_max_receive_count
  source_bucket_arn          = "arn:aws:s3:::${local.bucket_name}"
  restrict_dlq_sources       = false # moto never reports RedriveAllowPolicy: the provider would wait forever
}

module "storage" {
  source        = "../../modules/storage"
  bucket_name   = local.bucket_name
  queue_arn     = module.queue.queue_arn
  force_destroy = true
  depends_on    = [module.queue]
}

module "network" {
  source             = "../../modules/network"
  name               = var.name
  availability_zones = ["${var.region}a", "${var.region}b"]
}

module "efs" {
  source               = "../../modules/efs"
  name                 = "${var.name}-embeddings"
  subnet_ids           = module.network.subnet_ids
  security_group_id    = module.network.efs_security_group_id
  enable_backup_policy = false # moto answers PutBackupPolicy with a 500
  enable_tls_policy    = false # and DeleteFileSystemPolicy too
}
