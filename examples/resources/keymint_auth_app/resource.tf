resource "keymint_auth_app" "acme" {
  slug        = "acme"
  name        = "Acme public API"
  description = "Keys for customers of the Acme API"
  scopes      = ["read:data", "write:data", "backup:write"]
  key_prefix  = "acme_live"

  rate_limit = {
    requests = 1000
    window   = "1m"
  }
}
