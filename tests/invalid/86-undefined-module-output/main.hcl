module "backend" {
  source  = "./modules/web"
  version = "1.0.0"
}

environment "dev" {
  vm_hosts { hosts = ["dev-vm-01.internal"] }
}

deployment "backend-dev" {
  service     = module.backend.service.web
  environment = environment.dev
}

output "backend_url" {
  value = module.backend.base_ulr
}
