# One secret, made in this run, goes to keymint and to the secret store, and
# into neither state: both take it as a write-only argument.
ephemeral "keymint_secret" "partner" {
  key_prefix = keymint_auth_app.shop.key_prefix
}

resource "keymint_api_key" "partner" {
  app               = keymint_auth_app.shop.slug
  name              = "partner integration"
  scopes            = ["orders:read"]
  secret_wo         = ephemeral.keymint_secret.partner.value
  secret_wo_version = 1 # bump to rotate to a new secret
}

resource "aws_secretsmanager_secret_version" "partner" {
  secret_id                = aws_secretsmanager_secret.partner.id
  secret_string_wo         = ephemeral.keymint_secret.partner.value
  secret_string_wo_version = 1 # bump together with secret_wo_version
}
