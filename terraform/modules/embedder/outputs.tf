output "repository_url" {
  description = "ECR repository to push the embedder image to."
  value       = module.repository.url
}

output "repository_arn" {
  description = "ARN of the ECR repository."
  value       = module.repository.arn
}

output "endpoint_name" {
  description = "SageMaker endpoint name (the ingest Lambda's PHOTOCLUSTER_ENDPOINT_NAME)."
  value       = aws_sagemaker_endpoint.this.name
}

output "endpoint_arn" {
  description = "ARN of the endpoint (what the ingest role may invoke)."
  value       = aws_sagemaker_endpoint.this.arn
}
