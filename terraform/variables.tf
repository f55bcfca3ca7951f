# --- where and what ------------------------------------------------------------------------

variable "project" {
  description = "Project name: first part of every resource name."
  type        = string
  default     = "photocluster"
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}$", var.project))
    error_message = "project must be 2-21 lowercase letters, digits or hyphens."
  }
}

variable "environment" {
  description = "Environment name (prod, staging, ...): second part of every resource name."
  type        = string
  default     = "prod"
  validation {
    condition     = can(regex("^[a-z][a-z0-9]{1,11}$", var.environment))
    error_message = "environment must be 2-12 lowercase letters or digits."
  }
  # The shortest limit a name feeds: SageMaker's endpoint configuration takes a name
  # prefix of at most 37 characters, and it is "<project>-<environment>-embedder-".
  validation {
    condition     = length("${var.project}-${var.environment}") <= 27
    error_message = "project and environment together must be at most 26 characters: \"<project>-<environment>-embedder-\" is the embedder's name prefix, which SageMaker limits to 37."
  }
}

variable "region" {
  description = "AWS region to deploy to."
  type        = string
  # it ends the uploads bucket's name, which S3 limits to 63 characters
  validation {
    condition     = length(var.region) <= 14
    error_message = "region must be an AWS region's name (at most 14 characters)."
  }
}

variable "account_id" {
  description = "The AWS account the stack goes to, for a plan that cannot ask STS (no AWS account: make plan without terraform.tfvars). Null: Terraform asks. It names the uploads bucket, \"<project>-<environment>-uploads-<account_id>-<region>\"."
  type        = string
  default     = null
  validation {
    condition     = var.account_id == null || can(regex("^[0-9]{12}$", var.account_id))
    error_message = "account_id must be an AWS account id: 12 digits."
  }
}

variable "deletion_protection" {
  description = "Protect the stack's data (the uploads, the user pool's accounts) from terraform destroy: the uploads bucket is not emptied and Cognito refuses to delete the pool. make destroy refuses a protected stack unless the operator confirms (CONFIRM=<project>-<environment>), then lifts the protection and destroys. false (the dev example): make destroy empties the bucket, every version included, and removes it all."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Extra tags on every resource."
  type        = map(string)
  default     = {}
}

variable "aws_endpoint_url" {
  description = "An AWS emulator's endpoint (moto, LocalStack) for offline plans; null for AWS."
  type        = string
  default     = null
}

variable "emulator" {
  description = "Applying to moto (make deploy's emulator mode): leave out what it does not implement (provisioned concurrency, the SQS mapping, DLQ redrive-allow, EFS policies)."
  type        = bool
  default     = false
  validation {
    condition     = !var.emulator || var.aws_endpoint_url != null
    error_message = "emulator needs aws_endpoint_url: it is never applied to AWS."
  }
}

# --- images (make deploy builds, pushes and passes these) ------------------------------------

variable "ingest_image_uri" {
  description = "docker/ingest.Dockerfile image (ingest and writer functions)."
  type        = string
}

variable "cluster_api_image_uri" {
  description = "docker/cluster-api.Dockerfile image."
  type        = string
}

variable "embedder_image_uri" {
  description = "docker/embedder.Dockerfile image (weights of model_id baked in)."
  type        = string
}

variable "model_id" {
  description = "Encoder id baked into the embedder image; the writer refuses vectors of any other."
  type        = string
  default     = "facebook/dinov2-base"
}

# --- network -----------------------------------------------------------------------------------

variable "create_vpc" {
  description = "Create a minimal private VPC; false to use vpc_id and subnet_ids."
  type        = bool
  default     = true
}

variable "vpc_id" {
  description = "Existing VPC (create_vpc = false)."
  type        = string
  default     = null
}

variable "subnet_ids" {
  description = "Existing private subnets (create_vpc = false)."
  type        = list(string)
  default     = []
}

variable "route_table_ids" {
  description = "Existing VPC: route tables of subnet_ids, which get an S3 gateway endpoint (the functions reach S3 through it)."
  type        = list(string)
  default     = []
}

variable "s3_prefix_list_id" {
  description = "Existing VPC that already has an S3 gateway endpoint: its prefix list (pl-...), instead of route_table_ids."
  type        = string
  default     = null
}

variable "flow_log_traffic_type" {
  description = "Traffic the created VPC's flow logs record: REJECT (default) or ALL (costs more)."
  type        = string
  default     = "REJECT"
}

variable "efs_performance_mode" {
  description = "maxIO (the design's default: many functions on different users' files) or generalPurpose (lower latency; needed for elastic throughput)."
  type        = string
  default     = "maxIO"
  validation {
    condition     = contains(["maxIO", "generalPurpose"], var.efs_performance_mode)
    error_message = "efs_performance_mode must be maxIO or generalPurpose."
  }
}

variable "efs_throughput_mode" {
  description = "bursting (credits that a small file system soon spends), elastic (pay per use; generalPurpose only) or provisioned."
  type        = string
  default     = "bursting"
  validation {
    condition     = contains(["bursting", "elastic", "provisioned"], var.efs_throughput_mode)
    error_message = "efs_throughput_mode must be bursting, elastic or provisioned."
  }
}

variable "vpc_cidr" {
  description = "CIDR of the created VPC."
  type        = string
  default     = "10.42.0.0/16"
}

variable "availability_zones" {
  description = "AZs for the created subnets (at least two)."
  type        = list(string)
  default     = []
}

# --- ingest ------------------------------------------------------------------------------------

variable "upload_prefix" {
  description = "Key prefix of uploads: uploads/{user_id}/{filename}."
  type        = string
  default     = "uploads/"
}

variable "rejected_upload_days" {
  description = "Days an upload that failed for good (too large, not a decodable image, not a photo) is kept in the bucket; its status keeps saying why."
  type        = number
  default     = 7
}

variable "upload_cors_origins" {
  description = "Web origins whose pages may PUT to presigned upload URLs (browsers need CORS; native apps do not)."
  type        = list(string)
  default     = []
}

variable "api_cors_origins" {
  description = "Web origins whose pages may call the API (PHOTOCLUSTER_CORS_ORIGINS; a preflight route is added). Native apps need none."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for o in var.api_cors_origins : can(regex("^https?://[^/*]+$", o))])
    error_message = "api_cors_origins must be origins such as https://app.example.com (no paths, no wildcards)."
  }
}

variable "upload_url_expiry_seconds" {
  description = "How long a presigned upload URL is valid."
  type        = number
  default     = 900
  validation {
    condition     = var.upload_url_expiry_seconds >= 60 && var.upload_url_expiry_seconds <= 43200
    error_message = "upload_url_expiry_seconds must be between 60 and 43200 (the API role's credentials last up to 12 hours)."
  }
}

variable "queue_delay_seconds" {
  description = "Delivery delay of the ingest queue (smooths bursts into the endpoint)."
  type        = number
  default     = 5
}

variable "queue_max_receive_count" {
  description = "Receives before a message goes to the dead-letter queue."
  type        = number
  default     = 5
}

variable "ingest_timeout_seconds" {
  description = "Ingest function timeout; the queue's visibility timeout is 6x this. It covers a batch that meets a cold embedder: SageMaker gives a serverless container 3 minutes to download its model and answer /ping, and an invocation 1 minute (its InvokeEndpoint client waits 70 s, as AWS advises), then the writer's call (writer_timeout_seconds), then downloading and decoding the batch."
  type        = number
  default     = 300
  validation {
    condition     = var.ingest_timeout_seconds >= 180 + 70 + var.writer_timeout_seconds && var.ingest_timeout_seconds <= 900
    error_message = "ingest_timeout_seconds must be at most 900 (Lambda's limit) and at least 250 + writer_timeout_seconds: a cold serverless embedder may take 180 s to start and 60 s to answer, and the writer's call comes after."
  }
}

variable "ingest_batch_size" {
  description = "Messages per ingest invocation (one endpoint request per batch)."
  type        = number
  default     = 10
  validation {
    condition     = var.ingest_batch_size >= 1 && var.ingest_batch_size <= 10
    error_message = "ingest_batch_size must be 1-10 (SQS standard queue batch limit without a window)."
  }
}

variable "ingest_batching_window_seconds" {
  description = "How long the event source mapping gathers messages into a batch."
  type        = number
  default     = 2
}

variable "ingest_max_concurrency" {
  description = "Most concurrent ingest invocations the event source mapping starts (2-1000)."
  type        = number
  default     = 20
}

variable "enable_event_source_mapping" {
  description = "Connect the queue to the ingest function (off for emulators, where it breaks queues)."
  type        = bool
  default     = true
}

# --- functions ---------------------------------------------------------------------------------

variable "ingest_memory_mb" {
  description = "Ingest memory: 1769 MB = one vCPU for decoding; a quarter of it is a batch's decoding budget (IMAGE_MAX_DECODED_BYTES: 512 MiB of 2048 MB), the rest the interpreter with OpenCV (about 250 MB) and the batch's small pictures."
  type        = number
  default     = 2048
  validation {
    condition     = var.ingest_memory_mb >= 1024
    error_message = "ingest_memory_mb must be at least 1024: a quarter of it is the decoding budget, and a 64-megapixel photo needs about 200 MB to decode."
  }
}

variable "writer_memory_mb" {
  description = "Writer memory: a write maps the user's store file and holds its ids, the graph's edges and one block of products (under 400 MB at the largest library, 100,000 photos of 1,379 dimensions; README, A large library)."
  type        = number
  default     = 1769
}

variable "writer_timeout_seconds" {
  description = "Writer timeout."
  type        = number
  default     = 30
}

variable "api_memory_mb" {
  description = "Cluster API memory: a request at the largest library holds under 200 MB (README, A large library); a quarter is the process's cache."
  type        = number
  default     = 1769
}

variable "api_timeout_seconds" {
  description = "Cluster API timeout (API Gateway gives up after 29 s)."
  type        = number
  default     = 29
}

variable "provisioned_concurrency" {
  description = "Warm instances on each function's live alias, the floor of its autoscaling (0: none, the default; see the example tfvars for prod)."
  type = object({
    ingest      = number
    writer      = number
    cluster_api = number
  })
  default = { ingest = 0, writer = 0, cluster_api = 0 }
}

variable "autoscaling_max" {
  description = "Upper bound of provisioned-concurrency autoscaling per function (those with a floor in provisioned_concurrency). Together at most lambda_concurrency_quota - 100 (Lambda keeps 100 of an account's concurrency unreserved, and provisioned concurrency comes out of the rest); ingest's at most ingest_max_concurrency (the queue mapping never runs more)."
  type = object({
    ingest      = number
    writer      = number
    cluster_api = number
  })
  default = { ingest = 10, writer = 20, cluster_api = 50 }
  validation {
    # only the functions with a floor are autoscaled (the module's target needs one)
    condition     = sum([for f, floor in var.provisioned_concurrency : floor > 0 ? max(floor, var.autoscaling_max[f]) : 0]) <= var.lambda_concurrency_quota - 100
    error_message = "autoscaling_max's three bounds together must be at most lambda_concurrency_quota - 100: Lambda keeps 100 of the account's concurrency unreserved, and autoscaling past the rest fails. Ask for a higher quota (Service Quotas, Lambda, Concurrent executions) and set lambda_concurrency_quota, or lower the bounds."
  }
  validation {
    condition     = var.provisioned_concurrency.ingest == 0 || var.autoscaling_max.ingest <= var.ingest_max_concurrency
    error_message = "autoscaling_max.ingest must be at most ingest_max_concurrency: the queue mapping never runs more ingest invocations, so warm instances beyond it are paid for and idle."
  }
}

variable "lambda_concurrency_quota" {
  description = "The account's Lambda \"Concurrent executions\" quota in this region (Service Quotas; 1,000 is the usual default, new accounts may start lower). The plan checks the autoscaling bounds against it."
  type        = number
  default     = 1000
}

variable "enable_provisioned_concurrency" {
  description = "Provisioned concurrency and its autoscaling (off for emulators that lack them)."
  type        = bool
  default     = true
}

# --- embedder ----------------------------------------------------------------------------------

variable "embedder_memory_mb" {
  description = "SageMaker Serverless memory of the embedder (sets its vCPUs; README, Sizing the embedder)."
  type        = number
  default     = 2048
  validation {
    condition     = contains([1024, 2048, 3072, 4096, 5120, 6144], var.embedder_memory_mb)
    error_message = "embedder_memory_mb must be one of SageMaker Serverless's sizes: 1024, 2048, 3072, 4096, 5120 or 6144."
  }
}

variable "embedder_max_concurrency" {
  description = "Most concurrent embedder invocations (SageMaker: 1-200 an endpoint, and at most the account's serverless concurrency quota)."
  type        = number
  default     = 20
  validation {
    condition     = var.embedder_max_concurrency >= 1 && var.embedder_max_concurrency <= min(200, var.sagemaker_serverless_concurrency_quota)
    error_message = "embedder_max_concurrency must be 1-200 (SageMaker's limit for one endpoint) and at most sagemaker_serverless_concurrency_quota (the account's total across its serverless endpoints)."
  }
}

variable "embedder_provisioned_concurrency" {
  description = "Warm embedder instances, the floor of its autoscaling (0: none, the default). A new image is a new endpoint configuration: UpdateEndpoint sets the endpoint's provisioned concurrency to this floor (what autoscaling had added goes until it scales out again; README, Deploying)."
  type        = number
  default     = 0
  validation {
    condition     = var.embedder_provisioned_concurrency >= 0 && var.embedder_provisioned_concurrency <= var.embedder_max_concurrency
    error_message = "embedder_provisioned_concurrency must be between 0 and embedder_max_concurrency (SageMaker refuses more)."
  }
}

variable "embedder_autoscaling_max" {
  description = "Upper bound of the embedder's provisioned-concurrency autoscaling (with a floor, embedder_provisioned_concurrency > 0): at most embedder_max_concurrency."
  type        = number
  default     = 10
  validation {
    condition     = var.embedder_provisioned_concurrency == 0 || var.embedder_autoscaling_max <= var.embedder_max_concurrency
    error_message = "embedder_autoscaling_max must be at most embedder_max_concurrency: SageMaker refuses provisioned concurrency above an endpoint's maximum, so autoscaling would fail there."
  }
}

variable "sagemaker_serverless_concurrency_quota" {
  description = "The account's \"Maximum total concurrency that can be allocated across all serverless endpoints\" in this region (Service Quotas; AWS documents 200, some new accounts show 10). The plan checks embedder_max_concurrency against it."
  type        = number
  default     = 200
}

# --- API and operations ------------------------------------------------------------------------

variable "user_pool_arn" {
  description = "Existing Cognito user pool of the app's users; null creates one."
  type        = string
  default     = null
}

variable "user_pool_client_ids" {
  description = "With an existing user_pool_arn: its app clients whose tokens the API accepts."
  type        = list(string)
  default     = []
}

variable "api_throttling_rate_limit" {
  description = "Steady-state requests per second across the API."
  type        = number
  default     = 500
}

variable "api_throttling_burst_limit" {
  description = "Burst of requests across the API."
  type        = number
  default     = 1000
}

variable "manage_account_logging_role" {
  description = "Set API Gateway's account-wide CloudWatch role (once per account and region)."
  type        = bool
  default     = true
}

variable "log_retention_days" {
  description = "Retention of every log group (VPC flow logs included)."
  type        = number
  default     = 30
  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a value CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, ...)."
  }
}

variable "alarm_actions" {
  description = "SNS topics notified when uploads land in the dead-letter queue."
  type        = list(string)
  default     = []
}
