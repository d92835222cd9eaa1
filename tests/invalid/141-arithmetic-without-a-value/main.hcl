variable "replicas" {
  type    = number
  default = 0
}

locals {
  # hcl arithmetic unchecked would stop the process or wrap around.
  per_replica = 100 / var.replicas
  wrapped     = 18446744073709551615 + 1
  huge        = 1e308 * 10
  in_a_string = "batch ${7 % var.replicas}"
  in_a_loop   = [for n in [1, 0] : 10 / n]
  caught      = try(1 / 0, 5)
}

service "myapp" {
  version = "1.0.0"
  vm {
    install_dir = "/opt/myapp"

    config_file "app.env" {
      destination = "/opt/myapp/app.env"
      content     = templatefile("app.env.tpl", { n = 0 })
    }
  }
}

environment "dev" {
  vm_hosts { hosts = ["dev-vm-01.internal"] }
}

deployment "myapp-dev" {
  service     = service.myapp
  environment = environment.dev
}
