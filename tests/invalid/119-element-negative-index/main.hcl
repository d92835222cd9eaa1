locals {
  zones = ["a", "b", "c"]
  last  = element(local.zones, -1)
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
