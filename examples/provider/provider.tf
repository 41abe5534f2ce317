terraform {
  required_providers {
    keymint = {
      source = "keymint/keymint"
    }
  }
}

# endpoint and token default to the KEYMINT_ENDPOINT and KEYMINT_TOKEN
# environment variables; keep the token out of configuration.
provider "keymint" {
  endpoint = "https://keymint.internal.example.com"
}
