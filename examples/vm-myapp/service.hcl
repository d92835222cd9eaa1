# What is deployed and how it is installed on a host.
#
# This body is evaluated once per deployment, with that deployment's
# environment in scope: env.name picks the config templates and env.variables
# supplies the per-environment values.

service "myapp" {
  version     = var.version
  description = "myapp, a Java service behind the internal load balancer"

  artifact {
    source = "${var.artifact_base_url}/myapp-${var.version}.tar.gz"
    sha256 = var.artifact_sha256
  }

  vm {
    install_dir   = "/opt/myapp" # releases/<version>/ and current -> the running one
    run_as        = "myapp"
    keep_releases = 3
    config_dirs   = ["/etc/myapp"] # config may also be written here

    systemd_unit "myapp.service" {
      exec_start = "/opt/myapp/current/bin/start.sh"
      exec_stop  = "/opt/myapp/current/bin/stop.sh"
      user       = "myapp"
      restart    = "on-failure"
      after      = ["network-online.target"]
      environment = {
        APP_ENV        = env.name
        APP_CONFIG     = "/opt/myapp/config/app.properties"
        LOGGING_CONFIG = "/etc/myapp/logback.xml"
        JAVA_OPTS      = env.variables.JAVA_OPTS
      }
    }

    config_file "app.properties" {
      destination = "/opt/myapp/config/app.properties"
      mode        = "0600"
      owner       = "myapp"
      content = templatefile("config/${env.name}/app.properties.tpl", {
        environment = env.name
        version     = var.version
        port        = local.app_port
        db_host     = env.variables.DB_HOST
        db_password = var.db_password
      })
    }

    config_file "logback.xml" {
      destination = "/etc/myapp/logback.xml"
      mode        = "0644"
      content = templatefile("config/${env.name}/logback.xml.tpl", {
        log_level = env.variables.LOG_LEVEL
        log_dir   = "/opt/myapp/logs"
      })
    }

    # Before anything is touched on a host.
    precheck "disk" {
      # at least 5 GiB free under /opt
      command = "test \"$(df --output=avail -k /opt | tail -n 1)\" -ge 5242880"
    }
    precheck "memory" {
      # at least 2 GiB available
      command = "awk '/^MemAvailable:/ { exit !($2 >= 2097152) }' /proc/meminfo"
    }
    precheck "java" {
      command = "command -v java >/dev/null && java -version"
    }

    # Let in-flight requests finish before the old version stops.
    hook "drain" {
      when    = "before_stop"
      command = "curl -fsS -X POST http://localhost:${local.app_port}/admin/drain && sleep 10"
    }

    # After start: the host must answer these (fetched on the host itself).
    health "http" {
      url           = "http://localhost:${local.app_port}/health"
      expect_status = 200
      timeout       = "5s"
      retries       = 12
      interval      = "5s"
    }
    health "database" {
      url           = "http://localhost:${local.app_port}/health/db"
      expect_status = 200
    }
    # The release being deployed answers, not the one before it.
    health "version" {
      command = "curl -fsS http://localhost:${local.app_port}/version | grep -qxF \"$SLIPWAY_VERSION\""
    }

    # Then these, before the host goes back into the load balancer.
    smoke "status" {
      command = "curl -fsS http://localhost:${local.app_port}/api/v1/status | grep -q running"
    }
    smoke "users" {
      command = "curl -fsS http://localhost:${local.app_port}/api/v1/users/count"
    }
  }
}
