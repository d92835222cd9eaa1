//! The hostile matrix of issue 12: every string attribute of the language ×
//! every hostile value × every way a value comes in, checked end to end.
//!
//! What it is for: a value a user can set is data. Whatever it holds
//! (newlines, quotes, `$(...)`, backticks, NUL, terminal escape sequences,
//! a megabyte), slipway either refuses it with the file, line and column of
//! the attribute that carried it and changes nothing, or takes it and, after
//! `apply`, it arrives byte-exact where it was meant to go; nothing runs that
//! the configuration's author did not write as a command (every command here
//! quotes the value with `shellquote`, as docs/language.md asks), no file
//! outside the allowed directories changes, and no escape byte reaches the
//! terminal.
//!
//! How: [`ATTRIBUTES`] places the value `var.value` in one attribute at a
//! time. The list is checked against the schema (`src/config/schema.rs`):
//! every attribute whose value is a string, a list or map of strings, or a
//! string with a grammar (durations, percentages, choices) must be in it.
//!
//! 1. *Every refusal and acceptance, through the binary*: attribute × value ×
//!    route (`-var`, `-var-file`, `SLIPWAY_VAR_value`), one `slipway plan`
//!    each (`validate` for the ECS and S3 fixtures, whose plan reads AWS).
//!    A refusal (exit 1) is located in the configuration at the attribute
//!    (or at an attribute its local flows into) or in the var file, and
//!    repeats no megabyte: `-var` and `SLIPWAY_VAR_*` values have no file of
//!    their own, and slipway locates their refusals at the attribute that
//!    uses the variable, as it does a var file's value (the var file itself
//!    is named only when the file is at fault); an acceptance plans. Either way no raw control
//!    byte is printed and no file changes (no state, nothing in the
//!    configuration or canary directory). With `SLIPWAY_MATRIX_FULL=1` every
//!    route runs and the verdicts must not depend on the route; without it
//!    (CI) each attribute and value runs on one route, rotating with
//!    `SLIPWAY_MATRIX_SEED` (default: the day), which is printed.
//! 2. *Every acceptance, applied*: per value × route × transport (local,
//!    and SSH against one real sshd host), one `slipway apply` with the value
//!    in every applicable attribute that took it alone in step 1; then each
//!    value is read back from where it was meant to go on the host (release
//!    marker, config files, the systemd unit, files the commands wrote), the
//!    trees of the host root (less the service's own directories), of the
//!    configuration directory (less `.slipway`) and of a canary directory
//!    are compared with before, and the markers of `$(touch ...)` and
//!    backtick payloads must not exist. This half always runs in full.
//!
//! What it does not do: attributes that name something outside slipway (a
//! URL, an AWS resource, an SSH host or key, the artifact's source, a user
//! account) or that are typed words (durations, choices) are checked with
//! `plan` only: applying them would need that thing to exist. ECS and
//! S3-backend attributes are checked with `validate`. systemd units are
//! applied over SSH only (the local transport has no systemd), against a
//! `systemctl` stand-in that only records its arguments. NUL cannot be
//! passed in a command-line argument or an environment variable, so the
//! binary gets it only through `-var-file`; likewise one argument or
//! environment string is limited to 128 KiB on Linux, so the large value is
//! 1 MiB in var files and 120 KiB in `-var` and `SLIPWAY_VAR_value`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Instant;

use slipway::config::schema::{Schema, Ty, ROOT};

use crate::sshd::{HostOptions, SshHosts};

// ---------------------------------------------------------------------------
// Values and routes
// ---------------------------------------------------------------------------

/// One hostile value; `{canary}` is replaced by the test's canary directory.
struct Hostile {
    name: &'static str,
    template: &'static str,
}

const VALUES: &[Hostile] = &[
    Hostile {
        name: "newline",
        template: "first line\nExecStartPre=/bin/touch {canary}/newline\nlast",
    },
    Hostile {
        name: "double-quote",
        template: "a \"quoted\" \\\" value\"",
    },
    Hostile {
        name: "single-quote",
        template: "it's '$HOME' '\\''",
    },
    Hostile {
        name: "dollar-paren",
        template: "$(touch {canary}/dollar)",
    },
    Hostile {
        name: "backtick",
        template: "`touch {canary}/backtick`",
    },
    Hostile {
        name: "nul",
        template: "before\0after",
    },
    Hostile {
        name: "esc-title",
        template: "\u{1b}]0;pwned\u{7}title",
    },
    Hostile {
        name: "esc-clear",
        template: "\u{1b}[2J\u{1b}[31mred",
    },
    Hostile {
        name: "one-megabyte",
        template: "",
    },
];

/// The markers a payload that ran would leave in the canary directory.
const MARKERS: &[&str] = &["newline", "dollar", "backtick"];

/// The size of the large value where it can be carried whole, and where it
/// must fit in one argument or environment string (less than 128 KiB).
const LARGE: usize = 1 << 20;
const LARGE_IN_ARGUMENT: usize = 120 * 1024;

fn value_text(value: &Hostile, canary: &Path, in_argument: bool) -> String {
    if value.name == "one-megabyte" {
        let size = if in_argument {
            LARGE_IN_ARGUMENT
        } else {
            LARGE
        };
        return "m".repeat(size);
    }
    value
        .template
        .replace("{canary}", &canary.display().to_string())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Route {
    Var,
    VarFile,
    Environment,
}

impl Route {
    fn name(self) -> &'static str {
        match self {
            Route::Var => "-var",
            Route::VarFile => "-var-file",
            Route::Environment => "SLIPWAY_VAR_value",
        }
    }
}

const ROUTES: [Route; 3] = [Route::Var, Route::VarFile, Route::Environment];

/// Set to run the front end on every route (else one route per attribute
/// and value, rotating with the seed).
const FULL_VARIABLE: &str = "SLIPWAY_MATRIX_FULL";
/// The rotation's seed (default: the day, so that CI runs rotate).
const SEED_VARIABLE: &str = "SLIPWAY_MATRIX_SEED";

/// Whether to run every route at the front end, and the rotation's seed.
fn matrix_mode() -> (bool, u64) {
    let full = std::env::var_os(FULL_VARIABLE).is_some_and(|v| v != "0" && !v.is_empty());
    let seed = std::env::var(SEED_VARIABLE)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            now.as_secs() / 86_400
        });
    (full, seed)
}

/// Whether the binary can be given `value` by `route` at all.
fn expressible(value: &Hostile, route: Route) -> bool {
    !(value.name == "nul" && matches!(route, Route::Var | Route::Environment))
}

/// `value` as an HCL string literal (JSON escapes are HCL escapes).
fn hcl_literal(value: &str) -> String {
    serde_json::to_string(value).unwrap()
}

// ---------------------------------------------------------------------------
// Attributes
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fixture {
    /// The VM configuration with an SSH environment.
    VmSsh,
    /// The VM configuration with a local-transport environment.
    VmLocal,
    /// An ECS service, environment and deployment (validate only).
    Ecs,
    /// The S3 state backend (validate only).
    S3,
}

/// Where an accepted value is read back after `apply`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Arrival {
    /// Front end and plan only (see the module doc for why).
    PlanOnly,
    /// The `version` of the `cmd` service's release marker.
    ReleaseVersion,
    /// The `cmd` service's install directory is `/opt/cmd` + value.
    InstallDir,
    /// `INSTALL_DIR/seen-NAME` of the `cmd` service, which the command
    /// wrote with `printf %s VALUE`.
    Seen(&'static str),
    /// A file under the host root that holds exactly the value.
    FileContent(&'static str),
    /// The config file `/opt/unit/config/app` + value + `.env` exists.
    Destination,
    /// The config file `/opt/unit-conf` + value + `/extra.conf` exists.
    ConfigDir,
    /// The systemd unit's setting (over SSH only), `%%` undone.
    UnitSetting(&'static str),
    /// The systemd unit's `Environment=APP_VALUE=...`, unquoted.
    UnitEnvironment,
}

/// One attribute of the matrix: its schema path (blocks from the top, then
/// the attribute; `#...` tells two placements of one attribute apart), its
/// fixture, its value when it is not under test (`null`: not set), the
/// expression that carries the hostile value (`var.value` in it), and where
/// an accepted value arrives.
struct Attribute {
    path: &'static str,
    fixture: Fixture,
    default: &'static str,
    hostile: &'static str,
    arrival: Arrival,
}

const fn attr(
    path: &'static str,
    fixture: Fixture,
    default: &'static str,
    hostile: &'static str,
    arrival: Arrival,
) -> Attribute {
    Attribute {
        path,
        fixture,
        default,
        hostile,
        arrival,
    }
}

use Arrival::*;
use Fixture::*;

/// Every string attribute of `src/config/schema.rs` (checked by
/// `the_matrix_covers_every_string_attribute_of_the_schema`).
#[rustfmt::skip]
const ATTRIBUTES: &[Attribute] = &[
    // slipway
    attr("slipway.required_version", VmSsh, "null", "var.value", PlanOnly),
    attr("slipway.ca_file", VmSsh, "null", "var.value", PlanOnly),
    attr("slipway.backend.path", VmSsh, "\".slipway/state\"", "\".slipway/state${var.value}\"", PlanOnly),
    attr("slipway.backend.bucket", S3, "\"state\"", "var.value", PlanOnly),
    attr("slipway.backend.prefix", S3, "null", "var.value", PlanOnly),
    attr("slipway.backend.region", S3, "null", "var.value", PlanOnly),
    attr("slipway.backend.endpoint", S3, "null", "var.value", PlanOnly),
    attr("slipway.backend.profile", S3, "null", "var.value", PlanOnly),
    // variable (of another variable, which may not refer to variables: these
    // are refused, located)
    attr("variable.type", VmSsh, "string", "var.value", PlanOnly),
    attr("variable.default", VmSsh, "\"d\"", "var.value", PlanOnly),
    attr("variable.description", VmSsh, "\"d\"", "var.value", PlanOnly),
    attr("variable.validation.error_message", VmSsh, "\"bad: ${var.value}\"", "\"bad: ${var.value}\"", PlanOnly),
    // module and output
    // secret (blocks no deployment uses: checked, never read)
    attr("secret.aws_secrets_manager", VmSsh, "\"prod/db\"", "var.value", PlanOnly),
    attr("secret.json_key", VmSsh, "null", "var.value", PlanOnly),
    attr("secret.version_stage", VmSsh, "null", "var.value", PlanOnly),
    attr("secret.region", VmSsh, "null", "var.value", PlanOnly),
    attr("secret.ssm_parameter", VmSsh, "\"/prod/db\"", "var.value", PlanOnly),
    attr("module.source", VmSsh, "\"./labels\"", "\"./labels${var.value}\"", PlanOnly),
    attr("output.description", VmSsh, "null", "var.value", PlanOnly),
    attr("output.value", VmSsh, "\"o\"", "var.value", PlanOnly),
    // service
    attr("service.version", VmSsh, "\"r${var.round}\"", "var.value", ReleaseVersion),
    attr("service.description", VmSsh, "\"a unit\"", "var.value", PlanOnly),
    attr("service.artifact.source", VmSsh, "\"./app\"", "\"./app${var.value}\"", PlanOnly),
    attr("service.artifact.sha256", VmSsh, "null", "var.value", PlanOnly),
    attr("service.artifact.headers", VmSsh, "null", "{ X-Value = var.value }", PlanOnly),
    attr("service.artifact.username", VmSsh, "null", "var.value", PlanOnly),
    attr("service.artifact.password", VmSsh, "null", "var.value", PlanOnly),
    attr("service.artifact.region", VmSsh, "null", "var.value", PlanOnly),
    attr("service.artifact.delivery", VmSsh, "null", "var.value", PlanOnly),
    attr("service.vm.install_dir", VmSsh, "\"/opt/cmd\"", "\"/opt/cmd${var.value}\"", InstallDir),
    attr("service.vm.run_as", VmSsh, "null", "var.value", PlanOnly),
    attr("service.vm.config_dirs", VmSsh, "\"/opt/unit-conf\"", "\"/opt/unit-conf${var.value}\"", ConfigDir),
    attr("service.vm.start_command", VmSsh, "\"printf %s start > seen-start\"", "\"printf %s ${shellquote(var.value)} > seen-start\"", Seen("start")),
    attr("service.vm.stop_command", VmSsh, "\"printf %s stop > seen-stop\"", "\"printf %s ${shellquote(var.value)} > seen-stop\"", Seen("stop")),
    attr("service.vm.systemd_unit.exec_start", VmSsh, "\"/opt/unit/current/bin/run\"", "var.value", UnitSetting("ExecStart")),
    attr("service.vm.systemd_unit.exec_stop", VmSsh, "null", "var.value", UnitSetting("ExecStop")),
    attr("service.vm.systemd_unit.user", VmSsh, "null", "var.value", UnitSetting("User")),
    attr("service.vm.systemd_unit.environment", VmSsh, "{ APP_VALUE = \"x\" }", "{ APP_VALUE = var.value }", UnitEnvironment),
    attr("service.vm.systemd_unit.restart", VmSsh, "null", "var.value", UnitSetting("Restart")),
    attr("service.vm.systemd_unit.after", VmSsh, "[\"network.target\"]", "[var.value]", UnitSetting("After")),
    attr("service.vm.config_file.destination", VmSsh, "\"/opt/unit/config/app.env\"", "\"/opt/unit/config/app${var.value}.env\"", Destination),
    attr("service.vm.config_file.content", VmSsh, "\"A=1\\n\"", "var.value", FileContent("/opt/unit/config/content")),
    attr("service.vm.config_file.mode", VmSsh, "null", "var.value", PlanOnly),
    attr("service.vm.config_file.owner", VmSsh, "null", "var.value", PlanOnly),
    attr("service.vm.precheck.command", VmSsh, "\"printf %s p > seen-precheck\"", "\"printf %s ${shellquote(var.value)} > seen-precheck\"", Seen("precheck")),
    attr("service.vm.health.url", VmSsh, "\"http://127.0.0.1:9/\"", "\"http://127.0.0.1:9/${var.value}\"", PlanOnly),
    attr("service.vm.health.command", VmSsh, "\"printf %s h > seen-health\"", "\"printf %s ${shellquote(var.value)} > seen-health\"", Seen("health")),
    attr("service.vm.health.timeout", VmSsh, "null", "var.value", PlanOnly),
    attr("service.vm.health.interval", VmSsh, "null", "var.value", PlanOnly),
    attr("service.vm.smoke.command", VmSsh, "\"printf %s s > seen-smoke\"", "\"printf %s ${shellquote(var.value)} > seen-smoke\"", Seen("smoke")),
    attr("service.vm.hook.when", VmSsh, "\"after_start\"", "var.value", PlanOnly),
    attr("service.vm.hook.command", VmSsh, "\"printf %s k > seen-hook\"", "\"printf %s ${shellquote(var.value)} > seen-hook\"", Seen("hook")),
    // service.ecs (ECS only)
    attr("service.ecs.family", Ecs, "\"fam\"", "var.value", PlanOnly),
    attr("service.ecs.launch_type", Ecs, "null", "var.value", PlanOnly),
    attr("service.ecs.network_mode", Ecs, "null", "var.value", PlanOnly),
    attr("service.ecs.execution_role_arn", Ecs, "null", "var.value", PlanOnly),
    attr("service.ecs.task_role_arn", Ecs, "null", "var.value", PlanOnly),
    attr("service.ecs.health_check_path", Ecs, "null", "var.value", PlanOnly),
    attr("service.ecs.container.image", Ecs, "\"nginx\"", "var.value", PlanOnly),
    attr("service.ecs.container.command", Ecs, "null", "[var.value]", PlanOnly),
    attr("service.ecs.container.environment", Ecs, "null", "{ V = var.value }", PlanOnly),
    attr("service.ecs.container.secrets", Ecs, "null", "{ S = var.value }", PlanOnly),
    attr("service.ecs.container.log.driver", Ecs, "\"awslogs\"", "var.value", PlanOnly),
    attr("service.ecs.container.log.options", Ecs, "null", "{ o = var.value }", PlanOnly),
    attr("service.ecs.container.health_check.command", Ecs, "[\"CMD\", \"true\"]", "[\"CMD-SHELL\", var.value]", PlanOnly),
    attr("service.ecs.container.health_check.interval", Ecs, "null", "var.value", PlanOnly),
    attr("service.ecs.container.health_check.timeout", Ecs, "null", "var.value", PlanOnly),
    // environment
    attr("environment.variables", VmSsh, "{ GREETING = \"hi\" }", "{ GREETING = var.value }", FileContent("/opt/unit/config/greeting")),
    attr("environment.description", VmSsh, "null", "var.value", PlanOnly),
    attr("environment.vm_hosts.hosts", VmSsh, "[\"127.0.0.1\"]", "[var.value]", PlanOnly),
    attr("environment.vm_hosts.hosts#local", VmLocal, "[\"host-1\"]", "[\"host-${var.value}\"]", PlanOnly),
    attr("environment.vm_hosts.user", VmSsh, "null", "var.value", PlanOnly),
    attr("environment.vm_hosts.identity_file", VmSsh, "null", "\"id${var.value}\"", PlanOnly),
    attr("environment.vm_hosts.bastion", VmSsh, "null", "var.value", PlanOnly),
    attr("environment.vm_hosts.host_key_policy", VmSsh, "null", "var.value", PlanOnly),
    attr("environment.vm_hosts.transport", VmSsh, "\"ssh\"", "var.value", PlanOnly),
    attr("environment.vm_hosts.root", VmLocal, "\".slipway/hosts\"", "\".slipway/hosts${var.value}\"", PlanOnly),
    attr("environment.vm_hosts.connect_timeout", VmSsh, "null", "var.value", PlanOnly),
    attr("environment.vm_hosts.known_hosts_file", VmSsh, "null", "\"known${var.value}\"", PlanOnly),
    attr("environment.vm_hosts.load_balancer.target_group_arn", VmSsh, "\"arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/tg/1\"", "var.value", PlanOnly),
    attr("environment.vm_hosts.load_balancer.region", VmSsh, "null", "var.value", PlanOnly),
    attr("environment.vm_hosts.load_balancer.endpoint", VmSsh, "null", "var.value", PlanOnly),
    attr("environment.ecs_cluster.cluster", Ecs, "\"c\"", "var.value", PlanOnly),
    attr("environment.ecs_cluster.service_name", Ecs, "null", "var.value", PlanOnly),
    attr("environment.ecs_cluster.region", Ecs, "null", "var.value", PlanOnly),
    attr("environment.ecs_cluster.endpoint", Ecs, "null", "var.value", PlanOnly),
    attr("environment.ecs_cluster.listener_arn", Ecs, "null", "var.value", PlanOnly),
    attr("environment.ecs_cluster.target_groups", Ecs, "null", "[var.value]", PlanOnly),
    attr("environment.ecs_cluster.subnets", Ecs, "null", "[var.value]", PlanOnly),
    attr("environment.ecs_cluster.security_groups", Ecs, "null", "[var.value]", PlanOnly),
    attr("environment.ecs_cluster.wait_timeout", Ecs, "null", "var.value", PlanOnly),
    // rollout
    attr("rollout.strategy", VmSsh, "\"rolling\"", "var.value", PlanOnly),
    attr("rollout.batches", VmSsh, "[\"100%\"]", "[var.value]", PlanOnly),
    attr("rollout.steps", Ecs, "[\"50%\", \"100%\"]", "[var.value]", PlanOnly),
    attr("rollout.bake", VmSsh, "null", "var.value", PlanOnly),
    attr("rollout.max_failures", VmSsh, "null", "var.value", PlanOnly),
    attr("rollout.on_failure", VmSsh, "null", "var.value", PlanOnly),
    attr("rollout.description", VmSsh, "null", "var.value", PlanOnly),
    attr("rollout.verify.baseline", VmSsh, "\"previous_version\"", "var.value", PlanOnly),
    attr("rollout.verify.direction", VmSsh, "null", "var.value", PlanOnly),
    attr("rollout.verify.interval", VmSsh, "null", "var.value", PlanOnly),
    attr("rollout.verify.no_data", VmSsh, "null", "var.value", PlanOnly),
    attr("rollout.verify.http.url", VmSsh, "\"http://127.0.0.1:9/\"", "\"http://127.0.0.1:9/${var.value}\"", PlanOnly),
    attr("rollout.verify.http.body_contains", VmSsh, "null", "var.value", PlanOnly),
    attr("rollout.verify.http.json_path", VmSsh, "null", "var.value", PlanOnly),
    attr("rollout.verify.http.expect_value", VmSsh, "null", "var.value", PlanOnly),
    attr("rollout.verify.http.timeout", VmSsh, "null", "var.value", PlanOnly),
    attr("rollout.verify.command.command", VmSsh, "\"printf %s v > seen-verify\"", "\"printf %s ${shellquote(var.value)} > seen-verify\"", Seen("verify")),
    attr("rollout.verify.command.on", VmSsh, "\"hosts\"", "var.value", PlanOnly),
    attr("rollout.verify.prometheus.address", VmSsh, "\"http://127.0.0.1:9\"", "var.value", PlanOnly),
    attr("rollout.verify.prometheus.query", VmSsh, "\"up\"", "var.value", PlanOnly),
    attr("rollout.verify.cloudwatch.region", VmSsh, "null", "var.value", PlanOnly),
    attr("rollout.verify.cloudwatch.endpoint", VmSsh, "null", "var.value", PlanOnly),
    attr("rollout.verify.cloudwatch.alarm_name", VmSsh, "\"alarm\"", "var.value", PlanOnly),
    attr("rollout.verify.cloudwatch.namespace", VmSsh, "\"NS\"", "var.value", PlanOnly),
    attr("rollout.verify.cloudwatch.metric_name", VmSsh, "\"M\"", "var.value", PlanOnly),
    attr("rollout.verify.cloudwatch.statistic", VmSsh, "\"Average\"", "var.value", PlanOnly),
    attr("rollout.verify.cloudwatch.dimensions", VmSsh, "null", "{ D = var.value }", PlanOnly),
    attr("rollout.approval.approvers", VmSsh, "null", "[var.value]", PlanOnly),
    attr("rollout.notify.webhook", VmSsh, "\"http://127.0.0.1:9/hook\"", "\"http://127.0.0.1:9/${var.value}\"", PlanOnly),
    attr("rollout.notify.format", VmSsh, "null", "var.value", PlanOnly),
    attr("rollout.notify.on", VmSsh, "null", "[var.value]", PlanOnly),
    // deployment
    attr("deployment.ecs.service_name", Ecs, "null", "var.value", PlanOnly),
    attr("deployment.ecs.listener_arn", Ecs, "null", "var.value", PlanOnly),
    attr("deployment.ecs.target_groups", Ecs, "null", "[var.value]", PlanOnly),
];

/// Whether an attribute of this type holds text a user writes.
fn holds_text(ty: Ty) -> bool {
    match ty {
        Ty::String
        | Ty::StringList
        | Ty::StringMap
        | Ty::Duration
        | Ty::Percent
        | Ty::PercentList
        | Ty::CountOrPercent
        | Ty::BatchList
        | Ty::OneOf(_)
        | Ty::Any
        | Ty::List
        | Ty::Map => true,
        Ty::Number | Ty::Bool | Ty::Ref(_) | Ty::RefList(_) => false,
    }
}

/// The schema paths of every attribute that holds text.
fn schema_text_attributes() -> BTreeSet<String> {
    fn walk(schema: &Schema, prefix: &str, out: &mut BTreeSet<String>) {
        for attr in schema.attrs {
            if holds_text(attr.ty) {
                out.insert(format!("{prefix}{}", attr.name));
            }
        }
        for block in schema.blocks {
            walk(block.schema, &format!("{prefix}{}.", block.name), out);
        }
    }
    let mut out = BTreeSet::new();
    walk(&ROOT, "", &mut out);
    out
}

fn token(path: &str) -> String {
    format!("@{{{path}}}")
}

// ---------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------

/// The VM configuration. Two services share one environment: `unit` (a
/// systemd unit and config files) and `cmd` (every kind of command). A
/// `gated` deployment carries the rollout attributes whose checks reach
/// outside (HTTP, Prometheus, CloudWatch, approvals, webhooks) and the
/// environment's load balancer; both are left out where slipway applies.
const VM_FIXTURE: &str = r#"slipway {
  required_version = @{slipway.required_version}
  ca_file          = @{slipway.ca_file}
  backend "local" {
    path = @{slipway.backend.path}
  }
}

variable "value" {
  type = string
}

variable "round" {
  type    = string
  default = "0"
}

variable "other" {
  type        = @{variable.type}
  default     = @{variable.default}
  description = @{variable.description}
  validation {
    condition     = var.other != "refused"
    error_message = @{variable.validation.error_message}
  }
}

locals {
  cmd_dir = @{service.vm.install_dir}
  etc_dir = @{service.vm.config_dirs}
}

module "labels" {
  source = @{module.source}
  label  = "x"
}

service "unit" {
  version     = "r${var.round}"
  description = @{service.description}
  artifact {
    source   = "./app"
  }
  vm {
    install_dir = "/opt/unit"
    config_dirs = [local.etc_dir]
    UNIT_BLOCK
    config_file "app.env" {
      destination = @{service.vm.config_file.destination}
      content     = "A=1\n"
      mode        = @{service.vm.config_file.mode}
      owner       = @{service.vm.config_file.owner}
    }
    config_file "content" {
      destination = "/opt/unit/config/content"
      content     = @{service.vm.config_file.content}
    }
    config_file "greeting" {
      destination = "/opt/unit/config/greeting"
      content     = env.variables.GREETING
    }
    config_file "extra" {
      destination = "${local.etc_dir}/extra.conf"
      content     = "round ${var.round}\n"
    }
  }
}

service "cmd" {
  version = @{service.version}
  artifact {
    source   = @{service.artifact.source}
    sha256   = @{service.artifact.sha256}
    headers  = @{service.artifact.headers}
    username = @{service.artifact.username}
    password = @{service.artifact.password}
    region   = @{service.artifact.region}
    delivery = @{service.artifact.delivery}
  }
  vm {
    install_dir   = local.cmd_dir
    run_as        = @{service.vm.run_as}
    start_command = @{service.vm.start_command}
    stop_command  = @{service.vm.stop_command}
    precheck "p" {
      command = @{service.vm.precheck.command}
    }
    health "h" {
      command  = @{service.vm.health.command}
      timeout  = @{service.vm.health.timeout}
      interval = @{service.vm.health.interval}
      retries  = 0
    }
    smoke "s" {
      command = @{service.vm.smoke.command}
    }
    hook "k" {
      when    = @{service.vm.hook.when}
      command = @{service.vm.hook.command}
    }
    config_file "round" {
      destination = "${local.cmd_dir}/round"
      content     = var.round
    }
  }
}

GATED_SERVICE
SECRET_BLOCKS

environment "lab" {
  description = @{environment.description}
  variables   = @{environment.variables}
  vm_hosts {
    VM_HOSTS
    LOAD_BALANCER
  }
}

rollout "r" {
  strategy     = @{rollout.strategy}
  batches      = @{rollout.batches}
  bake         = @{rollout.bake}
  max_failures = @{rollout.max_failures}
  on_failure   = @{rollout.on_failure}
  description  = @{rollout.description}
  verify "cmd" {
    command {
      command = @{rollout.verify.command.command}
      on      = @{rollout.verify.command.on}
    }
  }
}

deployment "unit" {
  service     = service.unit
  environment = environment.lab
  rollout     = rollout.r
}

deployment "cmd" {
  service     = service.cmd
  environment = environment.lab
  rollout     = rollout.r
}

GATED_DEPLOYMENT

output "o" {
  value       = @{output.value}
  description = @{output.description}
}
"#;

const UNIT_BLOCK: &str = r#"systemd_unit "unit.service" {
      exec_start  = @{service.vm.systemd_unit.exec_start}
      exec_stop   = @{service.vm.systemd_unit.exec_stop}
      user        = @{service.vm.systemd_unit.user}
      environment = @{service.vm.systemd_unit.environment}
      restart     = @{service.vm.systemd_unit.restart}
      after       = @{service.vm.systemd_unit.after}
    }"#;

/// The `unit` service without systemd (the local transport has none).
const UNIT_COMMANDS: &str = r#"start_command = "true"
    stop_command  = "true""#;

const SSH_HOSTS: &str = r#"transport        = @{environment.vm_hosts.transport}
    hosts            = @{environment.vm_hosts.hosts}
    user             = @{environment.vm_hosts.user}
    identity_file    = @{environment.vm_hosts.identity_file}
    bastion          = @{environment.vm_hosts.bastion}
    host_key_policy  = @{environment.vm_hosts.host_key_policy}
    connect_timeout  = @{environment.vm_hosts.connect_timeout}
    known_hosts_file = @{environment.vm_hosts.known_hosts_file}"#;

const LOCAL_HOSTS: &str = r#"transport = "local"
    root      = @{environment.vm_hosts.root}
    hosts     = @{environment.vm_hosts.hosts#local}"#;

const LOAD_BALANCER: &str = r#"load_balancer {
      target_group_arn = @{environment.vm_hosts.load_balancer.target_group_arn}
      region           = @{environment.vm_hosts.load_balancer.region}
      endpoint         = @{environment.vm_hosts.load_balancer.endpoint}
    }"#;

/// Secret blocks that no deployment uses: validated, never read from a
/// store (plan reads only the secrets a planned deployment uses).
const SECRET_BLOCKS: &str = r#"secret "from_secrets_manager" {
  aws_secrets_manager = @{secret.aws_secrets_manager}
  json_key            = @{secret.json_key}
  version_stage       = @{secret.version_stage}
  region              = @{secret.region}
}

secret "from_ssm" {
  ssm_parameter = @{secret.ssm_parameter}
}
"#;

const GATED_SERVICE: &str = r#"service "gated" {
  version = "1.0.0"
  vm {
    install_dir = "/opt/gated"
    start_command = "true"
    health "u" {
      url = @{service.vm.health.url}
    }
  }
}

rollout "gates" {
  strategy = "rolling"
  batches  = [1]
  verify "http" {
    http {
      url           = @{rollout.verify.http.url}
      body_contains = @{rollout.verify.http.body_contains}
      json_path     = @{rollout.verify.http.json_path}
      expect_value  = @{rollout.verify.http.expect_value}
      timeout       = @{rollout.verify.http.timeout}
    }
  }
  verify "prometheus" {
    baseline  = @{rollout.verify.baseline}
    direction = @{rollout.verify.direction}
    interval  = @{rollout.verify.interval}
    no_data   = @{rollout.verify.no_data}
    max       = 1
    prometheus {
      address = @{rollout.verify.prometheus.address}
      query   = @{rollout.verify.prometheus.query}
    }
  }
  verify "alarm" {
    cloudwatch {
      region     = @{rollout.verify.cloudwatch.region}
      endpoint   = @{rollout.verify.cloudwatch.endpoint}
      alarm_name = @{rollout.verify.cloudwatch.alarm_name}
    }
  }
  verify "metric" {
    max = 1
    cloudwatch {
      namespace   = @{rollout.verify.cloudwatch.namespace}
      metric_name = @{rollout.verify.cloudwatch.metric_name}
      statistic   = @{rollout.verify.cloudwatch.statistic}
      dimensions  = @{rollout.verify.cloudwatch.dimensions}
    }
  }
  approval "owner" {
    after_step = 1
    approvers  = @{rollout.approval.approvers}
  }
  notify "hook" {
    webhook = @{rollout.notify.webhook}
    format  = @{rollout.notify.format}
    on      = @{rollout.notify.on}
  }
}"#;

const GATED_DEPLOYMENT: &str = r#"deployment "gated" {
  service     = service.gated
  environment = environment.lab
  rollout     = rollout.gates
}"#;

const ECS_FIXTURE: &str = r#"variable "value" {
  type = string
}

service "web" {
  version = "1.0.0"
  ecs {
    family             = @{service.ecs.family}
    cpu                = 256
    memory             = 512
    launch_type        = @{service.ecs.launch_type}
    network_mode       = @{service.ecs.network_mode}
    execution_role_arn = @{service.ecs.execution_role_arn}
    task_role_arn      = @{service.ecs.task_role_arn}
    health_check_path  = @{service.ecs.health_check_path}
    container "web" {
      image       = @{service.ecs.container.image}
      port        = 80
      command     = @{service.ecs.container.command}
      environment = @{service.ecs.container.environment}
      secrets     = @{service.ecs.container.secrets}
      log {
        driver  = @{service.ecs.container.log.driver}
        options = @{service.ecs.container.log.options}
      }
      health_check {
        command  = @{service.ecs.container.health_check.command}
        interval = @{service.ecs.container.health_check.interval}
        timeout  = @{service.ecs.container.health_check.timeout}
      }
    }
  }
}

environment "prod" {
  ecs_cluster {
    cluster         = @{environment.ecs_cluster.cluster}
    service_name    = @{environment.ecs_cluster.service_name}
    region          = @{environment.ecs_cluster.region}
    endpoint        = @{environment.ecs_cluster.endpoint}
    listener_arn    = @{environment.ecs_cluster.listener_arn}
    target_groups   = @{environment.ecs_cluster.target_groups}
    subnets         = @{environment.ecs_cluster.subnets}
    security_groups = @{environment.ecs_cluster.security_groups}
    wait_timeout    = @{environment.ecs_cluster.wait_timeout}
  }
}

rollout "canary" {
  strategy = "canary"
  steps    = @{rollout.steps}
}

deployment "web" {
  service     = service.web
  environment = environment.prod
  rollout     = rollout.canary
  ecs {
    service_name  = @{deployment.ecs.service_name}
    listener_arn  = @{deployment.ecs.listener_arn}
    target_groups = @{deployment.ecs.target_groups}
  }
}
"#;

const S3_FIXTURE: &str = r#"slipway {
  backend "s3" {
    bucket   = @{slipway.backend.bucket}
    prefix   = @{slipway.backend.prefix}
    region   = @{slipway.backend.region}
    endpoint = @{slipway.backend.endpoint}
    profile  = @{slipway.backend.profile}
  }
}

variable "value" {
  type = string
}

service "app" {
  version = "1.0.0"
  vm {
    install_dir   = "/opt/app"
    start_command = "true"
  }
}

environment "local" {
  vm_hosts {
    transport = "local"
    root      = ".slipway/hosts"
    hosts     = ["host-1"]
  }
}

deployment "app" {
  service     = service.app
  environment = environment.local
}
"#;

/// How a fixture is rendered: for planning (every block), or for applying
/// (without what reaches outside).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Render {
    Plan,
    Apply,
}

fn fixture_text(fixture: Fixture, render: Render) -> String {
    match fixture {
        VmSsh | VmLocal => {
            let ssh = fixture == VmSsh;
            let planned = render == Render::Plan;
            let unit = ssh;
            VM_FIXTURE
                .replace("UNIT_BLOCK", if unit { UNIT_BLOCK } else { UNIT_COMMANDS })
                .replace("VM_HOSTS", if ssh { SSH_HOSTS } else { LOCAL_HOSTS })
                .replace("LOAD_BALANCER", if planned { LOAD_BALANCER } else { "" })
                .replace("GATED_SERVICE", if planned { GATED_SERVICE } else { "" })
                .replace("SECRET_BLOCKS", if planned { SECRET_BLOCKS } else { "" })
                .replace(
                    "GATED_DEPLOYMENT",
                    if planned { GATED_DEPLOYMENT } else { "" },
                )
        }
        Ecs => ECS_FIXTURE.to_string(),
        S3 => S3_FIXTURE.to_string(),
    }
}

/// `main.hcl` for `fixture`: the fixture's text with every attribute of
/// `hostile` carrying the value (its `hostile` expression), the `overrides`
/// (token → expression), and every other attribute at its default.
struct Rendered {
    text: String,
    /// The line of each attribute in `main.hcl` (expressions are one line,
    /// so the lines are the template's).
    lines: BTreeMap<&'static str, usize>,
}

fn render(
    fixture: Fixture,
    mode: Render,
    hostile: &BTreeSet<&'static str>,
    overrides: &[(&str, String)],
) -> Rendered {
    let mut text = fixture_text(fixture, mode);
    for (path, value) in overrides {
        text = text.replace(&token(path), value);
    }
    let mut lines = BTreeMap::new();
    for attribute in ATTRIBUTES {
        let tok = token(attribute.path);
        let Some(at) = text.find(&tok) else {
            continue;
        };
        lines.insert(attribute.path, text[..at].matches('\n').count() + 1);
        let expression = if hostile.contains(attribute.path) {
            attribute.hostile
        } else {
            attribute.default
        };
        text = text.replace(&tok, expression);
    }
    assert!(!text.contains("@{"), "a token was left: {text}");
    Rendered { text, lines }
}

/// A configuration directory holding `text` as `main.hcl`, with what the
/// fixtures refer to: the artifact directory and the module.
fn write_config_dir(dir: &Path, text: &str) {
    std::fs::create_dir_all(dir.join("app/bin")).unwrap();
    std::fs::write(dir.join("app/bin/run"), "#!/bin/sh\necho run\n").unwrap();
    std::fs::create_dir_all(dir.join("labels")).unwrap();
    std::fs::write(
        dir.join("labels/main.hcl"),
        "variable \"label\" { type = string }\noutput \"label\" { value = var.label }\n",
    )
    .unwrap();
    std::fs::write(dir.join("main.hcl"), text).unwrap();
}

/// The lines of `main.hcl` where a refusal of `attribute` may be located:
/// the attribute's own line, and for a local that carries it, the lines
/// that use that local.
fn allowed_lines(template: &str, rendered: &Rendered, attribute: &str) -> BTreeSet<usize> {
    let mut lines = BTreeSet::new();
    let Some(&line) = rendered.lines.get(attribute) else {
        return lines;
    };
    lines.insert(line);
    let own = template.lines().nth(line - 1).unwrap_or("").trim_start();
    if let Some((local, _)) = own.split_once('=') {
        let local = format!("local.{}", local.trim());
        for (index, text) in template.lines().enumerate() {
            if text.contains(&local) {
                lines.insert(index + 1);
            }
        }
    }
    lines
}

// ---------------------------------------------------------------------------
// The schema and the matrix
// ---------------------------------------------------------------------------

#[test]
fn the_matrix_covers_every_string_attribute_of_the_schema() {
    let schema = schema_text_attributes();
    let matrix: BTreeSet<String> = ATTRIBUTES
        .iter()
        .map(|a| a.path.split('#').next().unwrap().to_string())
        .collect();
    let missing: Vec<_> = schema.difference(&matrix).collect();
    let unknown: Vec<_> = matrix.difference(&schema).collect();
    assert!(
        missing.is_empty(),
        "attributes of src/config/schema.rs missing from the hostile matrix: {missing:?}"
    );
    assert!(unknown.is_empty(), "not in the schema: {unknown:?}");
    // Every attribute has its place in its fixture.
    for attribute in ATTRIBUTES {
        assert!(
            fixture_text(attribute.fixture, Render::Plan).contains(&token(attribute.path)),
            "{} has no place in {:?}",
            attribute.path,
            attribute.fixture
        );
    }
}

// ---------------------------------------------------------------------------
// 1. The front end: attribute × value × route
// ---------------------------------------------------------------------------

/// What slipway made of one combination.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    Accepted,
    /// Refused, with the line in `main.hcl` of each error (`None`: in the
    /// var file).
    Refused(Vec<Option<usize>>),
}

/// The command that checks a fixture: `plan`, or `validate` where a plan
/// would read AWS.
fn checking_command(fixture: Fixture) -> &'static str {
    match fixture {
        VmSsh | VmLocal => "plan",
        Ecs | S3 => "validate",
    }
}

/// Run the binary's check of `fixture` with `attribute` carrying `value` by
/// `route`: a refusal must be located where the value came in, and nothing
/// may be written, run or printed raw.
fn front_end(
    dir: &Path,
    vars_dir: &Path,
    canary: &Path,
    attribute: &Attribute,
    value: &str,
    route: Route,
) -> Result<Verdict, String> {
    front_end_in(
        attribute.fixture,
        dir,
        vars_dir,
        canary,
        attribute,
        value,
        route,
    )
}

/// [`front_end`] with the attribute placed in `fixture`.
fn front_end_in(
    fixture: Fixture,
    dir: &Path,
    vars_dir: &Path,
    canary: &Path,
    attribute: &Attribute,
    value: &str,
    route: Route,
) -> Result<Verdict, String> {
    let hostile = BTreeSet::from([attribute.path]);
    let rendered = render(fixture, Render::Plan, &hostile, &[]);
    std::fs::write(dir.join("main.hcl"), &rendered.text).unwrap();
    let before = [
        tree(dir, &|p: &Path| p.starts_with("main.hcl")),
        tree(canary, &|_| false),
    ];
    let output = slipway_with(
        dir,
        &[checking_command(fixture), "."],
        route,
        value,
        vars_dir,
    );
    let log = crate::support::text(&output);
    let after = [
        tree(dir, &|p: &Path| p.starts_with("main.hcl")),
        tree(canary, &|_| false),
    ];
    if before != after {
        return Err(format!(
            "files changed: {:?} {:?}",
            changed(&before[0], &after[0]),
            changed(&before[1], &after[1])
        ));
    }
    if log.contains('\u{1b}') || log.contains('\u{7}') || log.contains('\0') {
        return Err("a raw control byte was printed".to_string());
    }
    match output.status.code() {
        // A plan shows the values it will use (escaped, checked above).
        Some(0 | 2) => return Ok(Verdict::Accepted),
        Some(1) if log.len() > 100_000 => {
            return Err(format!(
                "{} bytes printed: an error repeats the value",
                log.len()
            ))
        }
        Some(1) => {}
        other => {
            return Err(format!(
                "exit {other:?}:\n{}",
                log.chars().take(2000).collect::<String>()
            ))
        }
    }
    let allowed = allowed_lines(&rendered.text, &rendered, attribute.path);
    let mut located = Vec::new();
    for location in error_locations(&log) {
        match location {
            Ok(Some(line)) if allowed.contains(&line) => located.push(Some(line)),
            Ok(None) if route == Route::VarFile => located.push(None),
            Ok(line) => {
                return Err(format!(
                    "an error at main.hcl:{line:?}, not at the attribute (lines {allowed:?}):\n{}",
                    log.chars().take(2000).collect::<String>()
                ))
            }
            Err(header) => return Err(format!("an error without a location: {header}")),
        }
    }
    if located.is_empty() {
        return Err(format!(
            "refused without a located error:\n{}",
            log.chars().take(2000).collect::<String>()
        ));
    }
    Ok(Verdict::Refused(located))
}

/// The front end's verdict for every combination, keyed by (attribute,
/// value, route); failures are collected, not panicked on.
fn front_end_matrix(
    attributes: &[&Attribute],
    routes: &dyn Fn(&Attribute, &Hostile) -> Vec<Route>,
    failures: &mut Vec<String>,
) -> BTreeMap<(&'static str, &'static str, Route), Verdict> {
    let work = tempfile::tempdir().unwrap();
    let canary = work.path().join("canary");
    std::fs::create_dir(&canary).unwrap();
    let vars_dir = work.path().join("vars");
    std::fs::create_dir(&vars_dir).unwrap();
    let mut dirs = BTreeMap::new();
    let mut verdicts = BTreeMap::new();
    for attribute in attributes {
        let dir = dirs
            .entry(format!("{:?}", attribute.fixture))
            .or_insert_with(|| {
                let dir = work.path().join(format!("{:?}", attribute.fixture));
                write_config_dir(&dir, "");
                dir
            })
            .clone();
        for value in VALUES {
            for route in routes(attribute, value) {
                if !expressible(value, route) {
                    continue;
                }
                let text = value_text(value, &canary, route != Route::VarFile);
                match front_end(&dir, &vars_dir, &canary, attribute, &text, route) {
                    Ok(verdict) => {
                        verdicts.insert((attribute.path, value.name, route), verdict);
                    }
                    Err(problem) => failures.push(format!(
                        "{} × {} × {}: {problem}",
                        attribute.path,
                        value.name,
                        route.name()
                    )),
                }
            }
        }
    }
    for name in MARKERS {
        if canary.join(name).exists() {
            failures.push(format!("the front end ran a payload: {name}"));
        }
    }
    verdicts
}

#[test]
fn every_attribute_value_and_route_is_refused_where_it_came_in_or_taken() {
    let started = Instant::now();
    let mut failures = Vec::new();
    let attributes: Vec<&Attribute> = ATTRIBUTES.iter().collect();
    let (full, seed) = matrix_mode();
    let routes = |attribute: &Attribute, value: &Hostile| -> Vec<Route> {
        if full {
            return ROUTES.to_vec();
        }
        let a = ATTRIBUTES
            .iter()
            .position(|x| x.path == attribute.path)
            .unwrap() as u64;
        let v = VALUES.iter().position(|x| x.name == value.name).unwrap() as u64;
        let route = ROUTES[((a + v + seed) % ROUTES.len() as u64) as usize];
        vec![if expressible(value, route) {
            route
        } else {
            Route::VarFile
        }]
    };
    // Two workers, one per core.
    let (first, second) = attributes.split_at(attributes.len() / 2);
    let (mut verdicts, more) = std::thread::scope(|scope| {
        let other = scope.spawn(|| {
            let mut failures = Vec::new();
            let verdicts = front_end_matrix(second, &routes, &mut failures);
            (verdicts, failures)
        });
        let verdicts = front_end_matrix(first, &routes, &mut failures);
        let (more, more_failures) = other.join().unwrap();
        failures.extend(more_failures);
        (verdicts, more)
    });
    verdicts.extend(more);
    // The verdict does not depend on the route.
    for attribute in ATTRIBUTES {
        for value in VALUES {
            let accepted: BTreeSet<bool> = ROUTES
                .iter()
                .filter_map(|r| verdicts.get(&(attribute.path, value.name, *r)))
                .map(|v| *v == Verdict::Accepted)
                .collect();
            if accepted.len() > 1 {
                failures.push(format!(
                    "{} × {}: accepted by some routes and refused by others",
                    attribute.path, value.name
                ));
            }
        }
    }
    let accepted = verdicts
        .values()
        .filter(|v| **v == Verdict::Accepted)
        .count();
    eprintln!(
        "hostile matrix, front end: {} combinations of {} attributes × {} values × {}, \
         {accepted} accepted, {} refused, in {:.1}s",
        verdicts.len(),
        ATTRIBUTES.len(),
        VALUES.len(),
        if full {
            format!("{} routes ({FULL_VARIABLE}=1)", ROUTES.len())
        } else {
            format!("one route each, rotating with {SEED_VARIABLE}={seed}")
        },
        verdicts.len() - accepted,
        started.elapsed().as_secs_f64()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The real binary in `dir` with `args`, given `value` by `route` (a var
/// file is written to `vars_dir`).
fn slipway_with(dir: &Path, args: &[&str], route: Route, value: &str, vars_dir: &Path) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_slipway"));
    command
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .env("NO_COLOR", "1");
    match route {
        Route::Var => {
            command.args(["-var", &format!("value={value}")]);
        }
        Route::VarFile => {
            let file = vars_dir.join("value.vars.hcl");
            std::fs::write(&file, format!("value = {}\n", hcl_literal(value))).unwrap();
            command.arg("-var-file").arg(file);
        }
        Route::Environment => {
            command.env("SLIPWAY_VAR_value", value);
        }
    }
    command.output().unwrap()
}

/// The line of each `error[...]: FILE:LINE:COL` header the binary printed:
/// `Ok(Some(line))` in `main.hcl`, `Ok(None)` in the var file, `Err(header)`
/// anywhere else or nowhere.
fn error_locations(log: &str) -> Vec<Result<Option<usize>, String>> {
    log.lines()
        .filter(|l| l.starts_with("error["))
        .map(|header| {
            if header.contains("value.vars.hcl:") {
                return Ok(None);
            }
            let Some((_, rest)) = header.split_once("main.hcl:") else {
                return Err(header.chars().take(200).collect());
            };
            let line: String = rest.chars().take_while(char::is_ascii_digit).collect();
            line.parse().map(Some).map_err(|_| header.to_string())
        })
        .collect()
}

// ---------------------------------------------------------------------------
// 3. The binary: apply every accepted value, per route and transport
// ---------------------------------------------------------------------------

/// Everything under `dir` (relative path → content, link target or
/// directory), links not followed, leaving out relative paths for which
/// `skip` holds (and what is below them).
fn tree(dir: &Path, skip: &dyn Fn(&Path) -> bool) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(
        root: &Path,
        dir: &Path,
        skip: &dyn Fn(&Path) -> bool,
        out: &mut BTreeMap<PathBuf, Vec<u8>>,
    ) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            let relative = path.strip_prefix(root).unwrap().to_path_buf();
            if skip(&relative) {
                continue;
            }
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&path).unwrap();
                out.insert(relative, format!("link {}", target.display()).into_bytes());
            } else if meta.is_dir() {
                out.insert(relative, b"dir".to_vec());
                walk(root, &path, skip, out);
            } else {
                out.insert(relative, std::fs::read(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, skip, &mut out);
    out
}

/// Names of the paths that differ between two trees.
fn changed(before: &BTreeMap<PathBuf, Vec<u8>>, after: &BTreeMap<PathBuf, Vec<u8>>) -> Vec<String> {
    let paths: BTreeSet<&PathBuf> = before.keys().chain(after.keys()).collect();
    paths
        .into_iter()
        .filter(|p| before.get(*p) != after.get(*p))
        .map(|p| p.display().to_string())
        .collect()
}

/// A systemd setting's value with `%%` undone.
fn unspecify(value: &str) -> String {
    value.replace("%%", "%")
}

/// The one double-quoted word of an `Environment=` value, C escapes decoded.
fn environment_word(value: &str) -> Option<String> {
    let inner = value.strip_prefix('"')?.strip_suffix('"')?;
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next()? {
            'n' => out.push('\n'),
            't' => out.push('\t'),
            'r' => out.push('\r'),
            'x' => {
                let hex: String = chars.by_ref().take(2).collect();
                out.push(char::from(u8::from_str_radix(&hex, 16).ok()?));
            }
            'u' => {
                let hex: String = chars.by_ref().take(4).collect();
                out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
            }
            other => out.push(other),
        }
    }
    Some(unspecify(&out))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    Local,
    Ssh,
}

/// One lab: a configuration directory, the host's root, and how slipway
/// reaches it.
struct ApplyLab {
    transport: Transport,
    work: tempfile::TempDir,
    config: PathBuf,
    canary: PathBuf,
    host_root: PathBuf,
    overrides: Vec<(&'static str, String)>,
    /// With the systemd unit only where the host's `/etc` is its own.
    _hosts: Option<SshHosts>,
}

impl ApplyLab {
    fn fixture(&self) -> Fixture {
        match self.transport {
            Transport::Local => VmLocal,
            Transport::Ssh => VmSsh,
        }
    }

    fn start(transport: Transport) -> Option<ApplyLab> {
        let work = tempfile::tempdir().unwrap();
        let config = work.path().join("config");
        let canary = work.path().join("canary");
        std::fs::create_dir(&canary).unwrap();
        std::fs::write(canary.join("keep"), "canary\n").unwrap();
        let (host_root, overrides, hosts) = match transport {
            Transport::Local => (config.join(".slipway/hosts/host-1"), Vec::new(), None),
            Transport::Ssh => {
                // A systemctl that only records its arguments: the test host
                // has no systemd.
                let bin = work.path().join("bin");
                let log = work.path().join("systemctl.log");
                crate::support::recording_stand_in(&bin, "systemctl", &log);
                let bash_env = work.path().join("bash_env");
                std::fs::write(
                    &bash_env,
                    format!("export PATH='{}':\"$PATH\"\n", bin.display()),
                )
                .unwrap();
                let hosts = SshHosts::start_with(
                    1,
                    HostOptions {
                        bash_env: Some(bash_env),
                        ..HostOptions::default()
                    },
                )?;
                let quoted = |s: &str| hcl_literal(s);
                let user =
                    String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout)
                        .unwrap()
                        .trim()
                        .to_string();
                let overrides = vec![
                    (
                        "environment.vm_hosts.hosts",
                        format!("[{}]", quoted(&hosts.hosts[0].address)),
                    ),
                    ("environment.vm_hosts.user", quoted(&user)),
                    (
                        "environment.vm_hosts.identity_file",
                        quoted(&hosts.identity_file().display().to_string()),
                    ),
                    (
                        "environment.vm_hosts.known_hosts_file",
                        quoted(&hosts.known_hosts().display().to_string()),
                    ),
                    ("environment.vm_hosts.connect_timeout", quoted("5s")),
                ];
                // The unit file goes to /etc/systemd/system, which is the
                // host's own (see the harness), never this machine's.
                (hosts.hosts[0].root.clone(), overrides, Some(hosts))
            }
        };
        write_config_dir(&config, "");
        std::fs::create_dir_all(host_root.join("etc")).unwrap();
        std::fs::write(host_root.join("etc/passwd"), "outside the service\n").unwrap();
        Some(ApplyLab {
            transport,
            work,
            config,
            canary,
            host_root,
            overrides,
            _hosts: hosts,
        })
    }

    /// Whether a path under the host's root is one of the service's own
    /// directories (or the unit directory), where apply may write.
    fn allowed_on_host(relative: &Path) -> bool {
        let text = relative.to_string_lossy();
        text.starts_with("opt/cmd")
            || text == "opt"
            || text.starts_with("opt/unit")
            || text.starts_with("etc/systemd")
    }

    /// The trees outside the allowed directories: the host root (less the
    /// service's directories), the configuration directory (less the state,
    /// the artifact cache, the local host's root and the `main.hcl` the test
    /// writes), and the canary directory.
    fn snapshot(&self) -> [BTreeMap<PathBuf, Vec<u8>>; 3] {
        let own = |p: &Path| {
            p.starts_with(".slipway/state")
                || p.starts_with(".slipway/artifacts")
                || p.starts_with(".slipway/hosts/host-1")
                || p.starts_with("main.hcl")
        };
        [
            tree(&self.host_root, &Self::allowed_on_host),
            tree(&self.config, &own),
            tree(&self.canary, &|_| false),
        ]
    }

    /// Write the configuration with `hostile` carrying the value and apply
    /// it with `value` given by `route`.
    fn apply(
        &self,
        hostile: &BTreeSet<&'static str>,
        round: usize,
        value: &str,
        route: Route,
    ) -> Output {
        let rendered = render(self.fixture(), Render::Apply, hostile, &self.overrides);
        std::fs::write(self.config.join("main.hcl"), rendered.text).unwrap();
        let round = format!("round={round}");
        slipway_with(
            &self.config,
            &["apply", ".", "-auto-approve", "-var", &round],
            route,
            value,
            self.work.path(),
        )
    }

    /// Where each accepted attribute's value was meant to go, read back.
    fn check_arrivals(
        &self,
        hostile: &BTreeSet<&'static str>,
        value: &str,
        stopped_here: bool,
    ) -> Vec<String> {
        let mut problems = Vec::new();
        let read = |path: &str| std::fs::read(self.host_root.join(path.trim_start_matches('/')));
        let cmd_dir = if hostile.contains("service.vm.install_dir") {
            format!("/opt/cmd{value}")
        } else {
            "/opt/cmd".to_string()
        };
        let unit =
            String::from_utf8_lossy(&read("/etc/systemd/system/unit.service").unwrap_or_default())
                .to_string();
        let setting = |key: &str| -> Option<String> {
            unit.lines()
                .find_map(|line| line.strip_prefix(&format!("{key}=")))
                .map(str::to_string)
        };
        for attribute in ATTRIBUTES.iter().filter(|a| hostile.contains(a.path)) {
            let arrived: Result<Vec<u8>, String> = match attribute.arrival {
                PlanOnly => continue,
                // The local transport has no systemd.
                UnitSetting(_) | UnitEnvironment if self.transport == Transport::Local => continue,
                // The stop command runs where a release was installed before.
                Seen("stop") if !stopped_here => continue,
                ReleaseVersion => read(&format!("{cmd_dir}/.slipway/release.json"))
                    .map_err(|e| e.to_string())
                    .and_then(|bytes| {
                        let json: serde_json::Value =
                            serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
                        Ok(json["version"].as_str().unwrap_or("").as_bytes().to_vec())
                    }),
                InstallDir => read(&format!("{cmd_dir}/.slipway/release.json"))
                    .map(|_| value.as_bytes().to_vec())
                    .map_err(|e| format!("no release in {cmd_dir:?}: {e}")),
                Seen(name) => read(&format!("{cmd_dir}/seen-{name}")).map_err(|e| e.to_string()),
                FileContent(path) => read(path).map_err(|e| e.to_string()),
                Destination => read(&format!("/opt/unit/config/app{value}.env"))
                    .map(|_| value.as_bytes().to_vec())
                    .map_err(|e| e.to_string()),
                ConfigDir => read(&format!("/opt/unit-conf{value}/extra.conf"))
                    .map(|_| value.as_bytes().to_vec())
                    .map_err(|e| e.to_string()),
                UnitSetting(key) => setting(key)
                    .map(|v| unspecify(&v).into_bytes())
                    .ok_or_else(|| format!("no {key}= in the unit:\n{unit}")),
                UnitEnvironment => setting("Environment")
                    .and_then(|v| environment_word(&v))
                    .and_then(|w| w.strip_prefix("APP_VALUE=").map(str::to_string))
                    .map(String::into_bytes)
                    .ok_or_else(|| format!("no Environment= in the unit:\n{unit}")),
            };
            match arrived {
                Ok(bytes) if bytes == value.as_bytes() => {}
                Ok(bytes) => problems.push(format!(
                    "{}: arrived as {:?} (of {} bytes)",
                    attribute.path,
                    String::from_utf8_lossy(&bytes[..bytes.len().min(200)]),
                    bytes.len()
                )),
                Err(problem) => problems.push(format!("{}: {problem}", attribute.path)),
            }
        }
        problems
    }

    /// Remove what the commands wrote, so that each apply shows its own.
    fn clear_seen(&self) {
        let opt = self.host_root.join("opt");
        for entry in std::fs::read_dir(&opt).into_iter().flatten() {
            let dir = entry.unwrap().path();
            for file in std::fs::read_dir(&dir).into_iter().flatten() {
                let file = file.unwrap().path();
                if file
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("seen-")
                {
                    std::fs::remove_file(file).unwrap();
                }
            }
        }
    }
}

/// Every applicable attribute that takes `value` alone (given in a var
/// file: step 1 shows the verdict does not depend on the route).
fn accepted_alone(
    fixture: Fixture,
    mode: Render,
    value: &str,
    dir: &Path,
) -> BTreeSet<&'static str> {
    write_config_dir(dir, "");
    let vars = dir.join("vars");
    let canary = dir.join("canary");
    std::fs::create_dir_all(&vars).unwrap();
    std::fs::create_dir_all(&canary).unwrap();
    ATTRIBUTES
        .iter()
        .filter(|a| a.arrival != PlanOnly)
        .filter(|a| fixture_text(fixture, mode).contains(&token(a.path)))
        .filter(|a| {
            matches!(
                front_end_in(fixture, dir, &vars, &canary, a, value, Route::VarFile),
                Ok(Verdict::Accepted)
            )
        })
        .map(|a| a.path)
        .collect()
}

fn apply_matrix(transport: Transport) {
    let started = Instant::now();
    let Some(lab) = ApplyLab::start(transport) else {
        return;
    };
    let scratch = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    let mut applies = 0;
    let mut combinations = 0;
    let mut round = 0;
    let mut previous_cmd_dir: Option<String> = None;
    let mut accepted: BTreeMap<String, BTreeSet<&'static str>> = BTreeMap::new();
    // A first release, so that every later apply stops one (stop command).
    let baseline = lab.apply(&BTreeSet::new(), round, "plain", Route::Var);
    assert_eq!(
        baseline.status.code(),
        Some(0),
        "{}",
        crate::support::text(&baseline)
    );
    for value in VALUES {
        for route in ROUTES {
            if !expressible(value, route) {
                continue;
            }
            let text = value_text(value, &lab.canary, route != Route::VarFile);
            let hostile = accepted
                .entry(text.clone())
                .or_insert_with(|| {
                    accepted_alone(lab.fixture(), Render::Apply, &text, scratch.path())
                })
                .clone();
            if hostile.is_empty() {
                continue;
            }
            round += 1;
            lab.clear_seen();
            let before = lab.snapshot();
            let output = lab.apply(&hostile, round, &text, route);
            applies += 1;
            combinations += hostile.len();
            let label = format!("{:?} × {} × {}", transport, value.name, route.name());
            let log = crate::support::text(&output);
            let shown: String = log
                .lines()
                .filter(|l| l.starts_with('[') || l.contains("error"))
                .map(|l| l.chars().take(300).collect::<String>())
                .collect::<Vec<_>>()
                .join("\n");
            if output.status.code() != Some(0) {
                failures.push(format!("{label}: apply failed:\n{shown}"));
                continue;
            }
            if log.contains('\u{1b}') || log.contains('\u{7}') {
                failures.push(format!("{label}: a raw escape byte was printed"));
            }
            let cmd_dir = hostile
                .contains("service.vm.install_dir")
                .then(|| text.clone());
            let stopped_here = cmd_dir == previous_cmd_dir;
            previous_cmd_dir = cmd_dir;
            for problem in lab.check_arrivals(&hostile, &text, stopped_here) {
                failures.push(format!("{label}: {problem}"));
            }
            let after = lab.snapshot();
            for (name, (b, a)) in ["host root", "configuration", "canary"]
                .iter()
                .zip(before.iter().zip(after.iter()))
            {
                let differ = changed(b, a);
                if !differ.is_empty() {
                    failures.push(format!(
                        "{label}: outside the allowed directories, {name} changed: {differ:?}"
                    ));
                }
            }
            for marker in MARKERS {
                if lab.canary.join(marker).exists() {
                    failures.push(format!("{label}: a payload ran ({marker})"));
                }
            }
        }
    }
    if lab.transport == Transport::Ssh {
        let calls =
            std::fs::read_to_string(lab.work.path().join("systemctl.log")).unwrap_or_default();
        assert!(
            calls.contains("daemon-reload") && calls.contains("start unit.service"),
            "the unit was installed and started over SSH: {calls}"
        );
    }
    eprintln!(
        "hostile matrix, apply over {transport:?}: {applies} applies, {combinations} (attribute, value, route) combinations, in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_accepted_value_arrives_exactly_on_the_local_transport() {
    apply_matrix(Transport::Local);
}

#[test]
fn every_accepted_value_arrives_exactly_over_ssh() {
    apply_matrix(Transport::Ssh);
}
