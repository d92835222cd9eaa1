variable "version" {
  type    = string
  default = "1.0.0"
}

service "myapp" {
  version = var.verison
  vm { install_dir = "/opt/myapp" }
}

environment "dev" {
  vm_hosts { hosts = ["dev-vm-01.internal"] }
}

deployment "myapp-dev" {
  service     = service.myapp
  environment = environment.dev
}
