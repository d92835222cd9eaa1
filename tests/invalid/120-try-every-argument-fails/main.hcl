variable "settings" {
  type    = map
  default = { region = "eu-west-1" }
}

locals {
  zone = try(var.settings.zone, var.settings.default_zone)
}

service "myapp" {
  version = "1.0.0"
  vm {
    install_dir = "/opt/myapp"
  }
}

environment "dev" {
  vm_hosts { hosts = ["dev-vm-01.internal"] }
}

deployment "myapp-dev" {
  service     = service.myapp
  environment = environment.dev
}
