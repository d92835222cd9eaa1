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

  verify "error-rate" {
    prometheus {
      address = "http://prometheus.internal:9090"
      query   = "sum(rate(http_request_errors_total{version=\"{{verison}}\"}[5m]))"
    }
    max = 0.01
  }
}
