//! The shape of every block of the language: which attributes (with their
//! types) and which nested blocks each one accepts.
//!
//! The schema is data. The loader checks raw blocks against it (unknown names,
//! missing required attributes, label counts) and the evaluator checks each
//! value's type against it. This module does not evaluate anything.

use super::choices::{
    ArtifactDelivery, Baseline, CommandOn, Direction, HookWhen, HostKeyPolicy, LaunchType,
    NetworkMode, NoData, NotifyFormat, OnFailure, Strategy, TransportKind,
};

/// The type an attribute's value must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    String,
    Number,
    Bool,
    /// Any list.
    List,
    /// An object / map.
    Map,
    /// A list of strings.
    StringList,
    /// A map whose values are strings, numbers or bools.
    StringMap,
    /// A duration like `30s`, `5m`, `1h30m`, `500ms`.
    Duration,
    /// A percentage like `25%`.
    Percent,
    /// A list of percentages (canary steps).
    PercentList,
    /// A whole number or a percentage (`2`, `"25%"`).
    CountOrPercent,
    /// A list of whole numbers or percentages (rolling batches).
    BatchList,
    /// One of a fixed set of strings.
    OneOf(&'static [&'static str]),
    /// A reference to a block of the named kind, e.g. `service.web`; not evaluated.
    Ref(&'static str),
    /// A list of references to blocks of the named kind.
    RefList(&'static str),
    /// Anything.
    Any,
}

impl Ty {
    pub fn describe(self) -> String {
        match self {
            Ty::String => "a string".into(),
            Ty::Number => "a number".into(),
            Ty::Bool => "a bool (true or false)".into(),
            Ty::List => "a list".into(),
            Ty::Map => "a map (object)".into(),
            Ty::StringList => "a list of strings".into(),
            Ty::StringMap => "a map of strings".into(),
            Ty::Duration => "a duration such as \"30s\", \"5m\" or \"1h30m\"".into(),
            Ty::Percent => "a percentage such as \"25%\"".into(),
            Ty::PercentList => "a list of percentages such as [\"10%\", \"50%\", \"100%\"]".into(),
            Ty::CountOrPercent => "a whole number or a percentage such as \"25%\"".into(),
            Ty::BatchList => {
                "a list of host counts or percentages such as [1, \"25%\", \"100%\"]".into()
            }
            Ty::OneOf(options) => format!("one of {}", quoted_list(options)),
            Ty::Ref(kind) => format!("a reference such as {kind}.NAME"),
            Ty::RefList(kind) => format!("a list of references such as [{kind}.NAME]"),
            Ty::Any => "any value".into(),
        }
    }
}

pub fn quoted_list(options: &[&str]) -> String {
    options
        .iter()
        .map(|o| format!("\"{o}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

#[derive(Debug, Clone, Copy)]
pub struct AttrSpec {
    pub name: &'static str,
    pub ty: Ty,
    pub required: bool,
}

#[derive(Debug, Clone, Copy)]
pub struct BlockSpec {
    pub name: &'static str,
    /// Names of the labels the block takes, e.g. `["NAME"]`.
    pub labels: &'static [&'static str],
    /// May appear more than once (then its label must be unique).
    pub repeatable: bool,
    pub schema: &'static Schema,
}

#[derive(Debug, Clone, Copy)]
pub struct Schema {
    pub attrs: &'static [AttrSpec],
    pub blocks: &'static [BlockSpec],
    /// Accepts attributes of any name (`locals`, `module` inputs).
    pub open: bool,
}

impl Schema {
    pub fn attr(&self, name: &str) -> Option<&AttrSpec> {
        self.attrs.iter().find(|a| a.name == name)
    }

    pub fn block(&self, name: &str) -> Option<&BlockSpec> {
        self.blocks.iter().find(|b| b.name == name)
    }
}

const fn req(name: &'static str, ty: Ty) -> AttrSpec {
    AttrSpec {
        name,
        ty,
        required: true,
    }
}

const fn opt(name: &'static str, ty: Ty) -> AttrSpec {
    AttrSpec {
        name,
        ty,
        required: false,
    }
}

const fn one(name: &'static str, schema: &'static Schema) -> BlockSpec {
    BlockSpec {
        name,
        labels: &[],
        repeatable: false,
        schema,
    }
}

const fn named(name: &'static str, schema: &'static Schema) -> BlockSpec {
    BlockSpec {
        name,
        labels: &["NAME"],
        repeatable: true,
        schema,
    }
}

const fn closed(attrs: &'static [AttrSpec], blocks: &'static [BlockSpec]) -> Schema {
    Schema {
        attrs,
        blocks,
        open: false,
    }
}

// ---- top level -------------------------------------------------------------

pub static ROOT: Schema = closed(
    &[],
    &[
        one("slipway", &SLIPWAY),
        named("variable", &VARIABLE),
        named("secret", &SECRET),
        BlockSpec {
            name: "locals",
            labels: &[],
            repeatable: true,
            schema: &OPEN,
        },
        named("service", &SERVICE),
        named("environment", &ENVIRONMENT),
        named("rollout", &ROLLOUT),
        named("deployment", &DEPLOYMENT),
        named("module", &MODULE),
        named("output", &OUTPUT),
    ],
);

pub static OPEN: Schema = Schema {
    attrs: &[],
    blocks: &[],
    open: true,
};

pub static SLIPWAY: Schema = closed(
    &[
        opt("required_version", Ty::String),
        opt("ca_file", Ty::String),
    ],
    &[BlockSpec {
        name: "backend",
        labels: &["TYPE"],
        repeatable: false,
        schema: &BACKEND,
    }],
);

pub static BACKEND: Schema = closed(
    &[
        opt("path", Ty::String),
        opt("bucket", Ty::String),
        opt("prefix", Ty::String),
        opt("region", Ty::String),
        opt("endpoint", Ty::String),
        opt("profile", Ty::String),
    ],
    &[],
);

pub static VARIABLE: Schema = closed(
    &[
        opt("type", Ty::Any),
        opt("default", Ty::Any),
        opt("sensitive", Ty::Bool),
        opt("description", Ty::String),
    ],
    &[BlockSpec {
        name: "validation",
        labels: &[],
        repeatable: true,
        schema: &VALIDATION,
    }],
);

/// `secret "NAME"`: exactly one of the two sources (checked by the loader,
/// which also refuses `json_key` and `version_stage` on a parameter).
pub static SECRET: Schema = closed(
    &[
        opt("aws_secrets_manager", Ty::String),
        opt("ssm_parameter", Ty::String),
        opt("json_key", Ty::String),
        opt("region", Ty::String),
        opt("version_stage", Ty::String),
    ],
    &[],
);

pub static VALIDATION: Schema = closed(
    &[req("condition", Ty::Bool), req("error_message", Ty::String)],
    &[],
);

pub static MODULE: Schema = Schema {
    attrs: &[req("source", Ty::String)],
    blocks: &[],
    open: true,
};

pub static OUTPUT: Schema = closed(
    &[
        req("value", Ty::Any),
        opt("sensitive", Ty::Bool),
        opt("description", Ty::String),
    ],
    &[],
);

// ---- service ---------------------------------------------------------------

pub static SERVICE: Schema = closed(
    &[req("version", Ty::String), opt("description", Ty::String)],
    &[one("artifact", &ARTIFACT), one("vm", &VM), one("ecs", &ECS)],
);

pub static ARTIFACT: Schema = closed(
    &[
        req("source", Ty::String),
        opt("sha256", Ty::String),
        opt("headers", Ty::StringMap),
        opt("username", Ty::String),
        opt("password", Ty::String),
        opt("region", Ty::String),
        opt("delivery", Ty::OneOf(ArtifactDelivery::NAMES)),
    ],
    &[],
);

pub static VM: Schema = closed(
    &[
        req("install_dir", Ty::String),
        opt("run_as", Ty::String),
        opt("keep_releases", Ty::Number),
        opt("config_dirs", Ty::StringList),
        opt("start_command", Ty::String),
        opt("stop_command", Ty::String),
    ],
    &[
        BlockSpec {
            name: "systemd_unit",
            labels: &["UNIT"],
            repeatable: false,
            schema: &SYSTEMD_UNIT,
        },
        named("config_file", &CONFIG_FILE),
        named("precheck", &COMMAND_ONLY),
        named("health", &HEALTH),
        named("smoke", &COMMAND_ONLY),
        named("hook", &HOOK),
    ],
);

pub static SYSTEMD_UNIT: Schema = closed(
    &[
        req("exec_start", Ty::String),
        opt("exec_stop", Ty::String),
        opt("user", Ty::String),
        opt("environment", Ty::StringMap),
        opt("restart", Ty::String),
        opt("after", Ty::StringList),
    ],
    &[],
);

pub static CONFIG_FILE: Schema = closed(
    &[
        req("destination", Ty::String),
        req("content", Ty::String),
        opt("mode", Ty::String),
        opt("owner", Ty::String),
    ],
    &[],
);

pub static COMMAND_ONLY: Schema = closed(&[req("command", Ty::String)], &[]);

pub static HEALTH: Schema = closed(
    &[
        opt("url", Ty::String),
        opt("command", Ty::String),
        opt("expect_status", Ty::Number),
        opt("timeout", Ty::Duration),
        opt("retries", Ty::Number),
        opt("interval", Ty::Duration),
    ],
    &[],
);

pub static HOOK: Schema = closed(
    &[
        req("when", Ty::OneOf(HookWhen::NAMES)),
        req("command", Ty::String),
    ],
    &[],
);

pub static ECS: Schema = closed(
    &[
        req("family", Ty::String),
        req("cpu", Ty::Number),
        req("memory", Ty::Number),
        opt("launch_type", Ty::OneOf(LaunchType::NAMES)),
        opt("network_mode", Ty::OneOf(NetworkMode::NAMES)),
        opt("execution_role_arn", Ty::String),
        opt("task_role_arn", Ty::String),
        opt("health_check_path", Ty::String),
    ],
    &[named("container", &CONTAINER)],
);

pub static CONTAINER: Schema = closed(
    &[
        req("image", Ty::String),
        opt("port", Ty::Number),
        opt("cpu", Ty::Number),
        opt("memory", Ty::Number),
        opt("essential", Ty::Bool),
        opt("command", Ty::StringList),
        opt("environment", Ty::StringMap),
        opt("secrets", Ty::StringMap),
    ],
    &[one("log", &LOG), one("health_check", &CONTAINER_HEALTH)],
);

pub static LOG: Schema = closed(
    &[req("driver", Ty::String), opt("options", Ty::StringMap)],
    &[],
);

pub static CONTAINER_HEALTH: Schema = closed(
    &[
        req("command", Ty::StringList),
        opt("interval", Ty::Duration),
        opt("timeout", Ty::Duration),
        opt("retries", Ty::Number),
    ],
    &[],
);

// ---- environment -----------------------------------------------------------

pub static ENVIRONMENT: Schema = closed(
    &[
        opt("protected", Ty::Bool),
        opt("variables", Ty::StringMap),
        opt("description", Ty::String),
    ],
    &[one("vm_hosts", &VM_HOSTS), one("ecs_cluster", &ECS_CLUSTER)],
);

pub static VM_HOSTS: Schema = closed(
    &[
        req("hosts", Ty::StringList),
        opt("user", Ty::String),
        opt("port", Ty::Number),
        opt("identity_file", Ty::String),
        opt("bastion", Ty::String),
        opt("host_key_policy", Ty::OneOf(HostKeyPolicy::NAMES)),
        opt("transport", Ty::OneOf(TransportKind::NAMES)),
        opt("root", Ty::String),
        opt("connect_timeout", Ty::Duration),
        opt("sudo", Ty::Bool),
        opt("known_hosts_file", Ty::String),
    ],
    &[one("load_balancer", &LOAD_BALANCER)],
);

pub static LOAD_BALANCER: Schema = closed(
    &[
        req("target_group_arn", Ty::String),
        opt("port", Ty::Number),
        opt("region", Ty::String),
        opt("endpoint", Ty::String),
    ],
    &[],
);

pub static ECS_CLUSTER: Schema = closed(
    &[
        req("cluster", Ty::String),
        opt("service_name", Ty::String),
        opt("region", Ty::String),
        opt("endpoint", Ty::String),
        opt("desired_count", Ty::Number),
        opt("listener_arn", Ty::String),
        opt("target_groups", Ty::StringList),
        opt("subnets", Ty::StringList),
        opt("security_groups", Ty::StringList),
        opt("assign_public_ip", Ty::Bool),
        opt("wait_timeout", Ty::Duration),
    ],
    &[],
);

// ---- rollout ---------------------------------------------------------------

pub static ROLLOUT: Schema = closed(
    &[
        req("strategy", Ty::OneOf(Strategy::NAMES)),
        opt("batches", Ty::BatchList),
        opt("steps", Ty::PercentList),
        opt("bake", Ty::Duration),
        opt("max_failures", Ty::CountOrPercent),
        opt("on_failure", Ty::OneOf(OnFailure::NAMES)),
        opt("description", Ty::String),
    ],
    &[
        named("verify", &VERIFY),
        named("approval", &APPROVAL),
        named("notify", &NOTIFY),
    ],
);

pub static VERIFY: Schema = closed(
    &[
        opt("min", Ty::Number),
        opt("max", Ty::Number),
        opt("baseline", Ty::OneOf(Baseline::NAMES)),
        opt("tolerance", Ty::Number),
        opt("direction", Ty::OneOf(Direction::NAMES)),
        opt("interval", Ty::Duration),
        opt("count", Ty::Number),
        opt("failure_limit", Ty::Number),
        opt("no_data", Ty::OneOf(NoData::NAMES)),
    ],
    &[
        one("http", &VERIFY_HTTP),
        one("command", &VERIFY_COMMAND),
        one("prometheus", &VERIFY_PROMETHEUS),
        one("cloudwatch", &VERIFY_CLOUDWATCH),
    ],
);

pub static VERIFY_HTTP: Schema = closed(
    &[
        req("url", Ty::String),
        opt("expect_status", Ty::Number),
        opt("body_contains", Ty::String),
        opt("json_path", Ty::String),
        opt("expect_value", Ty::Any),
        opt("timeout", Ty::Duration),
        opt("retries", Ty::Number),
    ],
    &[],
);

pub static VERIFY_COMMAND: Schema = closed(
    &[
        req("command", Ty::String),
        opt("on", Ty::OneOf(CommandOn::NAMES)),
    ],
    &[],
);

pub static VERIFY_PROMETHEUS: Schema =
    closed(&[req("address", Ty::String), req("query", Ty::String)], &[]);

pub static VERIFY_CLOUDWATCH: Schema = closed(
    &[
        opt("region", Ty::String),
        opt("endpoint", Ty::String),
        opt("alarm_name", Ty::String),
        opt("namespace", Ty::String),
        opt("metric_name", Ty::String),
        opt("statistic", Ty::String),
        opt("dimensions", Ty::StringMap),
    ],
    &[],
);

pub static APPROVAL: Schema = closed(
    &[
        req("after_step", Ty::Number),
        opt("approvers", Ty::StringList),
    ],
    &[],
);

pub static NOTIFY: Schema = closed(
    &[
        req("webhook", Ty::String),
        opt("format", Ty::OneOf(NotifyFormat::NAMES)),
        opt("on", Ty::StringList),
    ],
    &[],
);

// ---- deployment ------------------------------------------------------------

/// Per-deployment ECS settings: the ECS service this deployment runs as,
/// and its load balancer wiring. They override the environment's.
pub static DEPLOYMENT_ECS: Schema = closed(
    &[
        opt("service_name", Ty::String),
        opt("desired_count", Ty::Number),
        opt("listener_arn", Ty::String),
        opt("target_groups", Ty::StringList),
    ],
    &[],
);

pub static DEPLOYMENT: Schema = closed(
    &[
        req("service", Ty::Ref("service")),
        req("environment", Ty::Ref("environment")),
        opt("rollout", Ty::Ref("rollout")),
        opt("depends_on", Ty::RefList("deployment")),
        opt("promote_from", Ty::Ref("deployment")),
        opt("desired_count", Ty::Number),
    ],
    &[one("ecs", &DEPLOYMENT_ECS)],
);

/// Attributes into which a sensitive value may flow: they are masked in every
/// output and never stored in clear.
pub fn accepts_sensitive(block_path: &[&str], attr: &str) -> bool {
    matches!(
        (block_path.last().copied(), attr),
        (Some("config_file"), "content")
            | (Some("container"), "secrets")
            | (Some("artifact"), "headers")
            | (Some("artifact"), "password")
            | (Some("validation"), "condition")
    )
}
