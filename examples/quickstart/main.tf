# The quickstart that `make demo` applies: an auth app and three keys.
terraform {
  required_providers {
    keymint = {
      source  = "keymint/keymint"
      version = "0.1.0"
    }
    time = {
      source  = "hashicorp/time"
      version = "0.14.2"
    }
  }
}

# Configured by KEYMINT_ENDPOINT and KEYMINT_TOKEN.
provider "keymint" {}

resource "keymint_auth_app" "acme" {
  slug       = "acme"
  name       = "Acme public API"
  scopes     = ["read:data", "write:data"]
  key_prefix = "acme_live"
  rate_limit = { requests = 1000, window = "1m" }
}

resource "keymint_api_key" "reader" {
  app    = keymint_auth_app.acme.slug
  name   = "dashboard (read-only)"
  scopes = ["read:data"]
}

resource "keymint_api_key" "writer" {
  app       = keymint_auth_app.acme.slug
  name      = "ingest (read-write, vault-1 only)"
  scopes    = ["read:data", "write:data"]
  resources = ["vault-1"]

  lifecycle {
    create_before_destroy = true
  }
}

# time_rotating is re-created when it rotates, so its id changes; feeding the
# id into rotation_triggers rotates the key in place (same id, new secret).
resource "time_rotating" "monthly" {
  rotation_days = 30
}

resource "keymint_api_key" "rotated" {
  app                   = keymint_auth_app.acme.slug
  name                  = "partner (rotated monthly)"
  scopes                = ["read:data"]
  rotation_triggers     = { rotation = time_rotating.monthly.id }
  rotation_grace_period = "24h"
}

output "reader_start" { value = keymint_api_key.reader.start }
output "writer_start" { value = keymint_api_key.writer.start }
output "rotated_start" { value = keymint_api_key.rotated.start }

output "reader_secret" {
  value     = keymint_api_key.reader.secret
  sensitive = true
}
output "writer_secret" {
  value     = keymint_api_key.writer.secret
  sensitive = true
}
output "rotated_secret" {
  value     = keymint_api_key.rotated.secret
  sensitive = true
}
