variable "version" {
  type = string

  validation {
    condition     = length(split(".", var.version)) == 3
    error_message = "version must look like MAJOR.MINOR.PATCH, e.g. 2.4.1."
  }
}

service "myapp" {
  version = var.version
  vm { install_dir = "/opt/myapp" }
}

environment "dev" {
  vm_hosts { hosts = ["dev-vm-01.internal"] }
}

deployment "myapp-dev" {
  service     = service.myapp
  environment = environment.dev
}
