# A read-only key for a dashboard.
resource "keymint_api_key" "dashboard" {
  app    = keymint_auth_app.acme.slug
  name   = "dashboard (read-only)"
  scopes = ["read:data"]
  owner  = "analytics-team"
}

# A read-write key confined to one vault, replaced (new id) with no gap when
# its scopes change.
resource "keymint_api_key" "backup" {
  app       = keymint_auth_app.acme.slug
  name      = "nightly backup"
  scopes    = ["read:data", "backup:write"]
  resources = ["vault-1"]
  metadata  = { pipeline = "backup" }

  lifecycle {
    create_before_destroy = true
  }
}

# A key rotated every 30 days: same id, new secret; the previous secret keeps
# working for a day so consumers can pick up the new one.
resource "time_rotating" "monthly" {
  rotation_days = 30
}

resource "keymint_api_key" "partner" {
  app    = keymint_auth_app.acme.slug
  name   = "partner integration"
  scopes = ["read:data"]

  rotation_triggers     = { rotation = time_rotating.monthly.id }
  rotation_grace_period = "24h"
}

# Hand the secret on to a secret store; it never appears in plan output.
output "partner_key" {
  value     = keymint_api_key.partner.secret
  sensitive = true
}
