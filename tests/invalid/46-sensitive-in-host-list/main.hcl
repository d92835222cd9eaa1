variable "db_password" {
  type      = string
  sensitive = true
  default   = "correct-horse-battery-staple"
}

locals {
  hosts = ["dev-vm-01.internal", "dev-${var.db_password}.internal"]
}

service "myapp" {
  version = "1.0.0"
  vm { install_dir = "/opt/myapp" }
}

environment "dev" {
  vm_hosts {
    hosts = local.hosts
  }
}

deployment "myapp-dev" {
  service     = service.myapp
  environment = environment.dev
}
