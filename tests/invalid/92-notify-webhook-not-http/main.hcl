service "myapp" {
  version = "1.0.0"
  vm { install_dir = "/opt/myapp" }
}

environment "dev" {
  vm_hosts { hosts = ["dev-vm-01.internal", "dev-vm-02.internal"] }
}

rollout "rolling" {
  strategy = "rolling"
  batches  = [1, "100%"]

  notify "chatops" {
    webhook = "hooks.example.com/services/T000/B000/XXXX"
    format  = "slack"
  }
}

deployment "myapp-dev" {
  service     = service.myapp
  environment = environment.dev
  rollout     = rollout.rolling
}
