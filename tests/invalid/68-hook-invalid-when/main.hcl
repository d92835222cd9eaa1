service "myapp" {
  version = "1.0.0"
  vm {
    install_dir = "/opt/myapp"

    hook "drain" {
      when    = "before-stop"
      command = "curl -fsS -X POST localhost:8080/admin/drain"
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
