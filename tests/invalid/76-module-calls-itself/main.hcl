module "loop" {
  source = "./modules/loop"
}

environment "dev" {
  vm_hosts { hosts = ["dev-vm-01.internal"] }
}

deployment "web-dev" {
  service     = module.loop.service.web
  environment = environment.dev
}
