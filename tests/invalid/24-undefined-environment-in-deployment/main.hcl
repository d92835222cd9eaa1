service "myapp" {
  version = "1.0.0"
  vm { install_dir = "/opt/myapp" }
}

environment "production" {
  vm_hosts { hosts = ["prod-vm-01.internal"] }
}

deployment "myapp-production" {
  service     = service.myapp
  environment = environment.prodution
}
