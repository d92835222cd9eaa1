variable "bastion_host" {
  type      = string
  sensitive = true
  default   = "jump-7f3a9c.internal"
}

service "myapp" {
  version = "1.0.0"
  vm { install_dir = "/opt/myapp" }
}

environment "dev" {
  vm_hosts {
    hosts = ["dev-vm-01.internal", var.bastion_host]
  }
}

deployment "myapp-dev" {
  service     = service.myapp
  environment = environment.dev
}

