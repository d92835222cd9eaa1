//! Executing `slipway rollback`: the state records around the executors.
//!
//! [`record_start`] writes, once the executor found that every target can go
//! back (nothing is changed before), that the deployment moves to the
//! release the [`RollbackPlan`] names and why (`rolled_back_from`), with a
//! history entry (operation `rollback`); [`record_end`] writes how it ended.
//! The hosts and services are changed by `vm::roll_back_to_release` and
//! `ecs::roll_back_to_release`; the plan is made by
//! [`crate::plan::rollback`].

use super::{ApplyOptions, DeploymentOutcome, Recorder};
use crate::plan::rollback::{RollbackPlan, RollbackTarget};
use crate::state::lock::now_rfc3339;
use crate::state::{
    DeploymentStatus, HistoryEntry, HistoryOperation, HistoryResult, RollbackRecord, StateError,
};

/// Record that the rollback starts: the deployment's record says the
/// release's version, files and unit, in progress, moved by this rollback;
/// apply will not deploy the version left (`rolled_back_from`). An
/// interrupted rollback that this one finishes keeps its record.
pub fn record_start(
    recorder: &Recorder,
    plan: &RollbackPlan,
    options: &ApplyOptions,
) -> Result<(), StateError> {
    let now = now_rfc3339();
    recorder.update(|state| {
        if let Some(deployment) = state.deployments.get_mut(&plan.address) {
            if !plan.resumes && plan.from_version != plan.to.version {
                deployment.rolled_back_from = Some(RollbackRecord {
                    version: plan.from_version.clone(),
                    to_version: plan.to.version.clone(),
                    by: options.who.clone(),
                    at: now.clone(),
                    apply_id: options.apply_id.clone(),
                });
            }
            deployment.version = plan.to.version.clone();
            deployment.artifact_sha256 = plan.to.artifact_sha256.clone();
            if let RollbackTarget::Vm { .. } = plan.target {
                deployment.config_files = plan.to.config_files.clone();
                deployment.systemd_unit = plan.to.systemd_unit.clone();
            }
            deployment.rollout_id = Some(options.apply_id.clone());
            deployment.status = DeploymentStatus::InProgress;
            deployment.verified = false;
            deployment.approvals.clear();
            deployment.gates.clear();
            deployment.updated_at = now.clone();
        }
        // An earlier rollback of this deployment that never ended was
        // killed: history says so.
        for earlier in state.history.iter_mut().filter(|e| {
            e.operation == HistoryOperation::Rollback
                && e.finished_at.is_none()
                && e.versions.contains_key(&plan.address)
        }) {
            earlier.result = HistoryResult::Interrupted;
        }
        state.history.push(HistoryEntry {
            apply_id: options.apply_id.clone(),
            operation: HistoryOperation::Rollback,
            who: options.who.clone(),
            started_at: now.clone(),
            finished_at: None,
            plan_digest: None,
            versions: [(plan.address.clone(), plan.to.version.clone())].into(),
            result: HistoryResult::InProgress,
            approvals: Vec::new(),
        });
    })
}

/// Record how the rollback ended: deployed and verified (the release passed
/// its gates when it was deployed, and every host passed its health checks
/// now) when nothing failed; failed otherwise, or partial when an interrupt
/// stopped it (an error of the executor, whatever its type, is a failure).
/// The history entry gets its result, and this rollback's journal entries go
/// (history has it).
pub fn record_end<E>(
    recorder: &Recorder,
    plan: &RollbackPlan,
    options: &ApplyOptions,
    outcome: &Result<DeploymentOutcome, E>,
) -> Result<(), StateError> {
    let (status, result) = match outcome {
        Ok(o) if o.failures.is_empty() => (DeploymentStatus::Deployed, HistoryResult::Succeeded),
        Ok(o) if o.interrupted && o.hosts_not_rolled_back == 0 => {
            (DeploymentStatus::Partial, HistoryResult::Interrupted)
        }
        _ => (DeploymentStatus::Failed, HistoryResult::Failed),
    };
    let now = now_rfc3339();
    recorder.update(|state| {
        let Some(entry) = state
            .history
            .iter_mut()
            .rev()
            .find(|e| e.apply_id == options.apply_id)
        else {
            // The rollback changed nothing (refused before it started).
            return;
        };
        entry.result = result;
        entry.finished_at = Some(now.clone());
        // This rollback's steps, and the finished steps of rollbacks of
        // this deployment that were killed, are in history now.
        let killed: Vec<String> = state
            .history
            .iter()
            .filter(|e| e.operation == HistoryOperation::Rollback && e.finished_at.is_none())
            .filter(|e| e.versions.contains_key(&plan.address))
            .map(|e| e.apply_id.clone())
            .collect();
        state.journal.retain(|e| {
            e.apply_id != options.apply_id
                && !(killed.contains(&e.apply_id) && e.finished_at.is_some())
        });
        if let Some(deployment) = state.deployments.get_mut(&plan.address) {
            if status == DeploymentStatus::Deployed {
                // What serves now is the newest release: a rollback from
                // the next version goes back to it.
                if let Some(at) = deployment
                    .releases
                    .iter()
                    .position(|r| r.same_release(&plan.to))
                {
                    let release = deployment.releases.remove(at);
                    deployment.releases.push(release);
                }
            }
            deployment.verified = status == DeploymentStatus::Deployed;
            deployment.status = status;
            deployment.updated_at = now.clone();
        }
    })
}
