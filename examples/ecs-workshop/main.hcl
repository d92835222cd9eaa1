# The ECS workshop: a Flask backend (port 5000, /api/health) and a web
# frontend (port 80) on Fargate behind an ALB, dev then prod.
#
# Both services come from one module, ../../modules/ecs-web-service.

slipway {
  # State in ./state, committed with the configuration. A team sharing state
  # through S3 writes instead:
  #   backend "s3" {
  #     bucket = "workshop-deploy-state"
  #     prefix = "ecs-workshop/"
  #     region = "us-east-1"
  #   }
  backend "local" {
    path = "state"
  }

  # The prod gates check https://workshop.example.com. If its certificate
  # comes from a private (internal) certificate authority, put that CA's
  # certificate in certs/ and name it here (or run with SSL_CERT_FILE):
  #   ca_file = "certs/internal-ca.pem"
}

variable "backend_version" {
  type        = string
  description = "Backend image tag, e.g. 1.4.0."
}

variable "frontend_version" {
  type        = string
  description = "Frontend image tag, e.g. 1.4.0."
}

locals {
  registry           = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
  execution_role_arn = "arn:aws:iam::123456789012:role/workshop-ecs-task-execution"
}

module "backend" {
  source = "../../modules/ecs-web-service"

  name               = "backend"
  image              = "${local.registry}/workshop-backend"
  version            = var.backend_version
  port               = 5000
  cpu                = 256
  memory             = 512
  health_check_path  = "/api/health"
  desired_count      = 2
  execution_role_arn = local.execution_role_arn
  task_role_arn      = "arn:aws:iam::123456789012:role/workshop-backend-task"

  environment = {
    PORT             = "5000"
    GUNICORN_WORKERS = "2"
    CORS_ORIGINS     = "https://workshop.example.com"
  }
  # DATABASE_URL comes from Secrets Manager; each environment names its own
  # secret in variables.DATABASE_URL_SECRET_ARN.
  secrets = { DATABASE_URL = "DATABASE_URL_SECRET_ARN" }
}

module "frontend" {
  source = "../../modules/ecs-web-service"

  name               = "frontend"
  image              = "${local.registry}/workshop-frontend"
  version            = var.frontend_version
  port               = 80
  cpu                = 256
  memory             = 256
  health_check_path  = "/"
  desired_count      = 2
  execution_role_arn = local.execution_role_arn
  task_role_arn      = "arn:aws:iam::123456789012:role/workshop-frontend-task"

  environment = { API_BASE_URL = "/api" }
}

output "backend_image" {
  value = module.backend.image
}

output "frontend_image" {
  value = module.frontend.image
}

output "prod_versions" {
  value = {
    backend  = deployment.backend-prod.version
    frontend = deployment.frontend-prod.version
  }
}
