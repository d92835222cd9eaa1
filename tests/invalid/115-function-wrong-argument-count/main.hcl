locals {
  # substr needs an offset and a length.
  major = substr("1.2.3", 0)
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
