output "queue_arn" {
  description = "ARN of the ingest queue."
  value       = aws_sqs_queue.ingest.arn
}

output "queue_url" {
  description = "URL of the ingest queue."
  value       = aws_sqs_queue.ingest.id
}

output "queue_name" {
  description = "Name of the ingest queue."
  value       = aws_sqs_queue.ingest.name
}

output "dlq_arn" {
  description = "ARN of the dead-letter queue."
  value       = aws_sqs_queue.dlq.arn
}

output "dlq_url" {
  description = "URL of the dead-letter queue."
  value       = aws_sqs_queue.dlq.id
}
