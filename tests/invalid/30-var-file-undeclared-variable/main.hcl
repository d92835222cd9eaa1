variable "version" {
  type = string
}

variable "db_password" {
  type      = string
  sensitive = true
}

service "myapp" {
  version = var.version
  vm {
    install_dir = "/opt/myapp"
    config_file "app.properties" {
      destination = "/opt/myapp/config/app.properties"
      content     = "db.password=${var.db_password}\n"
      mode        = "0600"
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
