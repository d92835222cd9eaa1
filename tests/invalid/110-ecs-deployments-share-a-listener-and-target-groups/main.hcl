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

environment "prod" {
  ecs_cluster {
    cluster       = "prod"
    subnets       = ["subnet-1"]
    listener_arn  = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/shop/1/1"
    target_groups = [
      "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/shop-blue/1",
      "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/shop-green/2",
    ]
  }
}

rollout "canary" {
  strategy = "canary"
  steps    = ["10%", "100%"]
}

deployment "api" {
  service     = service.api
  environment = environment.prod
  rollout     = rollout.canary

  ecs {
    service_name = "api"
  }
}

deployment "api-internal" {
  service     = service.api
  environment = environment.prod
  rollout     = rollout.canary

  ecs {
    service_name = "api-internal"
  }
}
