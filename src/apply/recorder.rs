//! The recorder: the one writer of an environment's state during an apply.
//!
//! Every change (a host starting, finishing, failing, rolling back) goes
//! through [`Recorder::update`], which changes the state in memory and writes it
//! atomically through the backend before returning, so a crash at any moment
//! leaves a state that says what happened up to that moment. It never holds a
//! secret: rendered texts arrive masked.

use std::sync::Mutex;

use sha2::{Digest, Sha256};

use super::{ApplyOptions, ApplySummary};
use crate::config::{Config, Deployment};
use crate::plan::planner::{desired_config_files, desired_systemd_unit, rollout_digest};
use crate::plan::Plan;
use crate::state::lock::now_rfc3339;
use crate::state::{
    ApprovalRecord, ApprovalStatus, Backend, DeploymentState, DeploymentStatus, HistoryEntry,
    HostState, HostStatus, PreviousRelease, State, StateError,
};

pub struct Recorder {
    backend: std::sync::Arc<dyn Backend>,
    state: Mutex<State>,
    started_at: String,
}

impl Recorder {
    pub fn new(backend: std::sync::Arc<dyn Backend>, state: State) -> Recorder {
        Recorder {
            backend,
            state: Mutex::new(state),
            started_at: now_rfc3339(),
        }
    }

    /// Change the state and write it before returning.
    pub fn update(&self, change: impl FnOnce(&mut State)) -> Result<(), StateError> {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        change(&mut state);
        self.backend.write(&mut state)
    }

    /// A copy of the state as it is now.
    pub fn snapshot(&self) -> State {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// The host's record, if any.
    pub fn host(&self, address: &str, host: &str) -> Option<HostState> {
        self.snapshot()
            .deployments
            .get(address)
            .and_then(|d| d.hosts.get(host).cloned())
    }

    /// Stop tracking a deployment (it left the configuration).
    pub fn forget(&self, address: &str) -> Result<(), StateError> {
        self.update(|state| {
            state.deployments.remove(address);
        })
    }

    /// Record that `deployment` starts moving to its configured version.
    pub fn start_deployment(
        &self,
        config: &Config,
        deployment: &Deployment,
    ) -> Result<(), StateError> {
        let now = now_rfc3339();
        self.update(|state| {
            let entry = state
                .deployments
                .entry(deployment.address.clone())
                .or_insert_with(|| DeploymentState {
                    service: deployment.service.address.clone(),
                    version: deployment.service.version.clone(),
                    artifact_sha256: None,
                    rollout: None,
                    rollout_digest: None,
                    status: DeploymentStatus::InProgress,
                    verified: false,
                    config_files: Default::default(),
                    systemd_unit: None,
                    hosts: Default::default(),
                    ecs: None,
                    approvals: Vec::new(),
                    gates: Vec::new(),
                    updated_at: now.clone(),
                });
            entry.service = deployment.service.address.clone();
            if entry.version != deployment.service.version {
                entry.gates.clear();
            }
            if entry.version != deployment.service.version {
                // Approvals are given for one version.
                entry.approvals.clear();
            }
            entry.version = deployment.service.version.clone();
            entry.artifact_sha256 = deployment
                .service
                .artifact
                .as_ref()
                .and_then(|a| a.sha256.clone());
            entry.rollout = deployment.rollout.clone();
            entry.rollout_digest = Some(rollout_digest(config.rollout_of(deployment)));
            entry.status = DeploymentStatus::InProgress;
            entry.verified = false;
            entry.config_files = desired_config_files(config, deployment);
            entry.systemd_unit = desired_systemd_unit(config, deployment);
            entry.updated_at = now;
        })
    }

    /// Record one host's status.
    pub fn set_host(
        &self,
        address: &str,
        host: &str,
        version: &str,
        sha256: Option<&str>,
        status: HostStatus,
    ) -> Result<(), StateError> {
        let now = now_rfc3339();
        self.update(|state| {
            if let Some(deployment) = state.deployments.get_mut(address) {
                let previous = match deployment.hosts.get(host) {
                    _ if status == HostStatus::RolledBack => None,
                    Some(before)
                        if before.version != version
                            && matches!(
                                before.status,
                                HostStatus::Deployed | HostStatus::RolledBack
                            ) =>
                    {
                        Some(PreviousRelease {
                            version: before.version.clone(),
                            artifact_sha256: before.artifact_sha256.clone(),
                        })
                    }
                    Some(before) => before.previous.clone(),
                    None => None,
                };
                deployment.hosts.insert(
                    host.to_string(),
                    HostState {
                        version: version.to_string(),
                        artifact_sha256: sha256.map(str::to_string),
                        status,
                        updated_at: now.clone(),
                        previous,
                    },
                );
                deployment.updated_at = now;
            }
        })
    }

    /// Record a judged verification gate; a result for the same gate and step
    /// (an earlier apply of the same version) is replaced.
    pub fn record_gate(
        &self,
        address: &str,
        result: crate::state::GateResult,
    ) -> Result<(), StateError> {
        self.update(|state| {
            if let Some(deployment) = state.deployments.get_mut(address) {
                deployment
                    .gates
                    .retain(|g| !(g.name == result.name && g.step == result.step));
                deployment.updated_at = result.judged_at.clone();
                deployment.gates.push(result);
            }
        })
    }

    /// Record how the deployment ended. `hosts` are the hosts it should run on
    /// now; records of other hosts are dropped (they left the environment).
    pub fn finish_deployment(
        &self,
        address: &str,
        status: DeploymentStatus,
        verified: bool,
        hosts: &[String],
    ) -> Result<(), StateError> {
        let now = now_rfc3339();
        self.update(|state| {
            if let Some(deployment) = state.deployments.get_mut(address) {
                deployment.status = status;
                deployment.verified = verified;
                deployment.hosts.retain(|host, _| hosts.contains(host));
                deployment.updated_at = now;
            }
        })
    }

    /// Record that the deployment stops after step `after_step` to wait for
    /// approval `name` of its current version.
    pub fn wait_for_approval(
        &self,
        address: &str,
        name: &str,
        after_step: u32,
        apply_id: &str,
    ) -> Result<(), StateError> {
        let now = now_rfc3339();
        self.update(|state| {
            if let Some(deployment) = state.deployments.get_mut(address) {
                let version = deployment.version.clone();
                deployment
                    .approvals
                    .retain(|a| !(a.name == name && a.version == version));
                deployment.approvals.push(ApprovalRecord {
                    name: name.to_string(),
                    after_step,
                    version,
                    status: ApprovalStatus::Waiting,
                    requested_by_apply: apply_id.to_string(),
                    requested_at: now.clone(),
                    decided_by: None,
                    decided_at: None,
                });
                deployment.status = DeploymentStatus::Partial;
                deployment.verified = false;
                deployment.updated_at = now;
            }
        })
    }

    /// Append this apply to the environment's history.
    pub fn finish(
        &self,
        options: &ApplyOptions,
        plan: &Plan,
        summary: &ApplySummary,
    ) -> Result<(), StateError> {
        let plan_digest = hex::encode(Sha256::digest(serde_json::to_vec(plan).unwrap_or_default()));
        let started_at = self.started_at.clone();
        self.update(|state| {
            let versions = plan
                .deployments
                .iter()
                .filter(|d| {
                    d.environment == state.environment && d.action != crate::plan::Action::NoOp
                })
                .map(|d| {
                    (
                        d.address.clone(),
                        d.version_after
                            .clone()
                            .unwrap_or_else(|| "(removed)".into()),
                    )
                })
                .collect();
            state.history.push(HistoryEntry {
                apply_id: options.apply_id.clone(),
                operation: "apply".into(),
                who: options.who.clone(),
                started_at,
                finished_at: Some(now_rfc3339()),
                plan_digest: Some(plan_digest),
                versions,
                approvals: state
                    .deployments
                    .values()
                    .flat_map(|d| d.approvals.iter())
                    .filter(|a| a.requested_by_apply == options.apply_id)
                    .cloned()
                    .collect(),
                result: if !summary.succeeded() && summary.hosts_rolled_back > 0 {
                    "rolled_back".into()
                } else if !summary.succeeded() {
                    "failed".into()
                } else if !summary.waiting.is_empty() {
                    "waiting_approval".into()
                } else {
                    "succeeded".into()
                },
            });
        })
    }
}
