service "myapp" {
  version = "1.0.0"
  vm {
    install_dir = "/opt/myapp"

    health "http" {
      url     = "http://localhost:8080/health"
      command = "curl -fsS http://localhost:8080/health"
    }
  }
}

environment "dev" {
  vm_hosts { hosts = ["dev-vm-01.internal"] }
}

deployment "myapp-dev" {
  service     = service.myapp
  environment = environment.dev
}
