# Where the services run: one ECS cluster per stage. Each deployment names its
# own ECS service and its pair of blue/green target groups (deployments.hcl),
# so backend and frontend share the stage's environment. STAGE in `variables`
# is what the module uses for task families, log groups and APP_ENV.

locals {
  alb_arn_prefix = "arn:aws:elasticloadbalancing:us-east-1:123456789012"
}

environment "dev" {
  variables = {
    STAGE                   = "dev"
    DATABASE_URL_SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:workshop/dev/database-url-Ab12Cd"
  }

  ecs_cluster {
    region           = "us-east-1"
    cluster          = "workshop-dev"
    desired_count    = 1
    subnets          = ["subnet-0a1b2c3d4e5f60001", "subnet-0a1b2c3d4e5f60002"]
    security_groups  = ["sg-0d1e2f3a4b5c60001"]
    assign_public_ip = false
  }
}

environment "prod" {
  protected = true

  variables = {
    STAGE                   = "prod"
    DATABASE_URL_SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:workshop/prod/database-url-Ef34Gh"
  }

  ecs_cluster {
    region           = "us-east-1"
    cluster          = "workshop-prod"
    desired_count    = 2
    subnets          = ["subnet-0f9e8d7c6b5a40001", "subnet-0f9e8d7c6b5a40002", "subnet-0f9e8d7c6b5a40003"]
    security_groups  = ["sg-0a9b8c7d6e5f40001"]
    assign_public_ip = false
  }
}
