variable "version" {
  type = string
}

service "myapp" {
  version = var.version
  vm { install_dir = "/opt/myapp" }
}

environment "dev" {
  vm_hosts { hosts = ["dev-vm-01.internal", "dev-vm-02.internal"] }
}

deployment "myapp-dev" {
  service     = service.myapp
  environment = environment.dev
}

