# Who may call /v1/users/...: tokens of a Cognito user pool (created here, or yours).

resource "aws_cognito_user_pool" "this" {
  count                    = var.user_pool_arn == null ? 1 : 0
  name                     = var.name
  username_attributes      = ["email"]
  auto_verified_attributes = ["email"]
  mfa_configuration        = "OPTIONAL"
  # Deleting the pool deletes every user's account: AWS refuses it while this is ACTIVE.
  deletion_protection = var.deletion_protection ? "ACTIVE" : "INACTIVE"
  software_token_mfa_configuration {
    enabled = true
  }
  password_policy {
    minimum_length    = 12
    require_lowercase = true
    require_uppercase = true
    require_numbers   = true
    require_symbols   = false
  }
  tags = var.tags
}

resource "aws_cognito_user_pool_client" "mobile" {
  count                         = var.user_pool_arn == null ? 1 : 0
  name                          = "${var.name}-mobile"
  user_pool_id                  = aws_cognito_user_pool.this[0].id
  generate_secret               = false
  explicit_auth_flows           = ["ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]
  prevent_user_existence_errors = "ENABLED"
  # The API refuses a token valid for longer than a day (PHOTOCLUSTER_JWT_MAX_LIFETIME_S);
  # an app keeps its user signed in with the refresh token.
  id_token_validity      = 60
  access_token_validity  = 60
  refresh_token_validity = 30
  token_validity_units {
    id_token      = "minutes"
    access_token  = "minutes"
    refresh_token = "days"
  }
}

locals {
  user_pool_arn = var.user_pool_arn == null ? aws_cognito_user_pool.this[0].arn : var.user_pool_arn
  # arn:aws:cognito-idp:REGION:ACCOUNT:userpool/POOL_ID -> the issuer of its tokens
  token_issuer = format(
    "https://cognito-idp.%s.amazonaws.com/%s",
    split(":", local.user_pool_arn)[3],
    split("/", local.user_pool_arn)[1],
  )
  app_client_ids = var.user_pool_arn == null ? [aws_cognito_user_pool_client.mobile[0].id] : var.user_pool_client_ids
}

resource "aws_api_gateway_authorizer" "cognito" {
  name            = "cognito"
  rest_api_id     = aws_api_gateway_rest_api.this.id
  type            = "COGNITO_USER_POOLS"
  provider_arns   = [local.user_pool_arn]
  identity_source = "method.request.header.Authorization"
}
