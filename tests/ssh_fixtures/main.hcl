# The service that tests/apply_ssh.rs deploys over SSH to real sshd hosts on
# loopback. Each test copies this directory and adds `lab.hcl`: the environment
# (the harness's host addresses, client key and known_hosts) and the rollout.

slipway {
  backend "local" { path = ".slipway/state" }
}

variable "version" {
  type = string
}

# The hosts share this machine's network: host N (from 0) listens on
# base_port + N (see app/bin/start.sh).
variable "base_port" {
  type = number
}

service "app" {
  version = var.version

  artifact {
    source = "./app"
  }

  vm {
    # Each test host has its own /opt (the harness's mount namespace per
    # host), so this is <host's directory>/opt/app as the tests see it.
    install_dir   = "/opt/app"
    start_command = "sh current/bin/start.sh config/app.env"
    stop_command  = "sh current/bin/stop.sh"

    config_file "app.env" {
      destination = "/opt/app/config/app.env"
      content     = <<-EOT
        BASE_PORT=${var.base_port}
        GREETING='${env.variables.GREETING}'
        VERSION='${var.version}'
      EOT
    }

    health "http" {
      command  = "sh current/bin/check.sh"
      retries  = 3
      interval = "500ms"
    }
  }
}

deployment "app" {
  service     = service.app
  environment = environment.lab
  rollout     = rollout.rolling
}
