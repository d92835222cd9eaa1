locals {
  ports = { http = 80, https = 443 }
  admin = lookup(local.ports, "admin")
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
