service "myapp" {
  version = "1.0.0"
  vm { install_dir = "/opt/myapp" }
}

environment "dev" {
  vm_hosts { hosts = ["dev-vm-01.internal", "dev-vm-02.internal"] }
}

deployment "myapp-dev" {
  service     = service.myapp
  environment = environment.dev
  rollout     = rollout.main
}

rollout "main" {
  strategy = "rolling"
  batches  = [1]
  bake     = "5 minutes"
}
