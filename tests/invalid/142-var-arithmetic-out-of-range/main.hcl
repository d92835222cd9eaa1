variable "replicas" {
  type = number
}

service "myapp" {
  version = "1.0.0"
  vm {
    install_dir = "/opt/myapp/${var.replicas}"
  }
}

environment "dev" {
  vm_hosts { hosts = ["dev-vm-01.internal"] }
}

deployment "myapp-dev" {
  service     = service.myapp
  environment = environment.dev
}
