variable "db_password" {
  type      = string
  sensitive = true
  default   = "not-a-number-correct-horse"
}

service "myapp" {
  version = "1.0.0"
  vm {
    install_dir = "/opt/myapp"
    config_file "app.env" {
      destination = "/opt/myapp/config/app.env"
      content     = "DB_PASSWORD_PIN=${format("%04d", var.db_password)}\n"
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
