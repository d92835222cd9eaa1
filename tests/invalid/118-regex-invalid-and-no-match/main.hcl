locals {
  version_parts = regex("^(\\d+)\\.(\\d+", "1.2.3")
  build_number  = regex("build-(\\d+)", "release-1.2.3")
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
