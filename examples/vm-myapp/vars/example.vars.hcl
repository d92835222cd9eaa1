# Example input values, like a terraform.tfvars file:
#   slipway plan examples/vm-myapp -var-file examples/vm-myapp/vars/example.vars.hcl
#
# It lives in vars/ because every *.hcl file directly in the configuration
# directory is read as configuration.

version         = "2.4.1"
artifact_sha256 = "084c5d48f50950785ca7c133bfc521d377a3fb36348b7e0275662db2d94a16d6"

# Fake. In real use keep secrets out of var files and pass them from a secret
# store, e.g. -var "db_password=$(vault kv get -field=password secret/myapp/db)"
# (SLIPWAY_VAR_db_password works too, but any var file that sets db_password
# overrides the environment).
db_password = "example-not-a-real-password"
