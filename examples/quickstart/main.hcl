# Quickstart: one tiny service rolled out to three "hosts" on this machine.
#
#   slipway plan  examples/quickstart
#   slipway apply examples/quickstart
#
# Nothing here needs SSH, root or the network: the environment uses the
# "local" transport, which gives each host its own directory under
# .slipway/hosts/ and runs every command on this machine.

slipway {
  backend "local" { path = ".slipway/state" }
}

variable "version" {
  type    = string
  default = "1.0.0"
}

# Each host needs its own port, because all three share this machine's
# network. The choice here: the config file carries a base port, and the start
# script adds the host's position in the host list, which slipway hands to every
# command as SLIPWAY_HOST_INDEX (0, 1, 2). So host-1 listens on 18080,
# host-2 on 18081 and host-3 on 18082.
variable "base_port" {
  type    = number
  default = 18080
}

service "hello" {
  version = var.version

  # A directory is packed into an archive; its digest is the artifact's sha256.
  artifact {
    source = "./app"
  }

  vm {
    # With transport "local" this is .slipway/hosts/<host>/opt/hello.
    # Commands run in this directory; the release being run is current/.
    install_dir = "/opt/hello"

    # No systemd here: plain start and stop commands.
    start_command = "sh current/bin/start.sh config/hello.env"
    stop_command  = "sh current/bin/stop.sh"

    config_file "hello.env" {
      destination = "/opt/hello/config/hello.env"
      content     = <<-EOT
        BASE_PORT=${var.base_port}
        GREETING='${env.variables.GREETING}'
        VERSION='${var.version}'
      EOT
    }

    # The health URL differs per host, so the check is a command: it reads
    # the port the start script chose and fetches /health.
    health "http" {
      command  = "sh current/bin/check.sh"
      retries  = 10
      interval = "1s"
    }
  }
}

environment "local" {
  variables = { GREETING = "Hello from slipway" }

  vm_hosts {
    transport = "local"
    root      = ".slipway/hosts"
    hosts     = ["host-1", "host-2", "host-3"]
  }
}

# First one host; if it comes up healthy, all the others at once.
rollout "rolling" {
  strategy   = "rolling"
  batches    = [1, "100%"]
  on_failure = "rollback"
}

deployment "hello" {
  service     = service.hello
  environment = environment.local
  rollout     = rollout.rolling
}

output "version" {
  value = deployment.hello.version
}
