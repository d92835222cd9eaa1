service "myapp" {
  version = "1.0.0"
  vm {
    instal_dir    = "/opt/myapp"
    start_command = "sh current/bin/start.sh"
  }
}

environment "dev" {
  vm_hosts { hosts = ["dev-vm-01.internal"] }
}

deployment "myapp-dev" {
  service     = service.myapp
  environment = environment.dev
}
