service "myapp" {
  version = "1.0.0"
  vm { install_dir = "/opt/myapp" }
}

environment "dev" {
  vm_hosts { hosts = ["dev-vm-01.internal"] }
}

environment "qa" {
  vm_hosts { hosts = ["qa-vm-01.internal"] }
}

deployment "myapp-dev" {
  service     = service.myapp
  environment = environment.dev
}

deployment "myapp-qa" {
  service      = service.myapp
  environment  = environment.qa
  depends_on   = [deployment.myapp-dev]
  promote_from = deployment.myapp-dve
}
