variable "api_token" {
  type      = string
  sensitive = true
  default   = "tok-0123456789abcdef"
}

service "myapp" {
  version = "1.0.0"
  vm { install_dir = "/opt/myapp" }
}

environment "dev" {
  vm_hosts { hosts = ["dev-vm-01.internal"] }
}

rollout "verified" {
  strategy = "all_at_once"

  verify "health" {
    http {
      url = "https://myapp.example.com/health?token=${var.api_token}"
    }
  }
}

deployment "myapp-dev" {
  service     = service.myapp
  environment = environment.dev
  rollout     = rollout.verified
}
