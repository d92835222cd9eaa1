# myapp on VMs: dev (2 hosts) → qa (3) → staging (5) → production (10).
#
# The flow of the "VM deployment" runbook, as configuration: prechecks, stop,
# deregister, transfer and checksum, install, configure, systemd unit, start,
# health, smoke, register, then metric verification on staging and production.

slipway {
  backend "local" { path = "state" }
}

variable "version" {
  type        = string
  description = "Release to deploy, e.g. 2.4.1."

  validation {
    condition     = length(split(".", var.version)) == 3
    error_message = "version must look like MAJOR.MINOR.PATCH, e.g. 2.4.1."
  }
}

variable "artifact_sha256" {
  type        = string
  description = "sha256 of myapp-<version>.tar.gz, as published by the build."

  validation {
    condition     = length(var.artifact_sha256) == 64
    error_message = "artifact_sha256 must be 64 hex digits."
  }
}

variable "db_password" {
  type        = string
  sensitive   = true # masked in plan, never stored in clear
  description = "Database password written into app.properties."

  validation {
    condition     = length(var.db_password) >= 12
    error_message = "db_password must be at least 12 characters."
  }
}

variable "artifact_base_url" {
  type    = string
  default = "https://artifacts.example.com/myapp"
}

locals {
  app_port = 8080
  ssh_user = "deploy"
  ssh_key  = "~/.ssh/deploy_key"
}

output "versions" {
  description = "What each environment runs after apply."
  value = {
    dev        = deployment.myapp-dev.version
    qa         = deployment.myapp-qa.version
    staging    = deployment.myapp-staging.version
    production = deployment.myapp-production.version
  }
}

output "production_version" {
  value = deployment.myapp-production.version
}
