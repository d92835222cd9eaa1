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

  verify "health" {
    http {
      url = "https://myapp.example.com/health"
    }
    command {
      command = "curl -fsS localhost:8080/health"
    }
    interval = "30s"
  }
}
