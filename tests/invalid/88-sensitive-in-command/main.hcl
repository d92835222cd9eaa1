variable "db_password" {
  type      = string
  sensitive = true
  default   = "correct-horse-battery-staple"
}

service "myapp" {
  version = "1.0.0"
  vm {
    install_dir = "/opt/myapp"
    precheck "database" {
      command = "pg_isready -d postgres://myapp:${var.db_password}@db.internal/myapp"
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
