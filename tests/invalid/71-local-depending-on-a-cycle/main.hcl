locals {
  base_url   = "http://localhost:${local.app_port}"
  app_port   = local.health_url == "" ? 8080 : 8081
  health_url = "${local.base_url}/health"
  status_url = "${local.health_url}?verbose=1"
}

service "myapp" {
  version = "1.0.0"
  vm {
    install_dir = "/opt/myapp"
    health "http" { url = local.status_url }
  }
}

environment "dev" {
  vm_hosts { hosts = ["dev-vm-01.internal"] }
}

deployment "myapp-dev" {
  service     = service.myapp
  environment = environment.dev
}
