variable "db_password" {
  type      = string
  sensitive = true
  default   = "correct-horse-battery-staple"
}

service "myapp" {
  version = "1.0.0"
  vm { install_dir = "/opt/myapp" }
}

environment "dev" {
  vm_hosts { hosts = ["dev-vm-01.internal"] }
}

deployment "myapp-dev" {
  service     = service.myapp
  environment = environment.dev
}

output "database_url" {
  value = "postgres://myapp:${var.db_password}@dev-db.internal/myapp"
}
