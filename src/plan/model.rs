//! The plan as inert, versioned data.
//!
//! A [`Plan`] is what `slipway plan` computes and what `-out FILE` saves. It holds
//! no behaviour beyond small helpers: the planner builds it, the views render it,
//! apply executes it. Its JSON form is documented in `docs/plan-json.md` and is
//! versioned by [`FORMAT_VERSION`]; a change that removes or renames a field bumps
//! the major number.

use serde::{Deserialize, Serialize};

pub use crate::config::choices::{OnFailure, Strategy};
pub use crate::config::units::DurationText;

/// Version of the plan JSON document. Readers reject other major versions.
pub const FORMAT_VERSION: &str = "1.5";

/// Everything `plan` decided, in one value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub format_version: String,
    /// Version of slipway that made the plan.
    pub slipway_version: String,
    /// sha256 over the configuration files and the input variable values
    /// (sensitive values included in the digest, never in the plan).
    pub config_digest: String,
    /// The state each environment's decisions were made against.
    pub environments: Vec<EnvironmentBasis>,
    /// What the plan was made with: the `-environment` selection and the
    /// input variable values (sensitive ones as a digest only). Apply of a
    /// saved plan uses them, so nothing is typed again but sensitive values.
    /// Absent in plans of format 1.0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs: Option<PlanInputs>,
    /// One entry per deployment in configuration or in state, in schedule order.
    pub deployments: Vec<DeploymentChange>,
    /// The order apply will follow.
    pub schedule: Schedule,
    pub outputs: Vec<OutputValue>,
    pub summary: Summary,
    /// Observations that do not stop the plan (e.g. an interrupted apply).
    #[serde(default)]
    pub warnings: Vec<String>,
    /// `plan -refresh`: the VM hosts found otherwise than state records them,
    /// which the plan was computed from; apply records them so before it
    /// executes the plan. Left out when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drift: Vec<HostDrift>,
}

/// A VM host `plan -refresh` found otherwise than state recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostDrift {
    /// The deployment's address.
    pub deployment: String,
    pub host: String,
    #[serde(flatten)]
    pub found: HostFound,
}

/// What a drifted host was found running.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "found", rename_all = "snake_case")]
pub enum HostFound {
    /// `current` points at this release.
    Release { version: String },
    /// No `current`: nothing slipway installed runs.
    NoRelease,
    /// `current` is the recorded release, but its config files are not those
    /// of the recorded pair (changed on the host).
    ConfigChanged { version: String },
    /// `current` is the recorded release, but which config files the host
    /// has cannot be told: the update to the recorded pair did not finish
    /// and saved no snapshot of them.
    ConfigUnknown { version: String },
    /// The host could not be reached or read.
    Unreachable,
}

/// The saved state an environment's part of the plan was computed against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvironmentBasis {
    pub name: String,
    /// `None` when no state existed yet.
    pub state_serial: Option<u64>,
    pub state_lineage: Option<String>,
}

/// The selection and input values a plan was made with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanInputs {
    /// The environments `-environment` selected (state names, sorted);
    /// `None`: every environment.
    pub environments: Option<Vec<String>>,
    /// Every root variable given a value from outside the configuration
    /// (`-var`, var files, `SLIPWAY_VAR_*`), sorted by name. A variable that
    /// kept its default is not listed.
    pub variables: Vec<InputVariable>,
    /// The `secret` blocks read for the plan, sorted by name, each only as a
    /// digest of its value (format 1.4; empty: none read).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<InputSecret>,
}

/// A secret the plan was made with: its name and a salted scrypt digest of
/// its value (`config::secret_digest`, salted with the start of the
/// configuration digest and the name), so apply can tell whether the store
/// still holds the same value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputSecret {
    pub name: String,
    pub digest: String,
}

/// One input variable's value as the plan was made with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputVariable {
    pub name: String,
    pub sensitive: bool,
    /// The value (after conversion to the variable's type); `null` when
    /// sensitive: a sensitive value never reaches a plan.
    pub value: serde_json::Value,
    /// Sensitive only: hex SHA-256 over `salt`, the name and the value, so
    /// apply can check the value supplied again is the same one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Sensitive only: hex hashed with the value (the start of the plan's
    /// configuration digest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub salt: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Create,
    Update,
    NoOp,
    Destroy,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::NoOp => "no-op",
            Action::Destroy => "destroy",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetKind {
    Vm,
    Ecs,
}

/// What will happen to one deployment, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeploymentChange {
    /// `deployment.<name>` (or `module.<m>.deployment.<name>`).
    pub address: String,
    pub name: String,
    pub service: String,
    pub environment: String,
    pub rollout: Option<String>,
    pub target: TargetKind,
    pub action: Action,
    pub version_before: Option<String>,
    pub version_after: Option<String>,
    pub reasons: Vec<Reason>,
    /// ECS: a service of the deployment's name that exists in ECS but not in
    /// state, which the deployment takes over (see [`AdoptedService`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adopt: Option<AdoptedService>,
    /// The artifact apply deploys to VM hosts, pinned to its digest: apply
    /// sends exactly these bytes or refuses. Absent for ECS and destroys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact: Option<ArtifactPin>,
    /// `promote_from` is satisfied in this apply: the source deployment is
    /// in the same plan and moves to this version first. Apply starts this
    /// deployment only when state then records the source deployed and
    /// verified with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promotion: Option<PendingPromotion>,
    /// ECS: how many tasks the rollout runs and may need at its peak, and
    /// the autoscaling target that governs the count (see
    /// [`PlannedCapacity`]). Absent for VM deployments, destroys and plans
    /// of format 1.1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<PlannedCapacity>,
}

/// How many tasks an ECS rollout runs (`crate::plan::capacity`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedCapacity {
    /// The desired count the rollout gives the service (and, for a canary
    /// or blue/green, the new side).
    pub tasks: u32,
    /// The configuration's `desired_count` (1 when not set). Not used while
    /// an autoscaling target governs the service.
    pub configured: u32,
    /// The serving service's desired count when the plan was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live: Option<u32>,
    /// The Application Auto Scaling target on the service's desired count.
    /// Apply suspends its scaling while the rollout runs and restores it
    /// afterwards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scaling: Option<ScalingTarget>,
    /// The most tasks the deployment runs at once during the rollout: the
    /// serving tasks plus the new ones (a rolling update starts up to 200%).
    pub peak_tasks: u32,
}

/// An Application Auto Scaling target on an ECS service's desired count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScalingTarget {
    pub min: u32,
    pub max: u32,
}

/// What ECS and Application Auto Scaling said, at plan time, about the
/// serving service of an ECS deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveCapacity {
    /// The service's desired count; `None` when no such service runs.
    pub desired_count: Option<u32>,
    /// The scalable target on it, if one is registered.
    pub scaling: Option<ScalingTarget>,
}

/// A promotion the plan leaves to apply (see [`DeploymentChange::promotion`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingPromotion {
    /// The `promote_from` deployment's address.
    pub from: String,
    /// Its environment's state name.
    pub environment: String,
    /// The version it must verify first.
    pub version: String,
}

impl PendingPromotion {
    /// "promoted when deployment.X verifies V in this apply".
    pub fn describe(&self) -> String {
        format!(
            "promoted when {} verifies {} in this apply",
            self.from, self.version
        )
    }
}

/// A service that runs in ECS without a record in state (created outside
/// slipway, or before slipway's state began): the deployment adopts it. What
/// it runs at plan time is what a failed deployment puts it back on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdoptedService {
    pub cluster: String,
    pub service: String,
    pub task_definition_arn: String,
    /// In the JSON shape of state, sensitive values masked.
    pub task_definition: serde_json::Value,
    pub desired_count: u32,
    pub running_count: u32,
    /// The deployment's target group the service is registered with, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_group: Option<String>,
    /// The listener's weights by target group when the deployment has a listener.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub weights: std::collections::BTreeMap<String, u32>,
}

/// What ECS said, at plan time, about the service of a deployment that state
/// has no service for.
#[derive(Debug, Clone, PartialEq)]
pub enum LiveService {
    /// It runs: the deployment adopts it.
    Exists(AdoptedService),
    /// ECS could not be asked.
    Unknown(String),
}

/// An artifact pinned to the digest apply will deploy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactPin {
    /// The source as written, without credentials or query.
    pub source: String,
    pub sha256: String,
    /// The digest was not in the configuration: plan read it from the
    /// source (a mutable URL or S3 key), and apply refuses if the source
    /// holds other bytes by then.
    #[serde(default)]
    pub resolved_by_plan: bool,
    /// For an OCI image: the manifest digest the reference resolved to (the
    /// archive is its layers flattened).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_digest: Option<String>,
    /// How hosts get it: `push` (the runner sends it) or `pull` (each host
    /// downloads it from the source and checks its sha256). Format 1.5.
    #[serde(default = "push")]
    pub delivery: crate::config::ArtifactDelivery,
}

fn push() -> crate::config::ArtifactDelivery {
    crate::config::ArtifactDelivery::Push
}

/// One reason for a change. `diff` holds a unified diff where the reason is a
/// changed text (config file, systemd unit, task definition), sensitive values
/// already masked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reason {
    pub kind: ReasonKind,
    pub summary: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReasonKind {
    NewDeployment,
    RemovedFromConfig,
    ArtifactVersion,
    ArtifactDigest,
    ConfigFile,
    SystemdUnit,
    TaskDefinition,
    DesiredCount,
    HostsAdded,
    HostsRemoved,
    HostsPending,
    /// Every target is on the version but the rollout has not ended: it
    /// waits for an approval or stopped after its last step.
    RolloutUnfinished,
    RolloutPolicy,
    Drift,
    /// A service that exists in ECS but not in state is taken over.
    AdoptService,
    /// ECS: the listener's weights differ from the weights state recorded
    /// (changed behind slipway's back); apply sets them back first.
    ListenerWeights,
    /// ECS: how many tasks the rollout runs, at most how many at once, and
    /// the autoscaling it respects. Says what happens; never a change by
    /// itself.
    Capacity,
}

/// The order apply follows: waves run one after another; the deployments of a
/// wave may run in parallel.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Schedule {
    pub waves: Vec<Wave>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Wave {
    /// 1-based.
    pub index: usize,
    pub deployments: Vec<ScheduledDeployment>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduledDeployment {
    pub address: String,
    pub action: Action,
    pub strategy: ScheduledStrategy,
    pub steps: Vec<Step>,
    /// What apply does when a step fails.
    pub on_failure: OnFailure,
    /// What rollback would do, in one sentence.
    pub rollback: String,
    /// The environment is protected: apply needs an explicit approval first.
    pub needs_approval_before_start: bool,
    /// The scheduled deployments this one waits for, directly or through
    /// others (`depends_on`, `promote_from`): when one of them fails or
    /// stops at an approval, this one does not start; deployments that do
    /// not wait for it still run. Absent in plans saved before 1.1 recorded
    /// it: then a failure stops every later wave.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Vec<String>>,
    /// What the rollout does after its last step has passed. Absent when
    /// the steps are all of it (and in plans saved before 1.3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_with: Option<RolloutEnd>,
}

/// What a rollout does after its last step has passed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RolloutEnd {
    /// ECS canary or blue/green: `service`, which serves and keeps its name
    /// (and so its autoscaling target, alarms and dashboards), is updated
    /// to the new version in place while `temporary` carries all the
    /// traffic; then it takes all the traffic back and `temporary` is
    /// removed.
    UpdateInPlace { service: String, temporary: String },
}

crate::config::choices::choice! {
    /// How a scheduled deployment moves: its rollout's strategy, or `remove`
    /// for a deployment that is no longer in the configuration.
    pub enum ScheduledStrategy {
        AllAtOnce = "all_at_once",
        Rolling = "rolling",
        Canary = "canary",
        BlueGreen = "blue_green",
        Remove = "remove",
    }
}

impl From<Strategy> for ScheduledStrategy {
    fn from(strategy: Strategy) -> Self {
        match strategy {
            Strategy::AllAtOnce => ScheduledStrategy::AllAtOnce,
            Strategy::Rolling => ScheduledStrategy::Rolling,
            Strategy::Canary => ScheduledStrategy::Canary,
            Strategy::BlueGreen => ScheduledStrategy::BlueGreen,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// 1-based.
    pub index: usize,
    #[serde(flatten)]
    pub kind: StepKind,
    /// Wait after the step before its gates are judged, e.g. `5m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bake: Option<DurationText>,
    pub gates: Vec<Gate>,
    /// Name of the approval apply waits for after this step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StepKind {
    /// VM: these hosts are deployed together.
    HostBatch { hosts: Vec<String> },
    /// ECS: the new version receives this share of traffic (or of tasks).
    TrafficShift { percent: u32 },
    /// ECS rolling: update the service and wait for the deployment to finish.
    ServiceUpdate { desired_count: u32 },
    /// Destroy: stop tracking / remove what was deployed.
    Remove,
}

/// A verification gate judged after a step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gate {
    pub name: String,
    /// http | command | prometheus | cloudwatch | health
    pub kind: String,
    /// Human description of what is checked, sensitive values masked.
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputValue {
    pub name: String,
    /// `null` when sensitive (the value is never written into a plan).
    pub value: serde_json::Value,
    pub sensitive: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Summary {
    pub create: usize,
    pub update: usize,
    pub no_op: usize,
    pub destroy: usize,
}

impl Summary {
    pub fn has_changes(&self) -> bool {
        self.create + self.update + self.destroy > 0
    }

    /// `Plan: 2 to create, 3 to update, 0 to destroy.`
    pub fn line(&self) -> String {
        format!(
            "Plan: {} to create, {} to update, {} to destroy.",
            self.create, self.update, self.destroy
        )
    }
}

impl Plan {
    pub fn has_changes(&self) -> bool {
        self.summary.has_changes()
    }

    pub fn deployment(&self, address: &str) -> Option<&DeploymentChange> {
        self.deployments.iter().find(|d| d.address == address)
    }

    /// The protected environments this plan changes: those of the scheduled
    /// deployments that need an approval before they start. Apply asks for
    /// each (or takes `-approve ENV`) before it changes anything.
    pub fn protected_environments(&self) -> std::collections::BTreeSet<String> {
        self.schedule
            .waves
            .iter()
            .flat_map(|wave| wave.deployments.iter())
            .filter(|scheduled| scheduled.needs_approval_before_start)
            .filter_map(|scheduled| self.deployment(&scheduled.address))
            .map(|change| change.environment.clone())
            .collect()
    }
}
