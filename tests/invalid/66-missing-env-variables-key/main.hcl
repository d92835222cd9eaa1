service "myapp" {
  version = "1.0.0"
  vm {
    install_dir = "/opt/myapp"
    systemd_unit "myapp.service" {
      exec_start  = "/opt/myapp/current/bin/start.sh"
      environment = { DB_HOST = env.variables.DB_HOST }
    }
  }
}

environment "dev" {
  variables = { DB_HOST = "dev-db.internal" }
  vm_hosts { hosts = ["dev-vm-01.internal"] }
}

environment "qa" {
  variables = { DB_HOTS = "qa-db.internal" }
  vm_hosts { hosts = ["qa-vm-01.internal"] }
}

deployment "myapp-dev" {
  service     = service.myapp
  environment = environment.dev
}

deployment "myapp-qa" {
  service     = service.myapp
  environment = environment.qa
}
