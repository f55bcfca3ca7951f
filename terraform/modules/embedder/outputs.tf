output "endpoint_name" {
  description = "SageMaker endpoint name (the ingest Lambda's PHOTOCLUSTER_ENDPOINT_NAME)."
  value       = aws_sagemaker_endpoint.this.name
}

output "endpoint_arn" {
  description = "ARN of the endpoint (what the ingest role may invoke)."
  value       = aws_sagemaker_endpoint.this.arn
}
