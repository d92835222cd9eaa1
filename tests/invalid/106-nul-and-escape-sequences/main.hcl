service "myapp" {
  version     = "1.0.0"
  description = "clears the screen \u001b[2J"
  vm {
    install_dir = "/opt/myapp"

    config_file "app.env" {
      destination = "/opt/myapp/app.env"
      content     = "A=1\nB=\u0000\n"
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
