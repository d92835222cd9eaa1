service "myapp" {
  version = "1.0.0"
  artifact {
    source = "ftp://files.example.com/myapp-1.0.tar.gz"
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
