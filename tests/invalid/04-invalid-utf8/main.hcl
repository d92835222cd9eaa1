service "myapp" {
  version     = "1.0.0"
  description = "cafÿþ"
  vm { install_dir = "/opt/myapp" }
}
