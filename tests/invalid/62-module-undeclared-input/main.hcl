module "backend" {
  source  = "./modules/web-service"
  name    = "backend"
  version = "1.0.0"
  prot    = 8080
}

environment "dev" {
  vm_hosts { hosts = ["dev-vm-01.internal"] }
}

deployment "backend-dev" {
  service     = module.backend.service.web
  environment = environment.dev
}
