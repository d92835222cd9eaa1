//! The saved state of one environment, as data.
//!
//! One [`State`] per environment: what was deployed where, and the append-only
//! history of applies. It never holds a secret: rendered texts are stored with
//! sensitive values masked. Storage (atomic writes, backups, locks) lives in the
//! backend modules, not here.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Major version of the state file format written by this build.
pub const STATE_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// Format version; always the first key of the file.
    pub version: u32,
    /// Incremented on every write.
    pub serial: u64,
    /// Random id fixed when the state is first created; never changes.
    pub lineage: String,
    pub environment: String,
    /// Keyed by deployment address (`deployment.<name>`).
    #[serde(default)]
    pub deployments: BTreeMap<String, DeploymentState>,
    /// Append-only audit trail.
    #[serde(default)]
    pub history: Vec<HistoryEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeploymentStatus {
    /// Every target is on `version`.
    Deployed,
    /// Some targets are on `version`, others are not (an apply stopped part-way).
    Partial,
    InProgress,
    Failed,
    RolledBack,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeploymentState {
    pub service: String,
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<String>,
    /// sha256 of the rollout policy as configured when last applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout_digest: Option<String>,
    pub status: DeploymentStatus,
    /// The version passed every verification gate (needed by `promote_from`).
    #[serde(default)]
    pub verified: bool,
    /// Rendered config files by destination, sensitive values masked.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config_files: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub systemd_unit: Option<String>,
    /// VM targets, keyed by host address.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub hosts: BTreeMap<String, HostState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ecs: Option<EcsState>,
    pub updated_at: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HostStatus {
    Pending,
    InProgress,
    Deployed,
    Failed,
    RolledBack,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostState {
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_sha256: Option<String>,
    pub status: HostStatus,
    pub updated_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EcsState {
    pub cluster: String,
    pub service_name: String,
    /// Task definition as registered (JSON, secrets only as ARNs).
    pub task_definition: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_definition_arn: Option<String>,
    pub desired_count: u32,
    /// Target group ARN → weight, as last set.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub weights: BTreeMap<String, u32>,
    /// The target group `service_name` serves, when it is behind a load balancer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_group: Option<String>,
    /// A canary or blue/green rollout in flight: the new service beside
    /// `service_name` and the share of traffic it had when last recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<CanaryState>,
}

/// The new side of a canary or blue/green rollout that has not finished.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CanaryState {
    pub service_name: String,
    pub target_group: String,
    pub task_definition_arn: String,
    pub percent: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub apply_id: String,
    /// apply | destroy | state-rm | state-push | migrate
    pub operation: String,
    pub who: String,
    pub started_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_digest: Option<String>,
    /// Deployment address → version applied.
    #[serde(default)]
    pub versions: BTreeMap<String, String>,
    /// succeeded | failed | rolled_back | interrupted
    pub result: String,
}

impl State {
    /// A fresh state for `environment` with a new lineage and serial 0.
    pub fn new(environment: &str) -> State {
        State {
            version: STATE_VERSION,
            serial: 0,
            lineage: uuid::Uuid::new_v4().to_string(),
            environment: environment.to_string(),
            deployments: BTreeMap::new(),
            history: Vec::new(),
        }
    }
}
