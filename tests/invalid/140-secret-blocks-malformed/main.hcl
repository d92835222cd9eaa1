secret "both" {
  aws_secrets_manager = "prod/db"
  ssm_parameter       = "/prod/db/password"
}

secret "neither" {
  region = "eu-west-1"
}

secret "empty" {
  aws_secrets_manager = ""
}

secret "key_on_parameter" {
  ssm_parameter = "/prod/token"
  json_key      = "token"
}

service "myapp" {
  version = "1.0.0"
  vm {
    install_dir   = "/opt/myapp"
    start_command = "myapp --token ${secret.key_on_parameter}"
  }
}

environment "dev" {
  vm_hosts { hosts = ["dev-vm-01.internal"] }
}

deployment "myapp-dev" {
  service     = service.myapp
  environment = environment.dev
}
