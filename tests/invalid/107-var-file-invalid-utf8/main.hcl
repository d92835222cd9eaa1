variable "greeting" { type = string }

service "myapp" {
  version = "1.0.0"
  vm { install_dir = "/opt/myapp" }
}

deployment "myapp-dev" {
  service     = service.myapp
  environment = environment.dev
}

environment "dev" {
  vm_hosts { hosts = ["dev-vm-01.internal"] }
}
