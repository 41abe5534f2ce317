# A management credential for this run only: it can manage apps, nothing else,
# and is revoked when the run ends. It is in no state and no plan file.
ephemeral "keymint_api_key" "run" {
  app    = "keymint"
  name   = "terraform run"
  scopes = ["apps:read", "apps:write"]
  ttl    = "30m"
}

provider "keymint" {
  alias = "narrow"
  token = ephemeral.keymint_api_key.run.secret
}

resource "keymint_auth_app" "shop" {
  provider   = keymint.narrow
  slug       = "shop"
  name       = "Shop API"
  scopes     = ["orders:read"]
  key_prefix = "shop_live"
}
