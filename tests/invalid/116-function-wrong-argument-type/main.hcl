service "myapp" {
  version = "1.0.0"
  vm {
    install_dir = "/opt/myapp"
    systemd_unit "myapp.service" {
      exec_start  = "/opt/myapp/current/bin/start.sh"
      environment = { WORKERS = join(",", range("four")) }
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
