output "api_url" {
  description = "The API's base URL: GET {api_url}/v1/users/{user_id}/clusters."
  value       = module.api.api_url
}

output "bucket_name" {
  description = "Uploads bucket: PUT uploads/{user_id}/{image_id}.jpg."
  value       = module.storage.bucket_name
}

output "queue_url" {
  description = "Ingest queue (photocluster backfill --queue-url)."
  value       = module.queue.queue_url
}

output "dlq_url" {
  description = "Dead-letter queue of uploads that could not be ingested."
  value       = module.queue.dlq_url
}

output "endpoint_name" {
  description = "SageMaker endpoint of the embedder."
  value       = module.embedder.endpoint_name
}

output "repository_urls" {
  description = "ECR repository of each image (ingest, cluster-api, embedder): make deploy pushes there."
  value       = { for image, repository in module.repository : image => repository.url }
}

output "user_pool_id" {
  description = "Cognito user pool (when created here)."
  value       = module.api.user_pool_id
}

output "user_pool_client_id" {
  description = "Cognito app client for the mobile app (when created here)."
  value       = module.api.user_pool_client_id
}

output "file_system_id" {
  description = "EFS file system holding the embeddings."
  value       = module.efs.file_system_id
}
