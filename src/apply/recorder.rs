//! The recorder: the one writer of an environment's state during an apply.
//!
//! Every change (a host starting, finishing, failing, rolling back) changes
//! the state in memory and is written through the backend before the call
//! returns, so a crash at any moment leaves a state that says what happened up
//! to that moment. A host step names the records it touched (its host's
//! record, its journal entries) and the backend may store just those
//! ([`crate::state::Backend::append`]), so that the write does not grow with
//! the fleet; every other change writes the whole state
//! ([`Recorder::update`]). It never holds a secret: rendered texts arrive
//! masked.
//!
//! It also keeps the apply's journal ([`crate::state::JournalEntry`]): a step is
//! written as started, in the same atomic write as the host or traffic record
//! it changes, before it runs, and as finished, with its result, after. An
//! apply that ends in order settles the journal into history
//! ([`Recorder::finish`]). It does not decide what a step does or whether a
//! step is needed; the executors do.

use std::sync::Mutex;

use sha2::{Digest, Sha256};

use super::{ApplyOptions, ApplySummary};
use crate::config::{Config, Deployment};
use crate::plan::planner::{desired_config_files, desired_systemd_unit, rollout_digest};
use crate::plan::Plan;
use crate::state::lock::now_rfc3339;
use crate::state::model::config_digest;
use crate::state::HostState;
use crate::state::{
    ApprovalRecord, ApprovalStatus, Backend, DeploymentState, DeploymentStatus, HistoryEntry,
    HistoryOperation, HostStatus, JournalAction, JournalEntry, State, StateError, StepResult,
    Touched,
};

/// Test-only, and only in debug builds (the tests'; a release build has no
/// such hook): with `SLIPWAY_TEST_CRASH_AT=N` the process kills itself with
/// SIGKILL at its Nth crash point, so tests can stop an apply at a chosen
/// step rather than at a chosen time. Crash points are: right after a journal
/// entry is written as started, right before one is written as finished (the
/// step's work is done but not recorded) and right after that; a re-check,
/// written once ([`Recorder::record_recheck`]), has the last two.
#[cfg(debug_assertions)]
const CRASH_AT_VARIABLE: &str = "SLIPWAY_TEST_CRASH_AT";

#[cfg(not(debug_assertions))]
fn crash_point() {}

#[cfg(debug_assertions)]
fn crash_point() {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;
    static AT: OnceLock<Option<u64>> = OnceLock::new();
    static SEEN: AtomicU64 = AtomicU64::new(0);
    let Some(at) = *AT.get_or_init(|| {
        std::env::var(CRASH_AT_VARIABLE)
            .ok()
            .and_then(|v| v.trim().parse().ok())
    }) else {
        return;
    };
    if SEEN.fetch_add(1, Ordering::SeqCst) + 1 == at {
        let pid = std::process::id().to_string();
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &pid])
            .status();
        // The signal is on its way; never go on past this point.
        loop {
            std::thread::sleep(std::time::Duration::from_secs(1));
        }
    }
}

/// `write`, which writes a journal entry as finished, between the two crash
/// points of a finish: the step's work is done but not recorded, and it is.
fn around_finish(write: impl FnOnce() -> Result<(), StateError>) -> Result<(), StateError> {
    crash_point();
    write()?;
    crash_point();
    Ok(())
}

/// What a host's record becomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostChange {
    /// The rollout in flight moves the host to the deployment's pair
    /// (version, artifact digest, config digest), with this status. The pair
    /// it served before the rollout first moved it is kept as `previous`.
    Moved(HostStatus),
    /// The host could not be reached to update it: not moved. Its record
    /// keeps the pair it serves (as far as state knows) and says failed,
    /// remembering that pair as the one to go back to.
    Unreachable,
    /// The host's update failed before it stopped the running release: it
    /// still serves the pair it served before this update began (given;
    /// `None` when it had none), and the record says so (status failed). It
    /// stays the rollout's: a rollback re-registers and restarts it.
    FailedUnchanged(Option<crate::state::PreviousRelease>),
    /// The host is back on the pair it served before the rollout (or, with
    /// none, its service is stopped).
    RolledBack,
    /// A rollback could not put the host back: the record keeps what it
    /// runs and says the rollback failed.
    RollbackFailed,
    /// A rollback of the host begins: until it is recorded rolled back (or
    /// restored, or failed), the record keeps the pair it names but is no
    /// longer settled (in progress), so a kill in between never leaves a
    /// record that says "deployed" on a host that may have moved.
    RollingBack,
    /// `slipway rollback` switched the host to this verified release pair:
    /// the record says it serves it (deployed, moved by the rollback in
    /// flight) and remembers the pair it left as `previous`.
    Restored(crate::state::PreviousRelease),
}

/// Change one host's record of deployment `address` (see [`HostChange`]).
fn put_host(
    state: &mut State,
    address: &str,
    host: &str,
    sha256: Option<&str>,
    change: HostChange,
) {
    let now = now_rfc3339();
    let Some(deployment) = state.deployments.get_mut(address) else {
        return;
    };
    let rollout = deployment.rollout_id.clone();
    let digest = config_digest(&deployment.config_files, deployment.systemd_unit.as_deref());
    let before = deployment.hosts.get(host).cloned();
    let record = match change {
        HostChange::Moved(status) => {
            let previous = match &before {
                Some(before) => before.before_rollout(rollout.as_deref()),
                None => None,
            };
            HostState {
                version: deployment.version.clone(),
                artifact_sha256: sha256.map(str::to_string),
                status,
                updated_at: now.clone(),
                config_digest: Some(digest),
                rollout,
                previous,
            }
        }
        HostChange::FailedUnchanged(serving) => {
            let Some(before) = before else { return };
            match serving {
                Some(serving) => HostState {
                    version: serving.version,
                    artifact_sha256: serving.artifact_sha256,
                    config_digest: serving.config_digest,
                    status: HostStatus::Failed,
                    updated_at: now.clone(),
                    ..before
                },
                None => HostState {
                    status: HostStatus::Failed,
                    updated_at: now.clone(),
                    ..before
                },
            }
        }
        HostChange::Unreachable => {
            let Some(before) = before else { return };
            let same = rollout.is_some() && before.rollout == rollout;
            HostState {
                status: HostStatus::Failed,
                updated_at: now.clone(),
                previous: if same {
                    before.previous.clone()
                } else {
                    before.before_rollout(None)
                },
                ..before
            }
        }
        HostChange::RolledBack => {
            let Some(before) = before else { return };
            match before.previous.clone() {
                Some(previous) => HostState {
                    version: previous.version.clone(),
                    artifact_sha256: previous.artifact_sha256.clone(),
                    config_digest: previous.config_digest.clone(),
                    status: HostStatus::RolledBack,
                    updated_at: now.clone(),
                    rollout: before.rollout,
                    previous: Some(previous),
                },
                None => HostState {
                    status: HostStatus::RolledBack,
                    updated_at: now.clone(),
                    ..before
                },
            }
        }
        HostChange::Restored(pair) => HostState {
            version: pair.version,
            artifact_sha256: pair.artifact_sha256,
            config_digest: pair.config_digest,
            status: HostStatus::Deployed,
            updated_at: now.clone(),
            rollout,
            previous: before.map(|b| b.pair()),
        },
        HostChange::RollingBack => {
            let Some(before) = before else { return };
            HostState {
                status: HostStatus::InProgress,
                updated_at: now.clone(),
                ..before
            }
        }
        HostChange::RollbackFailed => {
            let Some(before) = before else { return };
            HostState {
                status: HostStatus::RollbackFailed,
                updated_at: now.clone(),
                ..before
            }
        }
    };
    deployment.hosts.insert(host.to_string(), record);
    deployment.updated_at = now;
}

/// Append `record` to the journal as started now (and, with `finished`,
/// finished at once with that result); returns its number. Beyond
/// [`crate::state::JOURNAL_LIMIT`] entries the oldest finished one is dropped.
fn push_journal_entry(
    state: &mut State,
    record: &StepRecord<'_>,
    finished: Option<StepResult>,
) -> u64 {
    let seq = state.journal.iter().map(|e| e.seq).max().unwrap_or(0) + 1;
    let now = now_rfc3339();
    state.push_journal(JournalEntry {
        apply_id: record.apply_id.to_string(),
        seq,
        deployment: record.deployment.to_string(),
        step: record.step,
        host: record.host.map(str::to_string),
        action: record.action,
        version: record.version.to_string(),
        started_at: now.clone(),
        finished_at: finished.as_ref().map(|_| now),
        result: finished,
    });
    seq
}

/// A change to the record of `host` of deployment `address` and, given,
/// to journal entry `seq`.
fn host_touched(address: &str, host: &str, seq: Option<u64>) -> Touched {
    Touched {
        hosts: vec![(address.to_string(), host.to_string())],
        journal: seq.into_iter().collect(),
    }
}

/// What a journal entry is about, before it gets its number and times.
#[derive(Debug, Clone)]
pub struct StepRecord<'a> {
    pub apply_id: &'a str,
    pub deployment: &'a str,
    pub step: usize,
    pub host: Option<&'a str>,
    pub action: JournalAction,
    pub version: &'a str,
}

pub struct Recorder {
    backend: std::sync::Arc<dyn Backend>,
    state: Mutex<Written>,
    started_at: String,
}

/// The state as this apply knows it, and whether the backend holds all of it.
struct Written {
    state: State,
    /// A write failed: the state in memory may hold a change the backend
    /// does not, which a delta of later changes would not carry, so the
    /// next write is whole.
    whole_write_due: bool,
}

impl Recorder {
    pub fn new(backend: std::sync::Arc<dyn Backend>, state: State) -> Recorder {
        Recorder {
            backend,
            state: Mutex::new(Written {
                state,
                whole_write_due: false,
            }),
            started_at: now_rfc3339(),
        }
    }

    fn written(&self) -> std::sync::MutexGuard<'_, Written> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Change the state and write it (whole) before returning.
    pub fn update(&self, change: impl FnOnce(&mut State)) -> Result<(), StateError> {
        let mut written = self.written();
        change(&mut written.state);
        let result = self.backend.write(&mut written.state);
        written.whole_write_due = result.is_err();
        result
    }

    /// Change records of the state, only those `change` says it touched,
    /// and write them before returning. A backend may store just those
    /// records ([`Backend::append`]), so the write does not grow with the
    /// fleet. `change` must name every record it changes: a record it
    /// changes and does not name is lost on the next read.
    fn update_records(&self, change: impl FnOnce(&mut State) -> Touched) -> Result<(), StateError> {
        let mut written = self.written();
        let touched = change(&mut written.state);
        let result = if written.whole_write_due {
            self.backend.write(&mut written.state)
        } else {
            self.backend.append(&mut written.state, &touched)
        };
        written.whole_write_due = result.is_err();
        result
    }

    /// What `look` finds in the state as it is now, read in place: the
    /// state (a whole environment) is not copied.
    pub fn read<T>(&self, look: impl FnOnce(&State) -> T) -> T {
        look(&self.written().state)
    }

    /// The deployment's record, if any.
    pub fn deployment(&self, address: &str) -> Option<DeploymentState> {
        self.read(|state| state.deployments.get(address).cloned())
    }

    /// The host's record, if any.
    pub fn host(&self, address: &str, host: &str) -> Option<HostState> {
        self.read(|state| {
            state
                .deployments
                .get(address)
                .and_then(|d| d.hosts.get(host).cloned())
        })
    }

    /// Stop tracking a deployment (it left the configuration).
    pub fn forget(&self, address: &str) -> Result<(), StateError> {
        self.update(|state| {
            state.deployments.remove(address);
        })
    }

    /// Record that `deployment` starts moving to its configured version: it
    /// goes on with the rollout state records when
    /// [`DeploymentState::continues_rollout`] says so, otherwise this apply
    /// (`apply_id`) begins a new rollout.
    pub fn start_deployment(
        &self,
        config: &Config,
        deployment: &Deployment,
        apply_id: &str,
    ) -> Result<(), StateError> {
        let now = now_rfc3339();
        self.update(|state| {
            let entry = state
                .deployments
                .entry(deployment.address.clone())
                .or_insert_with(|| {
                    DeploymentState::new(
                        &deployment.service.address,
                        &deployment.service.version,
                        DeploymentStatus::InProgress,
                        &now,
                    )
                });
            entry.service = deployment.service.address.clone();
            if !entry.continues_rollout(&deployment.service.version) {
                entry.rollout_id = Some(apply_id.to_string());
            }
            if entry.version != deployment.service.version {
                entry.gates.clear();
            }
            if entry.version != deployment.service.version {
                // Approvals are given for one version.
                entry.approvals.clear();
            }
            // apply refuses the version a rollback took off; another version
            // ends that refusal.
            if entry
                .rolled_back_from
                .as_ref()
                .is_some_and(|r| r.version != deployment.service.version)
            {
                entry.rolled_back_from = None;
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
            // Digests of files that no longer hold a sensitive value stay:
            // the hosts keep those files in the snapshots a rollback
            // restores, so what they print stays withheld
            // (`super::host_output`). The planner compares only the
            // digests of files that hold one now.
            entry
                .sensitive_digests
                .extend(crate::config::secret_digest::sensitive_file_digests(
                    config, deployment,
                ));
            entry.systemd_unit = desired_systemd_unit(config, deployment);
            entry.updated_at = now;
        })
    }

    /// Change one host's record (see [`HostChange`]).
    pub fn set_host(
        &self,
        address: &str,
        host: &str,
        sha256: Option<&str>,
        change: HostChange,
    ) -> Result<(), StateError> {
        self.update_records(|state| {
            put_host(state, address, host, sha256, change);
            host_touched(address, host, None)
        })
    }

    /// Record that the rollout moves `record`'s host (in progress) and, in
    /// the same write, a journal entry saying `record` starts. Returns the
    /// entry's number for [`Recorder::end_step`].
    pub fn begin_host_step(
        &self,
        record: &StepRecord<'_>,
        sha256: Option<&str>,
    ) -> Result<u64, StateError> {
        self.begin_with_host(record, sha256, HostChange::Moved(HostStatus::InProgress))
    }

    /// Record that a rollback of `record`'s host starts: the host's record
    /// is unsettled ([`HostChange::RollingBack`]) in the same write as the
    /// journal entry. Returns the entry's number for [`Recorder::end_step`].
    pub fn begin_host_rollback(&self, record: &StepRecord<'_>) -> Result<u64, StateError> {
        self.begin_with_host(record, None, HostChange::RollingBack)
    }

    /// The journal entry of `record` and `change` to its host's record, in
    /// one write.
    fn begin_with_host(
        &self,
        record: &StepRecord<'_>,
        sha256: Option<&str>,
        change: HostChange,
    ) -> Result<u64, StateError> {
        let host = record.host.unwrap_or_default();
        let mut seq = 0;
        self.update_records(|state| {
            put_host(state, record.deployment, host, sha256, change);
            seq = push_journal_entry(state, record, None);
            host_touched(record.deployment, host, Some(seq))
        })?;
        crash_point();
        Ok(seq)
    }

    /// Record that `record` starts, together with `change`, in one write.
    pub fn begin_step(
        &self,
        record: &StepRecord<'_>,
        change: impl FnOnce(&mut State),
    ) -> Result<u64, StateError> {
        let mut seq = 0;
        self.update(|state| {
            change(state);
            seq = push_journal_entry(state, record, None);
        })?;
        crash_point();
        Ok(seq)
    }

    /// Record a re-check of `settled` (the seq of a step a killed apply
    /// left open, and what the re-check found): in one write, `record` (a
    /// `recheck`, which changes nothing on the host) is journaled already
    /// finished with `result`, `settled` is closed with its verdict, and
    /// `change` is made. A re-check so never leaves a second open entry for
    /// its host; killed before this write, the next apply re-checks again.
    ///
    /// `change` may change only the record of `record`'s host.
    pub fn record_recheck(
        &self,
        record: &StepRecord<'_>,
        result: StepResult,
        (settled, verdict): (u64, StepResult),
        change: impl FnOnce(&mut State),
    ) -> Result<(), StateError> {
        around_finish(|| {
            self.update_records(|state| {
                change(state);
                state.finish_journal_entry(settled, verdict);
                let seq = push_journal_entry(state, record, Some(result));
                let mut touched = host_touched(
                    record.deployment,
                    record.host.unwrap_or_default(),
                    Some(seq),
                );
                touched.journal.push(settled);
                touched
            })
        })
    }

    /// Record that journal entry `seq` finished with `result`, together with
    /// `change`, in one write.
    pub fn end_step(
        &self,
        seq: u64,
        result: impl Into<StepResult>,
        change: impl FnOnce(&mut State),
    ) -> Result<(), StateError> {
        around_finish(|| {
            self.update(|state| {
                change(state);
                state.finish_journal_entry(seq, result.into());
            })
        })
    }

    /// [`Recorder::end_step`] that changes nothing else.
    pub fn end_journal_step(
        &self,
        seq: u64,
        result: impl Into<StepResult>,
    ) -> Result<(), StateError> {
        let result = result.into();
        around_finish(|| {
            self.update_records(|state| {
                state.finish_journal_entry(seq, result.clone());
                Touched {
                    hosts: Vec::new(),
                    journal: vec![seq],
                }
            })
        })
    }

    /// [`Recorder::end_step`] that also changes the host's record.
    pub fn end_host_step(
        &self,
        seq: u64,
        result: impl Into<StepResult>,
        (address, host): (&str, &str),
        sha256: Option<&str>,
        change: HostChange,
    ) -> Result<(), StateError> {
        around_finish(|| {
            self.update_records(|state| {
                put_host(state, address, host, sha256, change);
                state.finish_journal_entry(seq, result.into());
                host_touched(address, host, Some(seq))
            })
        })
    }

    /// The journal entries of `address`/`host` that applies other than
    /// `this_apply` (killed ones: one runs at a time) started and never
    /// finished, oldest first. An apply settles them before it journals a
    /// step of its own on the host.
    pub fn open_host_steps(
        &self,
        address: &str,
        host: &str,
        this_apply: &str,
    ) -> Vec<JournalEntry> {
        self.read(|state| {
            state
                .uncertain_steps()
                .filter(|e| e.deployment == address && e.host.as_deref() == Some(host))
                .filter(|e| e.apply_id != this_apply)
                .cloned()
                .collect()
        })
    }

    /// The journal entry of `address`/`host` a killed apply started and never
    /// finished, if any.
    pub fn uncertain_host_step(&self, address: &str, host: &str) -> Option<JournalEntry> {
        self.read(|state| {
            state
                .uncertain_steps()
                .filter(|e| e.deployment == address && e.host.as_deref() == Some(host))
                .last()
                .cloned()
        })
    }

    /// The journal entries of `address` that are not about one host (ECS
    /// traffic steps and their rollback) written by applies that were killed
    /// (no history entry, and not `this_apply`), oldest first.
    pub fn killed_deployment_steps(&self, address: &str, this_apply: &str) -> Vec<JournalEntry> {
        self.read(|state| {
            let killed = state.interrupted_applies();
            state
                .journal
                .iter()
                .filter(|e| e.deployment == address && e.host.is_none())
                .filter(|e| e.apply_id != this_apply && killed.contains(&e.apply_id))
                .cloned()
                .collect()
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
                let finished = status == DeploymentStatus::Deployed && verified;
                deployment.status = status;
                deployment.verified = verified;
                deployment.hosts.retain(|host, _| hosts.contains(host));
                if finished {
                    let apply_id = deployment.rollout_id.clone().unwrap_or_default();
                    deployment.remember_verified_release(&apply_id, &now);
                }
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
        approvers: &[String],
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
                    approvers: approvers.to_vec(),
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
            // Applies killed before this one get their history entry first.
            state.journal.retain(|e| e.apply_id != options.apply_id);
            state.settle_journal();
            let versions = plan
                .deployments
                .iter()
                .filter(|d| {
                    d.environment == state.environment && d.action != crate::plan::Action::NoOp
                })
                // A deployment that never started (one it waits for failed,
                // waits for an approval, or the apply was interrupted) was
                // not applied.
                .filter(|d| {
                    ![&summary.skipped, &summary.held, &summary.not_started]
                        .iter()
                        .any(|list| list.contains(&d.address))
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
                operation: HistoryOperation::Apply,
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
                result: summary.end().into(),
            });
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::state::{GateResult, LocalBackend, PreviousRelease};

    /// A small deterministic generator, so that a failing sequence can be
    /// replayed from its seed.
    struct Dice(u64);

    impl Dice {
        fn roll(&mut self, sides: usize) -> usize {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((self.0 >> 33) % sides as u64) as usize
        }
    }

    const ADDRESS: &str = "deployment.web";
    const HOSTS: [&str; 5] = ["h0", "h1", "h2", "h3", "h4"];

    fn recorder(backend: &LocalBackend) -> Recorder {
        let state = backend.read("prod").expect("read").expect("a state");
        Recorder::new(Arc::new(backend.clone()), state)
    }

    /// Random sequences of the recorder's writes, small (appended) and
    /// whole, with restarts as after a kill (a new backend and recorder
    /// reading what is stored): after every write, what a fresh read of the
    /// backend returns is the recorder's state.
    #[test]
    fn what_is_read_back_after_any_sequence_of_writes_is_what_was_recorded() {
        for seed in 1..=12u64 {
            let dir = tempfile::tempdir().expect("temp dir");
            let mut state = State::new("prod");
            let mut deployment = DeploymentState::new(
                "web",
                "1.0.0",
                DeploymentStatus::Deployed,
                "2026-12-06T00:00:00Z",
            );
            deployment.rollout_id = Some("apply-0".into());
            state.deployments.insert(ADDRESS.into(), deployment);
            LocalBackend::new(dir.path())
                .write(&mut state)
                .expect("first write");

            let mut dice = Dice(seed);
            let mut recorder = recorder(&LocalBackend::new(dir.path()));
            let mut open: Vec<(u64, &str)> = Vec::new();
            let mut appended = 0;
            for n in 0..300 {
                let host = HOSTS[dice.roll(HOSTS.len())];
                let version = ["1.0.0", "2.0.0"][dice.roll(2)];
                let apply_id = format!("apply-{seed}-{}", n / 40);
                let record = StepRecord {
                    apply_id: &apply_id,
                    deployment: ADDRESS,
                    step: n / 10 + 1,
                    host: Some(host),
                    action: JournalAction::Deploy,
                    version,
                };
                let sha = format!("{n:064}");
                match dice.roll(9) {
                    0 | 1 => {
                        let seq = recorder.begin_host_step(&record, Some(&sha)).unwrap();
                        open.push((seq, host));
                    }
                    2 | 3 if !open.is_empty() => {
                        let (seq, host) = open.remove(dice.roll(open.len()));
                        let change = [
                            HostChange::Moved(HostStatus::Deployed),
                            HostChange::FailedUnchanged(Some(PreviousRelease {
                                version: "1.0.0".into(),
                                artifact_sha256: None,
                                config_digest: None,
                            })),
                            HostChange::RolledBack,
                        ][dice.roll(3)]
                        .clone();
                        recorder
                            .end_host_step(seq, "deployed", (ADDRESS, host), Some(&sha), change)
                            .unwrap();
                    }
                    4 => {
                        let seq = recorder.begin_host_rollback(&record).unwrap();
                        recorder.end_journal_step(seq, "rolled_back").unwrap();
                    }
                    5 => {
                        let change = [
                            HostChange::Unreachable,
                            HostChange::RollbackFailed,
                            HostChange::RollingBack,
                        ][dice.roll(3)]
                        .clone();
                        recorder.set_host(ADDRESS, host, None, change).unwrap();
                    }
                    6 if !open.is_empty() => {
                        let (seq, host) = open.remove(0);
                        let recheck = StepRecord {
                            action: JournalAction::Recheck,
                            host: Some(host),
                            ..record.clone()
                        };
                        recorder
                            .record_recheck(
                                &recheck,
                                "done".into(),
                                (seq, "deployed".into()),
                                |state| {
                                    if let Some(r) = state
                                        .deployments
                                        .get_mut(ADDRESS)
                                        .and_then(|d| d.hosts.get_mut(host))
                                    {
                                        r.status = HostStatus::Deployed;
                                    }
                                },
                            )
                            .unwrap();
                    }
                    7 => recorder
                        .record_gate(
                            ADDRESS,
                            GateResult {
                                name: "errors".into(),
                                kind: "command".into(),
                                step: n % 3,
                                version: version.into(),
                                passed: true,
                                summary: format!("write {n}"),
                                evaluations: Vec::new(),
                                judged_at: "2026-12-06T00:00:01Z".into(),
                            },
                        )
                        .unwrap(),
                    _ => {
                        // A kill: what was stored is all a new apply knows.
                        recorder = self::recorder(&LocalBackend::new(dir.path()));
                        open.clear();
                    }
                }
                let stored = LocalBackend::new(dir.path())
                    .read("prod")
                    .expect("read")
                    .expect("a state");
                recorder.read(|state| {
                    assert_eq!(&stored, state, "seed {seed}, write {n}");
                });
                if dir.path().join("prod.json.journal").exists() {
                    appended += 1;
                }
            }
            assert!(appended > 100, "seed {seed}: most writes were appended");
        }
    }
}
