service "api" {
  version = "1.0.0"
  ecs {
    family = "api"
    cpu    = 256
    memory = 512
    container "app" {
      image = "registry.local/api:1.0.0"
      port  = 8080
    }
  }
}

service "worker" {
  version = "1.0.0"
  ecs {
    family = "worker"
    cpu    = 256
    memory = 512
    container "app" {
      image = "registry.local/worker:1.0.0"
    }
  }
}

environment "prod" {
  ecs_cluster {
    cluster = "prod"
    subnets = ["subnet-1"]
  }
}

rollout "rolling" {
  strategy = "rolling"
}

deployment "api" {
  service     = service.api
  environment = environment.prod
  rollout     = rollout.rolling

  ecs {
    service_name = "legacy-api"
  }
}

deployment "worker" {
  service     = service.worker
  environment = environment.prod
  rollout     = rollout.rolling

  ecs {
    service_name = "legacy-api"
  }
}
