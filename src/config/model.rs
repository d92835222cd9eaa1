//! The configuration as typed values, after evaluation and validation.
//!
//! Everything here is plain data: no expressions, no spans except where a later
//! stage (graph, planner) must point back into the source. Services are stored
//! per deployment (a service body is evaluated once for each deployment that uses
//! it, with that deployment's environment in scope).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::diagnostics::Span;

pub use super::choices::{
    ArtifactDelivery, Baseline, CommandOn, Direction, HookWhen, HostKeyPolicy, LaunchType,
    NetworkMode, NoData, NotifyFormat, OnFailure, Strategy, TransportKind,
};
pub use super::units::{DurationText, Percent};

/// A whole configuration: the root directory and every module it calls.
#[derive(Debug, Clone, Default)]
pub struct Config {
    pub root: PathBuf,
    pub backend: Backend,
    /// `slipway { ca_file }`, resolved against `root`: more certificate
    /// authorities every HTTPS request trusts (checked to hold PEM
    /// certificates when the configuration was loaded).
    pub ca_file: Option<PathBuf>,
    pub environments: BTreeMap<String, Environment>,
    pub rollouts: BTreeMap<String, Rollout>,
    /// Keyed by address (`deployment.NAME`, `module.M.deployment.NAME`).
    pub deployments: BTreeMap<String, Deployment>,
    pub outputs: Vec<Output>,
    /// sha256 over every configuration file read and the input variable values
    /// (each root variable given a value, by name; var files count by the values
    /// they give, not by their path).
    pub digest: String,
    /// The values the root variables were given from outside (`-var`, var
    /// files, `SLIPWAY_VAR_*`, a saved plan), by name; a variable that kept its
    /// default is not here. A saved plan carries these.
    pub inputs: BTreeMap<String, InputRecord>,
    /// Values of sensitive variables, for masking rendered texts. Never printed.
    pub sensitive_values: Vec<String>,
    /// The root configuration's `secret` blocks, by name (what they name,
    /// never a value).
    pub secrets: BTreeMap<String, super::secrets::SecretSpec>,
    /// The values of the secrets read for this load, by name: a saved plan
    /// keeps a salted digest of each (`plan::saved`). Never printed.
    pub secret_values: super::secrets::SecretValues,
}

/// A root variable's value given from outside the configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct InputRecord {
    /// The value after conversion to the variable's type. A sensitive one
    /// is never printed or written anywhere.
    pub value: serde_json::Value,
    pub sensitive: bool,
    /// Where it came from, for messages: `-var`, `SLIPWAY_VAR_x`, a var
    /// file's name, or `the saved plan`.
    pub origin: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "lowercase")]
pub enum Backend {
    Local {
        #[serde(default = "default_state_dir")]
        path: String,
    },
    S3 {
        bucket: String,
        #[serde(default)]
        prefix: String,
        region: Option<String>,
        endpoint: Option<String>,
        profile: Option<String>,
    },
}

fn default_state_dir() -> String {
    "state".to_string()
}

impl Default for Backend {
    fn default() -> Self {
        Backend::Local {
            path: default_state_dir(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Service {
    /// Address, e.g. `service.myapp`.
    #[serde(skip)]
    pub address: String,
    pub version: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub artifact: Option<Artifact>,
    #[serde(default)]
    pub vm: Option<VmSpec>,
    #[serde(default)]
    pub ecs: Option<EcsSpec>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Artifact {
    pub source: String,
    /// Configured; computed at load time for a local artifact; for a remote
    /// one without it, pinned by plan (see `artifact::remote`).
    #[serde(default)]
    pub sha256: Option<String>,
    /// Request headers for an http(s) source (a repository token); values
    /// are usually sensitive and are never serialized.
    #[serde(default, skip_serializing)]
    pub headers: std::collections::BTreeMap<String, String>,
    /// Basic auth for an http(s) source.
    #[serde(default, skip_serializing)]
    pub username: Option<String>,
    #[serde(default, skip_serializing)]
    pub password: Option<String>,
    /// The AWS region of an s3 source's bucket (else the standard chain's).
    #[serde(default)]
    pub region: Option<String>,
    /// How hosts get the artifact: as configured, and after validation
    /// always set (the source's default when not configured).
    #[serde(default)]
    pub delivery: Option<ArtifactDelivery>,
    /// `sha256` was not configured: plan resolved it from the source.
    #[serde(skip)]
    pub pinned_by_plan: bool,
    /// For an OCI image: the manifest digest plan resolved the tag to.
    #[serde(skip)]
    pub image_digest: Option<String>,
    /// The directory `source` is relative to (the configuration's or module's).
    #[serde(skip)]
    pub base_dir: PathBuf,
}

impl Artifact {
    /// How hosts get this artifact (validation sets the source's default
    /// when the configuration does not say).
    pub fn delivery(&self) -> ArtifactDelivery {
        self.delivery.unwrap_or(ArtifactDelivery::Push)
    }

    /// Whether the artifact carries credentials for its source (`headers`,
    /// `username`, or a `user:password@` in the URL), which never leave the
    /// runner.
    pub fn has_credentials(&self) -> bool {
        let in_url = url::Url::parse(&self.source)
            .is_ok_and(|url| !url.username().is_empty() || url.password().is_some());
        !self.headers.is_empty() || self.username.is_some() || in_url
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VmSpec {
    pub install_dir: String,
    #[serde(default)]
    pub run_as: Option<String>,
    #[serde(default = "default_keep_releases")]
    pub keep_releases: u32,
    #[serde(default)]
    pub config_dirs: Vec<String>,
    #[serde(default)]
    pub start_command: Option<String>,
    #[serde(default)]
    pub stop_command: Option<String>,
    #[serde(default)]
    pub systemd_unit: Option<SystemdUnit>,
    #[serde(default, rename = "config_file")]
    pub config_files: Vec<ConfigFile>,
    #[serde(default, rename = "precheck")]
    pub prechecks: Vec<NamedCommand>,
    #[serde(default)]
    pub health: Vec<HealthCheck>,
    #[serde(default)]
    pub smoke: Vec<NamedCommand>,
    #[serde(default, rename = "hook")]
    pub hooks: Vec<Hook>,
}

fn default_keep_releases() -> u32 {
    3
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SystemdUnit {
    pub name: String,
    pub exec_start: String,
    #[serde(default)]
    pub exec_stop: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    #[serde(default)]
    pub restart: Option<String>,
    #[serde(default)]
    pub after: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigFile {
    pub name: String,
    pub destination: String,
    /// Rendered content. May hold sensitive values: mask before showing or storing.
    pub content: String,
    #[serde(default)]
    pub mode: Option<String>,
    #[serde(default)]
    pub owner: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NamedCommand {
    pub name: String,
    pub command: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthCheck {
    pub name: String,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub command: Option<String>,
    #[serde(default)]
    pub expect_status: Option<u16>,
    #[serde(default)]
    pub timeout: Option<DurationText>,
    #[serde(default)]
    pub retries: Option<u32>,
    #[serde(default)]
    pub interval: Option<DurationText>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hook {
    pub name: String,
    pub when: HookWhen,
    pub command: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EcsSpec {
    pub family: String,
    pub cpu: u32,
    pub memory: u32,
    #[serde(default = "default_launch_type")]
    pub launch_type: LaunchType,
    #[serde(default = "default_network_mode")]
    pub network_mode: NetworkMode,
    #[serde(default)]
    pub execution_role_arn: Option<String>,
    #[serde(default)]
    pub task_role_arn: Option<String>,
    #[serde(default)]
    pub health_check_path: Option<String>,
    #[serde(default, rename = "container")]
    pub containers: Vec<Container>,
}

fn default_launch_type() -> LaunchType {
    LaunchType::Fargate
}

fn default_network_mode() -> NetworkMode {
    NetworkMode::Awsvpc
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Container {
    pub name: String,
    pub image: String,
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub cpu: Option<u32>,
    #[serde(default)]
    pub memory: Option<u32>,
    #[serde(default)]
    pub essential: Option<bool>,
    #[serde(default)]
    pub command: Vec<String>,
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    /// Name → Secrets Manager or SSM parameter ARN. Only the ARN is ever used.
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
    #[serde(default)]
    pub log: Option<LogConfig>,
    #[serde(default)]
    pub health_check: Option<ContainerHealth>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogConfig {
    pub driver: String,
    #[serde(default)]
    pub options: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerHealth {
    pub command: Vec<String>,
    #[serde(default)]
    pub interval: Option<DurationText>,
    #[serde(default)]
    pub timeout: Option<DurationText>,
    #[serde(default)]
    pub retries: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Environment {
    #[serde(skip)]
    pub address: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub protected: bool,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    #[serde(default)]
    pub vm_hosts: Option<VmHosts>,
    #[serde(default)]
    pub ecs_cluster: Option<EcsCluster>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VmHosts {
    pub hosts: Vec<String>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub identity_file: Option<String>,
    #[serde(default)]
    pub bastion: Option<String>,
    #[serde(default)]
    pub host_key_policy: HostKeyPolicy,
    #[serde(default)]
    pub transport: TransportKind,
    #[serde(default)]
    pub root: Option<String>,
    #[serde(default)]
    pub connect_timeout: Option<DurationText>,
    #[serde(default)]
    pub sudo: bool,
    /// Known hosts file for host-key checks (default `~/.ssh/known_hosts`).
    #[serde(default)]
    pub known_hosts_file: Option<String>,
    #[serde(default)]
    pub load_balancer: Option<LoadBalancer>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadBalancer {
    pub target_group_arn: String,
    /// The port targets are registered with (default: the target group's).
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub endpoint: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EcsCluster {
    pub cluster: String,
    /// ECS service name; per deployment when the environment runs several
    /// services (see [`Deployment::ecs_settings`]).
    #[serde(default)]
    pub service_name: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub endpoint: Option<String>,
    #[serde(default)]
    pub desired_count: Option<u32>,
    #[serde(default)]
    pub listener_arn: Option<String>,
    #[serde(default)]
    pub target_groups: Vec<String>,
    #[serde(default)]
    pub subnets: Vec<String>,
    #[serde(default)]
    pub security_groups: Vec<String>,
    #[serde(default)]
    pub assign_public_ip: bool,
    /// How long apply waits for an ECS deployment to become stable.
    #[serde(default)]
    pub wait_timeout: Option<DurationText>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rollout {
    #[serde(skip)]
    pub address: String,
    #[serde(default)]
    pub name: String,
    pub strategy: Strategy,
    /// Rolling batches: host counts or percentages; the last one repeats.
    #[serde(default)]
    pub batches: Vec<BatchSize>,
    /// Canary / blue-green steps as percentages.
    #[serde(default)]
    pub steps: Vec<Percent>,
    #[serde(default)]
    pub bake: Option<DurationText>,
    #[serde(default)]
    pub max_failures: Option<BatchSize>,
    #[serde(default)]
    pub on_failure: OnFailure,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub verify: Vec<Gate>,
    #[serde(default, rename = "approval")]
    pub approvals: Vec<Approval>,
    #[serde(default)]
    pub notify: Vec<Notify>,
}

/// A number of hosts, or a share of them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum BatchSize {
    Count(u64),
    Share(Percent),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gate {
    pub name: String,
    #[serde(default)]
    pub http: Option<HttpGate>,
    #[serde(default)]
    pub command: Option<CommandGate>,
    #[serde(default)]
    pub prometheus: Option<PrometheusGate>,
    #[serde(default)]
    pub cloudwatch: Option<CloudwatchGate>,
    #[serde(default)]
    pub min: Option<f64>,
    #[serde(default)]
    pub max: Option<f64>,
    #[serde(default)]
    pub baseline: Option<Baseline>,
    #[serde(default)]
    pub tolerance: Option<f64>,
    #[serde(default)]
    pub direction: Option<Direction>,
    #[serde(default)]
    pub interval: Option<DurationText>,
    #[serde(default)]
    pub count: Option<u32>,
    #[serde(default)]
    pub failure_limit: Option<u32>,
    #[serde(default)]
    pub no_data: NoData,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HttpGate {
    pub url: String,
    #[serde(default)]
    pub expect_status: Option<u16>,
    #[serde(default)]
    pub body_contains: Option<String>,
    #[serde(default)]
    pub json_path: Option<String>,
    #[serde(default)]
    pub expect_value: Option<serde_json::Value>,
    #[serde(default)]
    pub timeout: Option<DurationText>,
    #[serde(default)]
    pub retries: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandGate {
    pub command: String,
    #[serde(default)]
    pub on: Option<CommandOn>,
}

impl CommandGate {
    /// Where the command runs for a deployment with (`has_hosts`) or without
    /// hosts (ECS): as `on` says, on the hosts by default; without hosts
    /// always on the runner, since there is nowhere else to run it.
    pub fn runs_on(&self, has_hosts: bool) -> CommandOn {
        match self.on {
            _ if !has_hosts => CommandOn::Runner,
            Some(on) => on,
            None => CommandOn::Hosts,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrometheusGate {
    pub address: String,
    pub query: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CloudwatchGate {
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub endpoint: Option<String>,
    #[serde(default)]
    pub alarm_name: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub metric_name: Option<String>,
    #[serde(default)]
    pub statistic: Option<String>,
    #[serde(default)]
    pub dimensions: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Approval {
    pub name: String,
    pub after_step: u32,
    #[serde(default)]
    pub approvers: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notify {
    pub name: String,
    pub webhook: String,
    #[serde(default)]
    pub format: Option<NotifyFormat>,
    #[serde(default)]
    pub on: Vec<String>,
}

/// One service in one environment with one rollout.
#[derive(Debug, Clone, PartialEq)]
pub struct Deployment {
    pub address: String,
    pub name: String,
    /// The service as evaluated for this deployment's environment.
    pub service: Service,
    /// Environment address (`environment.NAME`).
    pub environment: String,
    /// Rollout address, `None` for the default all-at-once rollout.
    pub rollout: Option<String>,
    pub depends_on: Vec<DeploymentRef>,
    pub promote_from: Option<DeploymentRef>,
    pub desired_count: Option<u32>,
    /// The deployment's own ECS settings (`ecs { ... }` in the deployment).
    pub ecs: Option<DeploymentEcs>,
    pub span: Span,
    /// The `secret` blocks whose values its service uses, directly or
    /// through locals, module inputs and module outputs: the secrets a run
    /// that plans this deployment reads.
    pub secrets: std::collections::BTreeSet<String>,
}

/// ECS settings a deployment sets for itself, overriding its environment's.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeploymentEcs {
    #[serde(default)]
    pub service_name: Option<String>,
    #[serde(default)]
    pub desired_count: Option<u32>,
    #[serde(default)]
    pub listener_arn: Option<String>,
    #[serde(default)]
    pub target_groups: Vec<String>,
}

impl Deployment {
    /// Whether this deployment runs on ECS in `environment` rather than on
    /// VM hosts: its service has no VM install, or the environment has no
    /// VM hosts. (Validation makes sure such an environment has an
    /// `ecs_cluster`.)
    pub fn runs_on_ecs(&self, environment: &Environment) -> bool {
        self.service.vm.is_none() || environment.vm_hosts.is_none()
    }

    /// The environment's `ecs_cluster` with this deployment's own settings
    /// applied; the ECS service name defaults to the deployment's name.
    pub fn ecs_settings(&self, environment: &Environment) -> Option<EcsCluster> {
        let mut cluster = environment.ecs_cluster.clone()?;
        let own = self.ecs.clone().unwrap_or_default();
        cluster.service_name = Some(
            own.service_name
                .or(cluster.service_name)
                .unwrap_or_else(|| self.name.clone()),
        );
        cluster.desired_count = self
            .desired_count
            .or(own.desired_count)
            .or(cluster.desired_count);
        if own.listener_arn.is_some() {
            cluster.listener_arn = own.listener_arn;
        }
        if !own.target_groups.is_empty() {
            cluster.target_groups = own.target_groups;
        }
        Some(cluster)
    }
}

/// A reference to another deployment, with where it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct DeploymentRef {
    pub address: String,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    pub name: String,
    pub value: serde_json::Value,
    pub sensitive: bool,
    pub description: Option<String>,
}

impl Config {
    pub fn environment_of(&self, deployment: &Deployment) -> Option<&Environment> {
        self.environments.get(&deployment.environment)
    }

    pub fn rollout_of(&self, deployment: &Deployment) -> Option<&Rollout> {
        deployment
            .rollout
            .as_ref()
            .and_then(|r| self.rollouts.get(r))
    }

    /// Replace every sensitive value in `text` with `(sensitive)`.
    pub fn mask(&self, text: &str) -> String {
        mask_values(text, &self.sensitive_values)
    }

    /// Mask every string of a JSON value (object keys included). Masking
    /// the JSON text instead would miss a value JSON escapes (a quote, a
    /// newline) and could break the document.
    pub fn mask_json(&self, value: serde_json::Value) -> serde_json::Value {
        use serde_json::Value;
        match value {
            Value::String(text) => Value::String(self.mask(&text)),
            Value::Array(items) => {
                Value::Array(items.into_iter().map(|item| self.mask_json(item)).collect())
            }
            Value::Object(entries) => Value::Object(
                entries
                    .into_iter()
                    .map(|(key, item)| (self.mask(&key), self.mask_json(item)))
                    .collect(),
            ),
            other => other,
        }
    }
}

/// Replace every occurrence of each value with `(sensitive)`. Occurrences may
/// overlap (`abc` and `bcd` in `abcd`): every stretch of text covered by any
/// occurrence of any value becomes one `(sensitive)`, so no part of a value is
/// left beside the mask of another.
pub fn mask_values(text: &str, values: &[String]) -> String {
    let mut covered: Vec<(usize, usize)> = Vec::new();
    for value in values.iter().filter(|v| !v.is_empty()) {
        let mut from = 0;
        while let Some(found) = text[from..].find(value.as_str()) {
            let start = from + found;
            covered.push((start, start + value.len()));
            // The next occurrence may overlap this one: search again from the
            // next character.
            from = start + text[start..].chars().next().map_or(1, char::len_utf8);
        }
    }
    if covered.is_empty() {
        return text.to_string();
    }
    covered.sort_unstable();
    let mut masked = String::with_capacity(text.len());
    let mut shown_to = 0;
    let mut current: Option<(usize, usize)> = None;
    for (start, end) in covered {
        match current {
            Some((s, e)) if start <= e => current = Some((s, e.max(end))),
            Some((s, e)) => {
                masked.push_str(&text[shown_to..s]);
                masked.push_str("(sensitive)");
                shown_to = e;
                current = Some((start, end));
            }
            None => current = Some((start, end)),
        }
    }
    if let Some((s, e)) = current {
        masked.push_str(&text[shown_to..s]);
        masked.push_str("(sensitive)");
        shown_to = e;
    }
    masked.push_str(&text[shown_to..]);
    masked
}
