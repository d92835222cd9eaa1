# Inputs of the ecs-web-service module. Set them in the calling module block:
#
#   module "backend" {
#     source  = "../../modules/ecs-web-service"
#     name    = "backend"
#     image   = "123456789012.dkr.ecr.us-east-1.amazonaws.com/workshop-backend"
#     version = var.backend_version
#     port    = 5000
#   }

variable "name" {
  type        = string
  description = "Service name: part of the task family and the log group."
}

variable "image" {
  type        = string
  description = "Image repository, without a tag; the tag is var.version."
}

variable "version" {
  type        = string
  description = "Image tag to deploy; also the service's version in plan and state."
}

variable "port" {
  type        = number
  description = "Port the container listens on."
}

variable "cpu" {
  type        = number
  default     = 256
  description = "Task CPU units (256 = 0.25 vCPU)."
}

variable "memory" {
  type        = number
  default     = 512
  description = "Task memory in MiB."
}

variable "health_check_path" {
  type        = string
  default     = "/"
  description = "Path the load balancer's target group checks."
}

variable "environment" {
  type        = map(string)
  default     = {}
  description = "Plain environment variables for the container."
}

variable "secrets" {
  type        = map(string)
  default     = {}
  description = <<-EOT
    Secret environment variables: container variable name → the name of an entry
    in the deployment environment's `variables` that holds the secret's ARN. This
    keeps the module generic while each environment points at its own secret.
  EOT
}

variable "desired_count" {
  type        = number
  default     = 2
  description = "Number of tasks; exposed as an output for the environments that run it."
}

variable "region" {
  type        = string
  default     = "us-east-1"
  description = "Region for the CloudWatch log group."
}

variable "execution_role_arn" {
  type        = string
  description = "Role ECS uses to pull the image, write logs and read secrets."
}

variable "task_role_arn" {
  type        = string
  description = "Role the application itself runs as (its AWS permissions)."
}
