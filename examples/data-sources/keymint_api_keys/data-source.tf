data "keymint_api_keys" "active" {
  app    = "acme"
  status = "active"
}

output "active_key_starts" {
  value = [for k in data.keymint_api_keys.active.keys : k.start]
}
