output "vpc_id" {
  description = "The VPC the EFS-bound Lambdas run in."
  value       = local.vpc_id
}

output "subnet_ids" {
  description = "Private subnets for the Lambdas and the EFS mount targets."
  value       = local.subnet_ids
}

output "lambda_security_group_id" {
  description = "Security group of the EFS-bound Lambdas."
  value       = aws_security_group.lambda.id
}

output "efs_security_group_id" {
  description = "Security group of the EFS mount targets."
  value       = aws_security_group.efs.id
}
