output "bucket_name" {
  description = "Uploads bucket."
  value       = module.storage.bucket_name
}

output "queue_url" {
  description = "Ingest queue."
  value       = module.queue.queue_url
}

output "dlq_url" {
  description = "Dead-letter queue."
  value       = module.queue.dlq_url
}

output "file_system_id" {
  description = "EFS file system."
  value       = module.efs.file_system_id
}

output "access_point_id" {
  description = "EFS access point."
  value       = module.efs.access_point_id
}
