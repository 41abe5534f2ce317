data "keymint_auth_app" "billing" {
  slug = "billing"
}

output "billing_scopes" {
  value = data.keymint_auth_app.billing.scopes
}
