# dev first, backend before frontend; prod only with versions verified in dev.
#
# Each deployment's `ecs` block names its ECS service, the listener whose
# weights a canary moves, and the blue/green target groups behind it.

deployment "backend-dev" {
  service     = module.backend.service.web
  environment = environment.dev
  rollout     = rollout.dev-rolling

  ecs {
    service_name = "workshop-dev-backend"
    listener_arn = "${local.alb_arn_prefix}:listener/app/workshop-dev/1f2e3d4c5b6a7980/5000aaaabbbbcccc"
    target_groups = [
      "${local.alb_arn_prefix}:targetgroup/workshop-dev-backend-blue/0123456789abcdef",
      "${local.alb_arn_prefix}:targetgroup/workshop-dev-backend-green/fedcba9876543210",
    ]
  }
}

deployment "frontend-dev" {
  service     = module.frontend.service.web
  environment = environment.dev
  rollout     = rollout.dev-rolling
  depends_on  = [deployment.backend-dev]

  ecs {
    service_name = "workshop-dev-frontend"
    listener_arn = "${local.alb_arn_prefix}:listener/app/workshop-dev/1f2e3d4c5b6a7980/0443aaaabbbbcccc"
    target_groups = [
      "${local.alb_arn_prefix}:targetgroup/workshop-dev-frontend-blue/1234567890abcdef",
      "${local.alb_arn_prefix}:targetgroup/workshop-dev-frontend-green/edcba9876543210f",
    ]
  }
}

deployment "backend-prod" {
  service      = module.backend.service.web
  environment  = environment.prod
  rollout      = rollout.prod-canary
  promote_from = deployment.backend-dev

  ecs {
    service_name  = "workshop-prod-backend"
    desired_count = module.backend.desired_count
    listener_arn  = "${local.alb_arn_prefix}:listener/app/workshop-prod/8a7b6c5d4e3f2a10/5000ddddeeeeffff"
    target_groups = [
      "${local.alb_arn_prefix}:targetgroup/workshop-prod-backend-blue/2345678901abcdef",
      "${local.alb_arn_prefix}:targetgroup/workshop-prod-backend-green/dcba9876543210fe",
    ]
  }
}

deployment "frontend-prod" {
  service      = module.frontend.service.web
  environment  = environment.prod
  rollout      = rollout.prod-canary
  depends_on   = [deployment.backend-prod]
  promote_from = deployment.frontend-dev

  ecs {
    service_name  = "workshop-prod-frontend"
    desired_count = module.frontend.desired_count
    listener_arn  = "${local.alb_arn_prefix}:listener/app/workshop-prod/8a7b6c5d4e3f2a10/0443ddddeeeeffff"
    target_groups = [
      "${local.alb_arn_prefix}:targetgroup/workshop-prod-frontend-blue/3456789012abcdef",
      "${local.alb_arn_prefix}:targetgroup/workshop-prod-frontend-green/cba9876543210fed",
    ]
  }
}
