output "api_url" {
  description = "Invoke URL of the stage; append /v1/users/{user_id}/clusters."
  value       = aws_api_gateway_stage.this.invoke_url
}

output "rest_api_id" {
  description = "ID of the REST API."
  value       = aws_api_gateway_rest_api.this.id
}

output "execution_arn" {
  description = "Execution ARN of the REST API."
  value       = aws_api_gateway_rest_api.this.execution_arn
}

output "user_pool_id" {
  description = "Cognito user pool created here (null when an existing one was given)."
  value       = var.user_pool_arn == null ? aws_cognito_user_pool.this[0].id : null
}

output "user_pool_client_id" {
  description = "App client for the mobile app (no secret)."
  value       = var.user_pool_arn == null ? aws_cognito_user_pool_client.mobile[0].id : null
}

output "token_issuer" {
  description = "Issuer of the tokens the API accepts (the user pool's)."
  value       = local.token_issuer
}

output "app_client_ids" {
  description = "App clients whose tokens the API accepts."
  value       = local.app_client_ids
}
