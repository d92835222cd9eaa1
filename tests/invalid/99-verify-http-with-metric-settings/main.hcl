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
  strategy = "canary"
  steps    = ["50%", "100%"]

  # The plan would say "6 evaluations every 30s"; apply checks an http gate once.
  verify "site" {
    http {
      url = "https://myapp.internal/health"
    }
    interval = "30s"
    count    = 6
  }
}
