service "myapp" {
  version = "1.0.0"
  vm { install_dir = "/opt/myapp" }
}

environment "dev" {
  vm_hosts { hosts = ["dev-vm-01.internal"] }
}

rollout "rolling" {
  strategy = "rolling"
  batches  = [1, "50%"]
}

rollout "rolling" {
  strategy = "rolling"
  batches  = ["25%"]
}

deployment "myapp-dev" {
  service     = service.myapp
  environment = environment.dev
  rollout     = rollout.rolling
}
