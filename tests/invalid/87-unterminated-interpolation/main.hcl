variable "version" {
  type    = string
  default = "1.0.0"
}

service "myapp" {
  version = var.version
  artifact {
    source = "https://artifacts.example.com/myapp-${var.version.tar.gz"
  }
  vm { install_dir = "/opt/myapp" }
}
