variable "release_token" {
  type      = string
  sensitive = true
  default   = "build-2024-secret-token"
}

service "myapp" {
  version = "1.0.0-${var.release_token}"
  vm { install_dir = "/opt/myapp" }
}

environment "dev" {
  vm_hosts { hosts = ["dev-vm-01.internal"] }
}

deployment "myapp-dev" {
  service     = service.myapp
  environment = environment.dev
}
