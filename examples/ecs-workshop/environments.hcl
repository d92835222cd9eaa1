# Where the services run.
#
# An environment's ecs_cluster names exactly one ECS service (service_name) and
# its pair of blue/green target groups. The backend and the frontend are two
# ECS services, so each stage has one environment per service: dev-backend,
# dev-frontend, prod-backend, prod-frontend. STAGE in `variables` is what the
# module uses for task families, log groups and APP_ENV.

locals {
  alb_arn_prefix = "arn:aws:elasticloadbalancing:us-east-1:123456789012"

  dev = {
    cluster         = "workshop-dev"
    subnets         = ["subnet-0a1b2c3d4e5f60001", "subnet-0a1b2c3d4e5f60002"]
    security_groups = ["sg-0d1e2f3a4b5c60001"]
  }
  prod = {
    cluster         = "workshop-prod"
    subnets         = ["subnet-0f9e8d7c6b5a40001", "subnet-0f9e8d7c6b5a40002", "subnet-0f9e8d7c6b5a40003"]
    security_groups = ["sg-0a9b8c7d6e5f40001"]
  }
}

# ---- dev ----------------------------------------------------------------------

environment "dev-backend" {
  variables = {
    STAGE                   = "dev"
    DATABASE_URL_SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:workshop/dev/database-url-Ab12Cd"
  }

  ecs_cluster {
    region        = "us-east-1"
    cluster       = local.dev.cluster
    service_name  = "workshop-dev-backend"
    desired_count = 1
    # The backend's own listener (port 5000), so its weights move independently.
    listener_arn = "${local.alb_arn_prefix}:listener/app/workshop-dev/1f2e3d4c5b6a7980/5000aaaabbbbcccc"
    target_groups = [
      "${local.alb_arn_prefix}:targetgroup/workshop-dev-backend-blue/0123456789abcdef",
      "${local.alb_arn_prefix}:targetgroup/workshop-dev-backend-green/fedcba9876543210",
    ]
    subnets          = local.dev.subnets
    security_groups  = local.dev.security_groups
    assign_public_ip = false
  }
}

environment "dev-frontend" {
  variables = { STAGE = "dev" }

  ecs_cluster {
    region        = "us-east-1"
    cluster       = local.dev.cluster
    service_name  = "workshop-dev-frontend"
    desired_count = 1
    listener_arn  = "${local.alb_arn_prefix}:listener/app/workshop-dev/1f2e3d4c5b6a7980/0443aaaabbbbcccc"
    target_groups = [
      "${local.alb_arn_prefix}:targetgroup/workshop-dev-frontend-blue/1234567890abcdef",
      "${local.alb_arn_prefix}:targetgroup/workshop-dev-frontend-green/edcba9876543210f",
    ]
    subnets          = local.dev.subnets
    security_groups  = local.dev.security_groups
    assign_public_ip = false
  }
}

# ---- prod ---------------------------------------------------------------------

environment "prod-backend" {
  protected = true

  variables = {
    STAGE                   = "prod"
    DATABASE_URL_SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:workshop/prod/database-url-Ef34Gh"
  }

  ecs_cluster {
    region        = "us-east-1"
    cluster       = local.prod.cluster
    service_name  = "workshop-prod-backend"
    desired_count = module.backend.desired_count
    listener_arn  = "${local.alb_arn_prefix}:listener/app/workshop-prod/8a7b6c5d4e3f2a10/5000ddddeeeeffff"
    target_groups = [
      "${local.alb_arn_prefix}:targetgroup/workshop-prod-backend-blue/2345678901abcdef",
      "${local.alb_arn_prefix}:targetgroup/workshop-prod-backend-green/dcba9876543210fe",
    ]
    subnets          = local.prod.subnets
    security_groups  = local.prod.security_groups
    assign_public_ip = false
  }
}

environment "prod-frontend" {
  protected = true
  variables = { STAGE = "prod" }

  ecs_cluster {
    region        = "us-east-1"
    cluster       = local.prod.cluster
    service_name  = "workshop-prod-frontend"
    desired_count = module.frontend.desired_count
    listener_arn  = "${local.alb_arn_prefix}:listener/app/workshop-prod/8a7b6c5d4e3f2a10/0443ddddeeeeffff"
    target_groups = [
      "${local.alb_arn_prefix}:targetgroup/workshop-prod-frontend-blue/3456789012abcdef",
      "${local.alb_arn_prefix}:targetgroup/workshop-prod-frontend-green/cba9876543210fed",
    ]
    subnets          = local.prod.subnets
    security_groups  = local.prod.security_groups
    assign_public_ip = false
  }
}
