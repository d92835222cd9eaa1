service "myapp" {
  version = "1.0.0"
  artifact {
    source = "oci://registry.example.com"
  }
  vm { install_dir = "/opt/myapp" }
}

environment "dev" {
  vm_hosts { hosts = ["dev-vm-01.internal"] }
}

deployment "myapp-dev" {
  service     = service.myapp
  environment = environment.dev
}
