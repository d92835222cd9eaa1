module "inner" {
  source = "."
}

service "web" {
  version = "1.0.0"
  vm { install_dir = "/opt/web" }
}
