# API keys are imported by id. The secret is not imported (the server keeps
# only its hash): it stays null in state until the key is next rotated.
terraform import keymint_api_key.dashboard key_06h0ea66bk0dp15n7tdx8pvt
