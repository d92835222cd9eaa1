service "myapp" {
  version = "1.0.0"
  vm {
    install_dir = "/opt/myapp"

    config_file "app.properties" {
      destination = "/opt/myapp/config/app.properties"
      content     = templatefile("config/${env.name}/app.properties.tpl", { port = 8080 })
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
