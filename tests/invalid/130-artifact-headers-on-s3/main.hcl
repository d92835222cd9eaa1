service "myapp" {
  version = "1.0.0"
  artifact {
    source  = "s3://releases/myapp.tar.gz"
    headers = { Authorization = "Bearer x" }
  }
  vm { install_dir = "/opt/myapp" }
}

environment "dev" {
  vm_hosts { hosts = ["dev-vm-01.internal"] }
}

deployment "myapp-dev" {
  service     = service.myapp
  environment = environment.dev
}
