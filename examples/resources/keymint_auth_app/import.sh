# Auth apps are imported by slug.
terraform import keymint_auth_app.acme acme
