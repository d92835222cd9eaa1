service "myapp" {
  version = "1.0.0"
  vm {
    install_dir = "/opt/myapp"
    health "http" {
      url     = "http://localhost:8080/health"
      timeout = 10
    }
  }
}

environment "dev" {
  vm_hosts { hosts = ["dev-vm-01.internal", "dev-vm-02.internal"] }
}

deployment "myapp-dev" {
  service     = service.myapp
  environment = environment.dev
}
