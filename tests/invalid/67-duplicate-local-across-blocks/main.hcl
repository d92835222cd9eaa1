locals {
  app_port = 8080
}

locals {
  ssh_user = "deploy"
  app_port = 9090
}

service "myapp" {
  version = "1.0.0"
  vm {
    install_dir = "/opt/myapp"
    health "http" { url = "http://localhost:${local.app_port}/health" }
  }
}

environment "dev" {
  vm_hosts {
    user  = local.ssh_user
    hosts = ["dev-vm-01.internal"]
  }
}

deployment "myapp-dev" {
  service     = service.myapp
  environment = environment.dev
}
