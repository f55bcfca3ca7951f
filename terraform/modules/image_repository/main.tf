# An ECR repository for one of the project's images: immutable tags, scanned on push,
# KMS-encrypted, with a lifecycle policy keeping the newest images.

resource "aws_ecr_repository" "this" {
  name                 = var.name
  image_tag_mutability = "IMMUTABLE"
  force_delete         = true # make destroy: the images are rebuilt from their commit
  image_scanning_configuration {
    scan_on_push = true
  }
  encryption_configuration {
    encryption_type = "KMS"
  }
  tags = var.tags
}

resource "aws_ecr_lifecycle_policy" "this" {
  repository = aws_ecr_repository.this.name
  policy = jsonencode({
    rules = [{
      rulePriority = 1
      description  = "keep the newest ${var.image_keep_count} images"
      selection = {
        tagStatus   = "any"
        countType   = "imageCountMoreThan"
        countNumber = var.image_keep_count
      }
      action = { type = "expire" }
    }]
  })
}
