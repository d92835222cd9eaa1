variable "name" {
  type = string
}

variable "version" {
  type        = string
  description = "Release to deploy."
}

service "web" {
  version = var.version
  vm { install_dir = "/opt/${var.name}" }
}
