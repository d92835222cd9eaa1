service "myapp" {
  version = "1.0.0"
  vm {
    install_dir = "/opt/myapp"

    config_file "app.properties" {
      destination = "/etc/myapp/app.properties"
      content     = "log.level=INFO\n"
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
