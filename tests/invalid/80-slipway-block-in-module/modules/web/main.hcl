slipway {
  backend "local" { path = "state" }
}

service "web" {
  version = "1.0.0"
  vm { install_dir = "/opt/web" }
}
