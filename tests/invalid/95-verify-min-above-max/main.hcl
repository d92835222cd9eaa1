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

  verify "latency" {
    prometheus {
      address = "http://prometheus.internal:9090"
      query   = "histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{version=\"{{version}}\"}[5m])))"
    }
    min = 0.5
    max = 0.2
  }
}
