deployment "myapp-dev" {
  service     = service.myapp
  environment = environment.dev
}
