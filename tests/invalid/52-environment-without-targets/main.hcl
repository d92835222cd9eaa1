service "myapp" {
  version = "1.0.0"
  vm { install_dir = "/opt/myapp" }
}

environment "dev" {
  description = "Developer sandbox."
  variables   = { LOG_LEVEL = "DEBUG" }
}

deployment "myapp-dev" {
  service     = service.myapp
  environment = environment.dev
}
