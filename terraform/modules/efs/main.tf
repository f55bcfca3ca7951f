# The embeddings file system: one file per user, written under fcntl locks by the writer and
# read (and tombstoned) by the cluster API, both through one access point.
# Performance and throughput modes are the deployment's choice (README, Deploying).

resource "aws_efs_file_system" "this" {
  creation_token                  = var.name
  performance_mode                = var.performance_mode
  throughput_mode                 = var.throughput_mode
  provisioned_throughput_in_mibps = var.throughput_mode == "provisioned" ? var.provisioned_throughput_mibps : null
  encrypted                       = true
  kms_key_id                      = var.kms_key_arn
  tags                            = merge(var.tags, { Name = var.name })
}

resource "aws_efs_backup_policy" "this" {
  count          = var.enable_backup_policy ? 1 : 0
  file_system_id = aws_efs_file_system.this.id
  backup_policy {
    status = "ENABLED"
  }
}

resource "aws_efs_mount_target" "this" {
  count           = length(var.subnet_ids)
  file_system_id  = aws_efs_file_system.this.id
  subnet_id       = var.subnet_ids[count.index]
  security_groups = [var.security_group_id]
}

resource "aws_efs_access_point" "this" {
  file_system_id = aws_efs_file_system.this.id
  posix_user {
    uid = var.posix_uid
    gid = var.posix_gid
  }
  root_directory {
    path = var.root_path
    creation_info {
      owner_uid   = var.posix_uid
      owner_gid   = var.posix_gid
      permissions = "0750"
    }
  }
  tags = merge(var.tags, { Name = "${var.name}-lambda" })
}

data "aws_iam_policy_document" "this" {
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["*"]
    resources = [aws_efs_file_system.this.arn]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_efs_file_system_policy" "this" {
  count          = var.enable_tls_policy ? 1 : 0
  file_system_id = aws_efs_file_system.this.id
  policy         = data.aws_iam_policy_document.this.json
}
