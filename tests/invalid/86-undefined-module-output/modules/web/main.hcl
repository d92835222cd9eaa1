variable "version" {
  type = string
}

service "web" {
  version = var.version
  vm { install_dir = "/opt/web" }
}

output "base_url" {
  value = "http://localhost:8080"
}
