service "myapp" {
  version = "1.0.0"
  vm {
    install_dir = "/opt/myapp"
    systemd_unit "../../etc/cron.d/x" {
      exec_start  = "/opt/myapp/current/bin/start \\"
      user        = "app user"
      environment = { "BAD-NAME" = "1" }
      restart     = "sometimes"
      after       = ["network.target", "x y"]
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
