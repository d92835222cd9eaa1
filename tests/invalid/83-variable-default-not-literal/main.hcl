variable "major" {
  type    = string
  default = "1"
}

variable "version" {
  type    = string
  default = "${var.major}.0.0"
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
