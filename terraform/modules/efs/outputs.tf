output "file_system_id" {
  description = "ID of the file system."
  value       = aws_efs_file_system.this.id
}

output "file_system_arn" {
  description = "ARN of the file system."
  value       = aws_efs_file_system.this.arn
}

output "access_point_arn" {
  description = "ARN of the access point the Lambdas mount."
  value       = aws_efs_access_point.this.arn
}

output "access_point_id" {
  description = "ID of the access point."
  value       = aws_efs_access_point.this.id
}

output "mount_target_ids" {
  description = "Mount targets; Lambdas must be created after them."
  value       = aws_efs_mount_target.this[*].id
}
