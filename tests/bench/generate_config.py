#!/usr/bin/env python3
"""Generate a large slipway configuration for the plan benchmark.

    python3 tests/bench/generate_config.py OUT_DIR [--services 1000] [--hosts 10]
                                                   [--state none|half]

Shape (defaults): 1,000 services, each with its own four environments
(SERVICE-dev, SERVICE-qa, SERVICE-staging, SERVICE-production) of 10 VM hosts
each, and one deployment per (service, environment): 4,000 environments,
4,000 deployments and 40,000 distinct host placements. Each service lives in
its own file, `svc-NNNN.hcl`, holding its service block, its four
environments and its four deployments (chained dev -> qa -> staging ->
production with depends_on). Shared pieces are in `main.hcl` (backend,
variables, locals), `rollouts.hcl` (rolling for dev/qa, canary with
Prometheus gates for staging and production) and `config/*.tpl` (the two
config file templates every service renders with templatefile).

Each environment pins the release it runs (`env.variables.RELEASE` and its
`ARTIFACT_SHA256`), as a GitOps-style configuration does; the service's
version comes from there.

--state none (default): no state directory; every deployment plans as
  "create". No promote_from is written, because promotion is checked against
  state and nothing has been applied yet.

--state half: also writes `state/<environment>.json` for every environment,
  as if half of the configuration had been applied, and adds promote_from to
  the chains. Per service the configured releases are
      dev 3.0.0, qa 2.0.0, staging 2.0.0, production 1.0.0
  and the state records
      dev 2.0.0, qa 2.0.0, staging 1.0.0, production 1.0.0
  (all deployed and verified), so dev and staging plan an update (new
  version, a diff of app.properties) and qa and production are no-ops:
  2,000 updates and 2,000 no-ops, with every promotion check passing.
  The state holds exactly what slipway would have recorded: rendered and
  masked config files, the systemd unit text, the rollout policy digest and
  every host.

The output directory must not exist or be empty. Python 3 standard library only.
"""

import argparse
import hashlib
import json
import os
import re
import sys

STAGES = ["dev", "qa", "staging", "production"]

WORDS = [
    "orders", "billing", "catalog", "search", "payments", "inventory",
    "shipping", "accounts", "pricing", "reviews", "notifications", "auth",
    "ledger", "reports", "media", "gateway", "profiles", "checkout",
    "recommendations", "fulfillment",
]

DB_PASSWORD = "bench-not-a-real-password-7f3a9c"  # sensitive: masked in plan and state
ARTIFACT_BASE_URL = "https://artifacts.example.com"
APP_PORT = 8080
PROMETHEUS = "http://prometheus.internal:9090"

STAGE_SETTINGS = {
    "dev": {"LOG_LEVEL": "DEBUG", "JAVA_OPTS": "-Xms256m -Xmx512m", "POOL_MAX": "10"},
    "qa": {"LOG_LEVEL": "INFO", "JAVA_OPTS": "-Xms512m -Xmx1g", "POOL_MAX": "20"},
    "staging": {"LOG_LEVEL": "INFO", "JAVA_OPTS": "-Xms1g -Xmx2g", "POOL_MAX": "40"},
    "production": {"LOG_LEVEL": "WARN", "JAVA_OPTS": "-Xms2g -Xmx4g", "POOL_MAX": "80"},
}

STAGE_ROLLOUT = {
    "dev": "rolling",
    "qa": "rolling",
    "staging": "canary-staging",
    "production": "canary-production",
}

# Releases pinned per stage, and what state records (for --state half).
CONFIGURED = {"dev": "3.0.0", "qa": "2.0.0", "staging": "2.0.0", "production": "1.0.0"}
RECORDED = {"dev": "2.0.0", "qa": "2.0.0", "staging": "1.0.0", "production": "1.0.0"}

APP_PROPERTIES_TPL = """\
# ${service} (${environment}). Rendered by slipway from config/app.properties.tpl; do not edit on the host.
app.name=${service}
app.environment=${environment}
app.version=${version}

server.port=${port}
server.shutdown=graceful
server.max-threads=${max_threads}

db.url=jdbc:postgresql://${db_host}:5432/${db_name}
db.user=${db_user}
db.password=${db_password}
db.pool.max=${pool_max}
db.pool.min=2

cache.enabled=true
cache.ttl.seconds=300
metrics.export.prometheus=true
tracing.endpoint=http://otel-collector.internal:4317
tracing.sample-rate=0.05
"""

LOGBACK_TPL = """\
<?xml version="1.0" encoding="UTF-8"?>
<!-- ${service} (${environment}). Rendered by slipway from config/logback.xml.tpl. -->
<configuration scan="false">
  <appender name="FILE" class="ch.qos.logback.core.rolling.RollingFileAppender">
    <file>${log_dir}/application.log</file>
    <rollingPolicy class="ch.qos.logback.core.rolling.SizeAndTimeBasedRollingPolicy">
      <fileNamePattern>${log_dir}/application.%d{yyyy-MM-dd}.%i.log.gz</fileNamePattern>
      <maxFileSize>100MB</maxFileSize>
      <maxHistory>30</maxHistory>
      <totalSizeCap>5GB</totalSizeCap>
    </rollingPolicy>
    <encoder>
      <pattern>%d{ISO8601} %-5level [%thread] %X{requestId} %logger{36} - %msg%n</pattern>
    </encoder>
  </appender>

  <appender name="ASYNC" class="ch.qos.logback.classic.AsyncAppender">
    <queueSize>8192</queueSize>
    <discardingThreshold>0</discardingThreshold>
    <appender-ref ref="FILE"/>
  </appender>

  <logger name="org.hibernate.SQL" level="WARN"/>

  <root level="${log_level}">
    <appender-ref ref="ASYNC"/>
  </root>
</configuration>
"""

ERROR_RATE_QUERY = (
    'sum(rate(http_request_errors_total{app="{{service}}",env="{{environment}}",version="{{version}}"}[5m]))'
    ' / sum(rate(http_requests_total{app="{{service}}",env="{{environment}}",version="{{version}}"}[5m]))'
)
LATENCY_QUERY = (
    "histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket"
    '{app="{{service}}",env="{{environment}}",version="{{version}}"}[5m])))'
)


def gate(name, query, **fields):
    """A verify block as the configuration model serializes it (field order matters)."""
    g = {
        "name": name,
        "http": None,
        "command": None,
        "prometheus": {"address": PROMETHEUS, "query": query},
        "cloudwatch": None,
        "min": None,
        "max": None,
        "baseline": None,
        "tolerance": None,
        "direction": None,
        "interval": None,
        "count": None,
        "failure_limit": None,
        "no_data": "fail",
    }
    g.update(fields)
    return g


def rollout(name, strategy, **fields):
    """A rollout as the configuration model serializes it (field order matters)."""
    r = {
        "name": name,
        "strategy": strategy,
        "batches": [],
        "steps": [],
        "bake": None,
        "max_failures": None,
        "on_failure": "rollback",
        "description": None,
        "verify": [],
        "approval": [],
        "notify": [],
    }
    r.update(fields)
    return r


ROLLOUTS = [
    rollout(
        "rolling",
        "rolling",
        description="dev and qa: one host, then half of the hosts at a time",
        batches=[1, "50%"],
        max_failures=0,
    ),
    rollout(
        "canary-staging",
        "canary",
        description="staging: a growing share of hosts, judged on error rate",
        steps=["10%", "50%", "100%"],
        bake="2m",
        verify=[
            gate("error-rate", ERROR_RATE_QUERY, max=0.01, baseline="previous_version",
                 tolerance=1.2, direction="higher_is_worse", interval="1m", count=3,
                 failure_limit=1),
        ],
    ),
    rollout(
        "canary-production",
        "canary",
        description="production: canary with error-rate and latency gates and a release manager",
        steps=["10%", "25%", "50%", "100%"],
        bake="5m",
        verify=[
            gate("error-rate", ERROR_RATE_QUERY, max=0.01, baseline="previous_version",
                 tolerance=1.2, direction="higher_is_worse", interval="1m", count=5,
                 failure_limit=1),
            gate("p95-latency", LATENCY_QUERY, baseline="previous_version", tolerance=1.5,
                 interval="1m", count=5),
        ],
        approval=[{"name": "release-manager", "after_step": 1, "approvers": ["release-managers"]}],
        notify=[{
            "name": "chatops",
            "webhook": "https://hooks.slack.example.com/services/T000/B000/XXXX",
            "format": "slack",
            "on": ["approval_required", "failed", "rolled_back", "succeeded"],
        }],
    ),
]


def hcl_str(text):
    """An HCL quoted string literal for `text`."""
    out = (
        text.replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("\n", "\\n")
        .replace("${", "$${")
        .replace("%{", "%%{")
    )
    return '"' + out + '"'


def hcl_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return hcl_str(value)
    if isinstance(value, list):
        return "[" + ", ".join(hcl_value(v) for v in value) + "]"
    raise TypeError(value)


def rollout_hcl(r):
    lines = [f'rollout "{r["name"]}" {{']
    lines.append(f'  strategy    = {hcl_str(r["strategy"])}')
    lines.append(f'  description = {hcl_str(r["description"])}')
    if r["batches"]:
        lines.append(f'  batches     = {hcl_value(r["batches"])}')
    if r["steps"]:
        lines.append(f'  steps       = {hcl_value(r["steps"])}')
    if r["bake"] is not None:
        lines.append(f'  bake        = {hcl_str(r["bake"])}')
    if r["max_failures"] is not None:
        lines.append(f'  max_failures = {hcl_value(r["max_failures"])}')
    lines.append(f'  on_failure  = {hcl_str(r["on_failure"])}')
    for g in r["verify"]:
        lines.append("")
        lines.append(f'  verify "{g["name"]}" {{')
        lines.append("    prometheus {")
        lines.append(f'      address = {hcl_str(g["prometheus"]["address"])}')
        lines.append(f'      query   = {hcl_str(g["prometheus"]["query"])}')
        lines.append("    }")
        for key in ("min", "max", "baseline", "tolerance", "direction", "interval",
                    "count", "failure_limit"):
            if g[key] is not None:
                lines.append(f"    {key} = {hcl_value(g[key])}")
        lines.append(f'    no_data = {hcl_str(g["no_data"])}')
        lines.append("  }")
    for a in r["approval"]:
        lines.append("")
        lines.append(f'  approval "{a["name"]}" {{')
        lines.append(f'    after_step = {a["after_step"]}')
        lines.append(f'    approvers  = {hcl_value(a["approvers"])}')
        lines.append("  }")
    for n in r["notify"]:
        lines.append("")
        lines.append(f'  notify "{n["name"]}" {{')
        lines.append(f'    webhook = {hcl_str(n["webhook"])}')
        lines.append(f'    format  = {hcl_str(n["format"])}')
        lines.append(f'    on      = {hcl_value(n["on"])}')
        lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"


ATTR = re.compile(r"^(\s*)([A-Za-z_][A-Za-z0-9_-]*)\s*=\s(.*)$")


def align(text):
    """Align the `=` of consecutive one-line attributes, as `slipway fmt` does."""
    lines = text.split("\n")
    out = []
    run = []  # (indent, key, value) of the current run

    def flush():
        width = max((len(k) for _, k, _ in run), default=0)
        out.extend(f"{i}{k.ljust(width)} = {v}" for i, k, v in run)
        run.clear()

    for line in lines:
        m = ATTR.match(line)
        single = m and not m.group(3).rstrip().endswith(("[", "{", "("))
        if single and (not run or run[0][0] == m.group(1)):
            run.append((m.group(1), m.group(2), m.group(3)))
            continue
        flush()
        if single:
            run.append((m.group(1), m.group(2), m.group(3)))
        else:
            out.append(line)
    flush()
    return "\n".join(out)


def rollout_digest(r):
    # serde_json::to_string of the Rollout struct: compact, fields in
    # declaration order, floats in shortest round-trip form.
    text = json.dumps(r, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def sha(text):
    return hashlib.sha256(text.encode()).hexdigest()


def render(template, values):
    out = template
    for key, value in values.items():
        out = out.replace("${" + key + "}", str(value))
    assert "${" not in out, out
    return out


class Service:
    def __init__(self, index, hosts_per_env):
        self.index = index
        word = WORDS[index % len(WORDS)]
        self.name = f"{word}-{index:04d}"
        self.user = word.replace("-", "_")[:16]
        self.dc = ["eu1", "us1", "us2", "ap1"][index % 4]
        self.hosts_per_env = hosts_per_env

    def env_name(self, stage):
        return f"{self.name}-{stage}"

    def hosts(self, stage):
        return [f"{self.name}-{stage}-vm-{n:02d}.{self.dc}.internal"
                for n in range(1, self.hosts_per_env + 1)]

    def artifact_sha(self, release):
        return sha(f"{self.name}-{release}.tar.gz")

    def db_host(self, stage):
        return f"{stage}-db-{self.index % 40:02d}.{self.dc}.internal"

    # What the service block renders, for writing state.
    def app_properties(self, stage, release):
        return render(APP_PROPERTIES_TPL, {
            "service": self.name,
            "environment": stage,
            "version": release,
            "port": APP_PORT,
            "max_threads": 200,
            "db_host": self.db_host(stage),
            "db_name": self.name.replace("-", "_"),
            "db_user": self.user,
            "db_password": DB_PASSWORD,
            "pool_max": STAGE_SETTINGS[stage]["POOL_MAX"],
        })

    def logback(self, stage):
        return render(LOGBACK_TPL, {
            "service": self.name,
            "environment": stage,
            "log_dir": f"/var/log/{self.name}",
            "log_level": STAGE_SETTINGS[stage]["LOG_LEVEL"],
        })

    def systemd_unit(self, stage):
        # Mirrors the unit text slipway derives from the vm block.
        env = {
            "APP_ENV": stage,
            "DEPLOYMENT": self.env_name(stage),
            "JAVA_OPTS": STAGE_SETTINGS[stage]["JAVA_OPTS"],
            "LOGGING_CONFIG": f"/etc/{self.name}/logback.xml",
            "SERVER_PORT": str(APP_PORT),
        }
        text = "[Unit]\n"
        text += f"Description={self.name}.service (managed by slipway)\n"
        text += "After=network-online.target\n"
        text += "\n[Service]\n"
        text += f"User={self.user}\n"
        text += f"WorkingDirectory=/opt/{self.name}/current\n"
        for key in sorted(env):
            value = env[key].replace('"', '\\"')
            text += f'Environment="{key}={value}"\n'
        text += f"ExecStart=/opt/{self.name}/current/bin/start.sh\n"
        text += f"ExecStop=/opt/{self.name}/current/bin/stop.sh\n"
        text += "Restart=on-failure\n"
        text += "\n[Install]\nWantedBy=multi-user.target\n"
        return text

    def hcl(self, with_promotion):
        n = self.name
        out = []
        out.append(f"# {n}: service, its four environments and its deployments.\n")
        out.append(f'''service "{n}" {{
  version     = env.variables.RELEASE
  description = "{n}, a Java service ({self.dc})"

  artifact {{
    source = "${{var.artifact_base_url}}/{n}/{n}-${{env.variables.RELEASE}}.tar.gz"
    sha256 = env.variables.ARTIFACT_SHA256
  }}

  vm {{
    install_dir   = "/opt/{n}"
    run_as        = "{self.user}"
    keep_releases = 3
    config_dirs   = ["/etc/{n}"]

    systemd_unit "{n}.service" {{
      exec_start = "/opt/{n}/current/bin/start.sh"
      exec_stop  = "/opt/{n}/current/bin/stop.sh"
      restart    = "on-failure"
      after      = ["network-online.target"]
      environment = {{
        APP_ENV        = env.variables.STAGE
        DEPLOYMENT     = deployment.name
        JAVA_OPTS      = env.variables.JAVA_OPTS
        LOGGING_CONFIG = "/etc/{n}/logback.xml"
        SERVER_PORT    = tostring(local.app_port)
      }}
    }}

    config_file "app.properties" {{
      destination = "/opt/{n}/config/app.properties"
      mode        = "0600"
      owner       = "{self.user}"
      content = templatefile("config/app.properties.tpl", {{
        service     = "{n}"
        environment = env.variables.STAGE
        version     = env.variables.RELEASE
        port        = local.app_port
        max_threads = 200
        db_host     = env.variables.DB_HOST
        db_name     = "{n.replace("-", "_")}"
        db_user     = "{self.user}"
        db_password = var.db_password
        pool_max    = env.variables.POOL_MAX
      }})
    }}

    config_file "logback.xml" {{
      destination = "/etc/{n}/logback.xml"
      content = templatefile("config/logback.xml.tpl", {{
        service     = "{n}"
        environment = env.variables.STAGE
        log_dir     = "/var/log/{n}"
        log_level   = env.variables.LOG_LEVEL
      }})
    }}

    precheck "disk" {{
      command = "test \\"$(df --output=avail -k /opt | tail -n 1)\\" -ge 5242880"
    }}

    hook "drain" {{
      when    = "before_stop"
      command = "curl -fsS -X POST http://localhost:${{local.app_port}}/admin/drain && sleep 10"
    }}

    health "http" {{
      url           = "http://localhost:${{local.app_port}}/health"
      expect_status = 200
      timeout       = "5s"
      retries       = 12
      interval      = "5s"
    }}

    smoke "status" {{
      command = "curl -fsS http://localhost:${{local.app_port}}/api/v1/status | grep -q running"
    }}
  }}
}}
''')
        for stage in STAGES:
            s = STAGE_SETTINGS[stage]
            release = CONFIGURED[stage]
            hosts = ",\n".join(f'      "{h}"' for h in self.hosts(stage))
            protected = "  protected = true\n\n" if stage == "production" else ""
            bastion = (f'    bastion       = "jump.{self.dc}.internal"\n'
                       if stage in ("staging", "production") else "")
            lb = ""
            if stage in ("staging", "production"):
                lb = f'''
    load_balancer {{
      target_group_arn = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/{n[:20]}-{stage[:4]}/{sha(n + stage)[:16]}"
      region           = "us-east-1"
    }}
'''
            out.append(f'''
environment "{self.env_name(stage)}" {{
{protected}  variables = {{
    STAGE           = "{stage}"
    RELEASE         = "{release}"
    ARTIFACT_SHA256 = "{self.artifact_sha(release)}"
    LOG_LEVEL       = "{s["LOG_LEVEL"]}"
    DB_HOST         = "{self.db_host(stage)}"
    JAVA_OPTS       = "{s["JAVA_OPTS"]}"
    POOL_MAX        = "{s["POOL_MAX"]}"
  }}

  vm_hosts {{
    user          = local.ssh_user
    identity_file = local.ssh_key
{bastion}    hosts = [
{hosts},
    ]
{lb}  }}
}}
''')
        for i, stage in enumerate(STAGES):
            lines = [f'\ndeployment "{self.env_name(stage)}" {{',
                     f"  service     = service.{n}",
                     f"  environment = environment.{self.env_name(stage)}",
                     f"  rollout     = rollout.{STAGE_ROLLOUT[stage]}"]
            if i > 0:
                previous = self.env_name(STAGES[i - 1])
                lines.append(f"  depends_on  = [deployment.{previous}]")
                if with_promotion:
                    lines.append(f"  promote_from = deployment.{previous}")
            lines.append("}")
            out.append("\n".join(lines) + "\n")
        return "".join(out)

    def state(self, stage, digests):
        release = RECORDED[stage]
        masked_props = self.app_properties(stage, release).replace(DB_PASSWORD, "(sensitive)")
        at = "2025-01-15T10:%02d:00Z" % (self.index % 60)
        artifact = self.artifact_sha(release)
        deployment = {
            "service": f"service.{self.name}",
            "version": release,
            "artifact_sha256": artifact,
            "rollout": f"rollout.{STAGE_ROLLOUT[stage]}",
            "rollout_digest": digests[STAGE_ROLLOUT[stage]],
            "status": "deployed",
            "verified": True,
            "config_files": {
                f"/etc/{self.name}/logback.xml": self.logback(stage),
                f"/opt/{self.name}/config/app.properties": masked_props,
            },
            "systemd_unit": self.systemd_unit(stage),
            "hosts": {
                h: {"version": release, "artifact_sha256": artifact, "status": "deployed",
                    "updated_at": at}
                for h in sorted(self.hosts(stage))
            },
            "updated_at": at,
        }
        history = []
        for k, version in enumerate(["0.8.0", "0.9.0", "1.0.0", "2.0.0"]):
            if version > release:
                break
            history.append({
                "apply_id": sha(f"{self.name}-{stage}-{k}")[:32],
                "operation": "apply",
                "who": "ci@build-agent",
                "started_at": "2025-01-%02dT10:00:00Z" % (k + 1),
                "finished_at": "2025-01-%02dT10:20:00Z" % (k + 1),
                "plan_digest": sha(f"plan-{self.name}-{stage}-{k}"),
                "versions": {f"deployment.{self.env_name(stage)}": version},
                "result": "succeeded",
            })
        return {
            "version": 1,
            "serial": len(history) * 3,
            "lineage": "%s-%s-%s-%s-%s" % tuple(
                sha("lineage" + self.env_name(stage))[a:b]
                for a, b in ((0, 8), (8, 12), (12, 16), (16, 20), (20, 32))),
            "environment": self.env_name(stage),
            "deployments": {f"deployment.{self.env_name(stage)}": deployment},
            "history": history,
        }


MAIN_HCL = f"""# Benchmark configuration generated by tests/bench/generate_config.py.

slipway {{
  backend "local" {{ path = "state" }}
}}

variable "artifact_base_url" {{
  type    = string
  default = "{ARTIFACT_BASE_URL}"
}}

variable "db_password" {{
  type        = string
  sensitive   = true
  description = "Database password written into every app.properties."

  validation {{
    condition     = length(var.db_password) >= 12
    error_message = "db_password must be at least 12 characters."
  }}
}}

locals {{
  app_port = {APP_PORT}
  ssh_user = "deploy"
  ssh_key  = "~/.ssh/deploy_key"
}}
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir")
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--hosts", type=int, default=10, help="hosts per environment")
    parser.add_argument("--state", choices=["none", "half"], default="none")
    args = parser.parse_args()

    out = args.out_dir
    if os.path.exists(out) and os.listdir(out):
        sys.exit(f"{out} exists and is not empty")
    os.makedirs(os.path.join(out, "config"), exist_ok=True)
    os.makedirs(os.path.join(out, "vars"), exist_ok=True)

    def write(rel, text):
        with open(os.path.join(out, rel), "w", encoding="utf-8") as f:
            f.write(text)

    write("main.hcl", MAIN_HCL)
    write("rollouts.hcl",
          align("# Shared rollouts.\n\n" + "\n".join(rollout_hcl(r) for r in ROLLOUTS)))
    write("config/app.properties.tpl", APP_PROPERTIES_TPL)
    write("config/logback.xml.tpl", LOGBACK_TPL)
    # Var files live outside the configuration directory's top level.
    write("vars/bench.vars.hcl", f'db_password = "{DB_PASSWORD}"\n')

    with_state = args.state == "half"
    services = [Service(i, args.hosts) for i in range(1, args.services + 1)]
    for svc in services:
        write(f"svc-{svc.index:04d}.hcl", align(svc.hcl(with_promotion=with_state)))

    if with_state:
        os.makedirs(os.path.join(out, "state"), exist_ok=True)
        digests = {r["name"]: rollout_digest(r) for r in ROLLOUTS}
        for svc in services:
            for stage in STAGES:
                state = svc.state(stage, digests)
                write(f"state/{svc.env_name(stage)}.json",
                      json.dumps(state, indent=2, ensure_ascii=False) + "\n")

    n = len(services)
    print(f"{out}: {n} services, {n * 4} environments, {n * 4} deployments, "
          f"{n * 4 * args.hosts} host placements; state: {args.state}", file=sys.stderr)


if __name__ == "__main__":
    main()
