locals {
  ssh_user = "deploy"
}

service "myapp" {
  version = "1.0.0"
  vm { install_dir = "/opt/myapp" }
}

environment "dev" {
  vm_hosts {
    user          = local.ssh_user
    identity_file = local.ssh_key
    hosts         = ["dev-vm-01.internal"]
  }
}

deployment "myapp-dev" {
  service     = service.myapp
  environment = environment.dev
}
