variable "name" {
  type = string
}

variable "version" {
  type = string
}

variable "port" {
  type    = number
  default = 8080
}

service "web" {
  version = var.version
  vm {
    install_dir = "/opt/${var.name}"
    health "http" { url = "http://localhost:${var.port}/health" }
  }
}
