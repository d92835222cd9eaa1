# A web service on ECS Fargate behind an ALB target group.
#
# The service body is evaluated once per deployment that uses it, with that
# deployment's environment in scope. Every environment this module is deployed
# to must define STAGE (e.g. "dev", "prod") in its `variables`: it names the
# task family, the log group and the container's APP_ENV.

service "web" {
  version     = var.version
  description = "${var.name} on ECS (${var.image})"

  ecs {
    family             = "${var.name}-${env.variables.STAGE}"
    cpu                = var.cpu
    memory             = var.memory
    launch_type        = "FARGATE"
    network_mode       = "awsvpc"
    execution_role_arn = var.execution_role_arn
    task_role_arn      = var.task_role_arn
    health_check_path  = var.health_check_path

    # Block labels are literal, so the container is always called "app".
    container "app" {
      image       = "${var.image}:${var.version}"
      port        = var.port
      essential   = true
      environment = merge({ APP_ENV = env.variables.STAGE }, var.environment)
      secrets     = { for name, key in var.secrets : name => env.variables[key] }

      log {
        driver = "awslogs"
        options = {
          "awslogs-group"         = "/ecs/${env.variables.STAGE}/${var.name}"
          "awslogs-region"        = var.region
          "awslogs-stream-prefix" = var.name
        }
      }
    }
  }
}
