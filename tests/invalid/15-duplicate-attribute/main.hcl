service "myapp" {
  version = "1.0.0"
  vm {
    install_dir = "/opt/myapp"
    run_as      = "myapp"
    run_as      = "deploy"
  }
}

environment "dev" {
  vm_hosts { hosts = ["dev-vm-01.internal"] }
}

deployment "myapp-dev" {
  service     = service.myapp
  environment = environment.dev
}
