output "url" {
  description = "Repository URL to push the image to."
  value       = aws_ecr_repository.this.repository_url
}

output "arn" {
  description = "ARN of the repository."
  value       = aws_ecr_repository.this.arn
}
