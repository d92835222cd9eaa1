service "api" {
  version = "1.4.0"
  ecs {
    family = "api"
    cpu    = 256
    memory = 512

    container "app" {
      image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/api:1.4.0"
      port  = 5000
    }
  }
}

environment "dev" {
  vm_hosts { hosts = ["dev-vm-01.internal"] }
}

deployment "api-dev" {
  service     = service.api
  environment = environment.dev
}
