module "backend" {
  source = "./modules/web"
}

environment "dev" {
  vm_hosts { hosts = ["dev-vm-01.internal"] }
}

deployment "backend-dev" {
  service     = module.backend.service.web
  environment = environment.dev
}
