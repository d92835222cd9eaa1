service "myapp" {
  version = "1.0.0"
  artifact {
    source = "https://repo.example.com/myapp.tar.gz"
    sha256 = "abc123"
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
