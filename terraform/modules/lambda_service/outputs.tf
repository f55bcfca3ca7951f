output "function_name" {
  description = "Name of the function."
  value       = aws_lambda_function.this.function_name
}

output "function_arn" {
  description = "ARN of the function (unqualified)."
  value       = aws_lambda_function.this.arn
}

output "alias_arn" {
  description = "ARN of the live alias: what callers invoke."
  value       = aws_lambda_alias.live.arn
}

output "alias_name" {
  description = "Name of the live alias."
  value       = aws_lambda_alias.live.name
}

output "alias_invoke_arn" {
  description = "Invoke ARN of the live alias, for API Gateway integrations."
  value       = aws_lambda_alias.live.invoke_arn
}

output "role_arn" {
  description = "ARN of the function's role."
  value       = aws_iam_role.this.arn
}

output "log_group_name" {
  description = "The function's log group."
  value       = aws_cloudwatch_log_group.this.name
}
