# Copied from a-deployments.hcl and forgotten.
deployment "myapp-dev" {
  service     = service.myapp
  environment = environment.dev
}
