//! What the state commands do, written against the [`Backend`] trait only, so
//! that each works the same on every backend: push a state, stop tracking a
//! deployment, migrate every environment from one backend to another, and
//! collect the audit trail.
//!
//! Callers hold the lock of the environments they change (except [`migrate`],
//! which takes the locks itself); nothing here prints.

use std::time::Duration;

use crate::state::lock::{current_user, lock_with_timeout, now_rfc3339};
use crate::state::{
    ApprovalError, ApprovalRecord, ApprovalStatus, Backend, DeploymentState, HistoryEntry,
    HistoryOperation, HistoryResult, LineageMismatch, LockInfo, OlderSerial, State, StateError,
};

/// Why no one environment is the one whose state tracks a deployment.
#[derive(Debug, thiserror::Error)]
pub enum TrackingError {
    #[error("{address} is not in state; list what is tracked with: slipway state list")]
    NotTracked { address: String },
    #[error(
        "{address} is in the state of several environments ({}): choose one with -environment NAME",
        environments.join(", ")
    )]
    Several {
        address: String,
        environments: Vec<String>,
    },
    #[error(transparent)]
    State(#[from] StateError),
}

/// The environment whose state tracks `address`: `only` if given and its
/// state does, else the one environment of the backend whose state does.
pub fn environment_tracking(
    backend: &dyn Backend,
    address: &str,
    only: Option<&str>,
) -> Result<String, TrackingError> {
    let candidates = match only {
        Some(name) => vec![name.to_string()],
        None => backend.environments()?,
    };
    let mut found = Vec::new();
    for environment in candidates {
        if backend
            .read(&environment)?
            .is_some_and(|state| state.deployments.contains_key(address))
        {
            found.push(environment);
        }
    }
    match <[String; 1]>::try_from(found) {
        Ok([one]) => Ok(one),
        Err(found) if found.is_empty() => Err(TrackingError::NotTracked {
            address: address.to_string(),
        }),
        Err(several) => Err(TrackingError::Several {
            address: address.to_string(),
            environments: several,
        }),
    }
}

/// What [`push`] replaced and wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    pub environment: String,
    /// Serial and lineage of the state that was replaced, if there was one.
    pub replaced: Option<(u64, String)>,
    /// Serial of the state as written.
    pub serial: u64,
}

/// Replace the state of `incoming.environment` with `incoming`.
///
/// Refused, unless `force`, when the backend holds a state of another lineage
/// or a higher serial. The written serial is above both the incoming and the
/// replaced one (so a plan made before the push is stale after it), and a
/// `state-push` entry is added to the history.
pub fn push(backend: &dyn Backend, mut incoming: State, force: bool) -> Result<Pushed, StateError> {
    let current = backend.read(&incoming.environment)?;
    let remedy = "Pass -force to replace it anyway (save the current state first with \
                  `slipway state pull`)";
    if let Some(current) = &current {
        if !force && current.lineage != incoming.lineage {
            return Err(StateError::LineageMismatch(Box::new(LineageMismatch {
                action: "push",
                environment: incoming.environment.clone(),
                location: backend.describe(),
                existing: current.lineage.clone(),
                incoming: incoming.lineage.clone(),
                remedy: remedy.to_string(),
            })));
        }
        if !force && current.serial > incoming.serial {
            return Err(StateError::OlderSerial(Box::new(OlderSerial {
                action: "push",
                environment: incoming.environment.clone(),
                location: backend.describe(),
                existing: current.serial,
                incoming: incoming.serial,
                remedy: remedy.to_string(),
            })));
        }
        incoming.serial = incoming.serial.max(current.serial);
    }
    let versions = incoming
        .deployments
        .iter()
        .map(|(address, deployment)| (address.clone(), deployment.version.clone()))
        .collect();
    incoming
        .history
        .push(entry(HistoryOperation::StatePush, versions));
    backend.write(&mut incoming)?;
    Ok(Pushed {
        environment: incoming.environment.clone(),
        replaced: current.map(|current| (current.serial, current.lineage)),
        serial: incoming.serial,
    })
}

/// Stop tracking `address` in `environment`, without touching its targets.
/// Returns what state recorded and the new serial; `None` (and nothing
/// written) when the deployment is not in that state.
pub fn remove_deployment(
    backend: &dyn Backend,
    environment: &str,
    address: &str,
) -> Result<Option<(DeploymentState, u64)>, StateError> {
    let Some(mut state) = backend.read(environment)? else {
        return Ok(None);
    };
    let Some(removed) = state.deployments.remove(address) else {
        return Ok(None);
    };
    // Autoscaling it left suspended is no longer slipway's to restore.
    state.scaling_suspended.remove(address);
    state.history.push(entry(
        HistoryOperation::StateRm,
        [(address.to_string(), removed.version.clone())].into(),
    ));
    backend.write(&mut state)?;
    Ok(Some((removed, state.serial)))
}

/// Give or refuse the approval `address` waits for in `environment`, and
/// record it in the history (`approve` / `reject`). Nothing is written when
/// the deployment does not wait for that approval.
pub fn decide_approval(
    backend: &dyn Backend,
    environment: &str,
    address: &str,
    gate: Option<&str>,
    decision: ApprovalStatus,
    who: &crate::state::lock::Approver,
) -> Result<ApprovalRecord, ApprovalError> {
    let mut state = backend
        .read(environment)?
        .ok_or_else(|| ApprovalError::NoState {
            environment: environment.to_string(),
        })?;
    let deployment =
        state
            .deployments
            .get_mut(address)
            .ok_or_else(|| ApprovalError::NotInState {
                address: address.to_string(),
                environment: environment.to_string(),
            })?;
    let record = deployment.decide_approval(address, gate, decision, who, &now_rfc3339())?;
    let (operation, result) = match decision {
        ApprovalStatus::Approved => (HistoryOperation::Approve, HistoryResult::Approved),
        _ => (HistoryOperation::Reject, HistoryResult::Rejected),
    };
    let mut entry = entry(
        operation,
        [(address.to_string(), record.version.clone())].into(),
    );
    entry.result = result;
    entry.approvals = vec![record.clone()];
    state.history.push(entry);
    backend.write(&mut state)?;
    Ok(record)
}

/// Record how the rollback a rejection started ended: the newest `reject`
/// entry of the history (the one [`decide_approval`] added) gets `result`
/// and `finished_at`. Nothing changes when the history has no such entry.
pub fn finish_rejection(state: &mut State, result: HistoryResult, finished_at: &str) {
    if let Some(entry) = state
        .history
        .iter_mut()
        .rev()
        .find(|e| e.operation == HistoryOperation::Reject)
    {
        entry.result = result;
        entry.finished_at = Some(finished_at.to_string());
    }
}

/// Record in the history the applies a killed process left in the journal
/// of `state` ([`State::settle_journal`]), and write the state; `false`,
/// writing nothing, when its journal is empty. The caller holds the lock.
pub fn settle_journal(backend: &dyn Backend, state: &State) -> Result<bool, StateError> {
    if state.journal.is_empty() {
        return Ok(false);
    }
    let mut settled = state.clone();
    settled.settle_journal();
    backend.write(&mut settled)?;
    Ok(true)
}

/// A history entry for a state command, finished now.
fn entry(
    operation: HistoryOperation,
    versions: std::collections::BTreeMap<String, String>,
) -> HistoryEntry {
    let now = now_rfc3339();
    HistoryEntry {
        apply_id: uuid::Uuid::new_v4().to_string(),
        operation,
        who: current_user(),
        started_at: now.clone(),
        finished_at: Some(now),
        plan_digest: None,
        versions,
        result: HistoryResult::Succeeded,
        approvals: Vec::new(),
    }
}

/// What [`migrate`] did with one environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migrated {
    pub environment: String,
    pub serial: u64,
    pub lineage: String,
    pub history_entries: usize,
    /// The destination already held exactly this state; nothing was written.
    pub already_there: bool,
}

/// Copy the state of every environment of `from` to `to`, unchanged (same
/// serial, lineage and history), holding the locks of both sides.
///
/// Every environment is checked before anything is written: the migration is
/// refused when the destination holds a state of another lineage, or a state
/// of the same lineage that the source's would overwrite with an older or
/// different one at the same serial. Each copy is read back and compared.
/// The source is left as it was.
pub fn migrate(
    from: &dyn Backend,
    to: &dyn Backend,
    lock_timeout: Duration,
    mut waiting: impl FnMut(&LockInfo),
) -> Result<Vec<Migrated>, StateError> {
    let environments = from.environments()?;
    let mut locks = Vec::new();
    for environment in &environments {
        locks.push(lock_with_timeout(
            from,
            environment,
            "migrate",
            lock_timeout,
            &mut waiting,
        )?);
        locks.push(lock_with_timeout(
            to,
            environment,
            "migrate",
            lock_timeout,
            &mut waiting,
        )?);
    }

    let remedy = "Nothing was migrated. If the destination's state is not needed, delete it \
                  there first; otherwise point the backend at another bucket, prefix or path";
    let mut copies = Vec::new();
    for environment in &environments {
        let Some(source) = from.read(environment)? else {
            continue;
        };
        let already_there = match to.read(environment)? {
            None => false,
            Some(existing) if existing == source => true,
            Some(existing) if existing.lineage != source.lineage => {
                return Err(StateError::LineageMismatch(Box::new(LineageMismatch {
                    action: "migrate",
                    environment: environment.clone(),
                    location: to.describe(),
                    existing: existing.lineage,
                    incoming: source.lineage,
                    remedy: remedy.to_string(),
                })));
            }
            Some(existing) if existing.serial >= source.serial => {
                return Err(StateError::OlderSerial(Box::new(OlderSerial {
                    action: "migrate",
                    environment: environment.clone(),
                    location: to.describe(),
                    existing: existing.serial,
                    incoming: source.serial,
                    remedy: remedy.to_string(),
                })));
            }
            Some(_) => false,
        };
        copies.push((source, already_there));
    }

    let mut migrated = Vec::new();
    for (source, already_there) in copies {
        if !already_there {
            to.import(&source)?;
            let copy = to.read(&source.environment)?;
            if copy.as_ref() != Some(&source) {
                return Err(StateError::Remote {
                    action: "verify the migrated state in",
                    location: to.describe(),
                    detail: format!(
                        "the state of environment {:?} read back differs from the one written",
                        source.environment
                    ),
                });
            }
        }
        migrated.push(Migrated {
            environment: source.environment.clone(),
            serial: source.serial,
            lineage: source.lineage.clone(),
            history_entries: source.history.len(),
            already_there,
        });
    }
    for lock in locks {
        lock.release()?;
    }
    Ok(migrated)
}

/// The history of `states`, oldest first (by start time, then in recorded
/// order), with the environment of each entry. With `deployment` (an address
/// like `deployment.web`, or just `web`), only the entries that changed it.
pub fn history<'a>(
    states: &'a [State],
    deployment: Option<&str>,
) -> Vec<(&'a str, &'a HistoryEntry)> {
    let address = deployment.map(deployment_address);
    let mut entries: Vec<(&str, &HistoryEntry)> = states
        .iter()
        .flat_map(|state| {
            state
                .history
                .iter()
                .map(move |entry| (state.environment.as_str(), entry))
        })
        .filter(|(_, entry)| {
            address
                .as_deref()
                .is_none_or(|address| entry.versions.contains_key(address))
        })
        .collect();
    entries.sort_by(|a, b| a.1.started_at.cmp(&b.1.started_at));
    entries
}

/// `web` → `deployment.web`; an address is kept as it is.
pub fn deployment_address(name: &str) -> String {
    if name.starts_with("deployment.") {
        name.to_string()
    } else {
        format!("deployment.{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::state::{DeploymentStatus, LocalBackend};

    fn backend() -> (tempfile::TempDir, LocalBackend) {
        let dir = tempfile::tempdir().expect("temp dir");
        let backend = LocalBackend::new(dir.path().join("state"));
        (dir, backend)
    }

    #[test]
    fn the_environment_tracking_a_deployment_is_the_one_whose_state_has_it() {
        let (_dir, backend) = backend();
        let with = |name: &str, addresses: &[&str]| {
            let mut state = State::new(name);
            for address in addresses {
                state
                    .deployments
                    .insert(address.to_string(), deployment("1.0.0"));
            }
            backend.write(&mut state).unwrap();
        };
        with("staging", &["deployment.api", "deployment.web"]);
        with("production", &["deployment.web"]);
        let find = |address: &str, only: Option<&str>| {
            environment_tracking(&backend, address, only).map_err(|e| e.to_string())
        };
        assert_eq!(find("deployment.api", None), Ok("staging".to_string()));
        assert_eq!(
            find("deployment.web", None),
            Err("deployment.web is in the state of several environments (production, staging): choose one with -environment NAME".to_string())
        );
        assert_eq!(
            find("deployment.web", Some("production")),
            Ok("production".to_string())
        );
        assert_eq!(
            find("deployment.api", Some("production")),
            Err(
                "deployment.api is not in state; list what is tracked with: slipway state list"
                    .to_string()
            )
        );
        assert!(matches!(
            environment_tracking(&backend, "deployment.gone", None),
            Err(TrackingError::NotTracked { .. })
        ));
    }

    fn deployment(version: &str) -> DeploymentState {
        DeploymentState {
            verified: true,
            ..DeploymentState::new(
                "service.web",
                version,
                DeploymentStatus::Deployed,
                "2026-01-02T03:04:05Z",
            )
        }
    }

    fn applied(backend: &LocalBackend, environment: &str) -> State {
        let mut state = State::new(environment);
        state
            .deployments
            .insert("deployment.web".to_string(), deployment("1.0.0"));
        state.history.push(HistoryEntry {
            apply_id: "a1".to_string(),
            operation: HistoryOperation::Apply,
            who: "alice".to_string(),
            started_at: "2026-01-02T03:04:00Z".to_string(),
            finished_at: Some("2026-01-02T03:04:05Z".to_string()),
            plan_digest: Some("abc".to_string()),
            versions: [("deployment.web".to_string(), "1.0.0".to_string())].into(),
            result: HistoryResult::Succeeded,
            approvals: Vec::new(),
        });
        backend.write(&mut state).expect("write");
        backend.write(&mut state).expect("write");
        state
    }

    #[test]
    fn push_of_the_same_lineage_writes_a_higher_serial_and_records_it() {
        let (_dir, backend) = backend();
        let current = applied(&backend, "prod");
        let mut older = current.clone();
        older.serial = 1;
        let error = push(&backend, older.clone(), false).expect_err("older serial");
        assert!(matches!(error, StateError::OlderSerial(_)), "{error}");
        assert!(error.to_string().contains("-force"), "{error}");

        let pushed = push(&backend, older, true).expect("forced");
        assert_eq!(pushed.replaced, Some((2, current.lineage.clone())));
        assert_eq!(pushed.serial, 3);
        let stored = backend.read("prod").unwrap().unwrap();
        assert_eq!(stored.serial, 3);
        assert_eq!(
            stored.history.last().unwrap().operation,
            HistoryOperation::StatePush
        );
    }

    #[test]
    fn push_of_another_lineage_is_refused_without_force() {
        let (_dir, backend) = backend();
        let current = applied(&backend, "prod");
        let mut other = State::new("prod");
        other.serial = 99;
        let error = push(&backend, other.clone(), false).expect_err("other lineage");
        let message = error.to_string();
        assert!(message.contains(&current.lineage), "{message}");
        assert!(message.contains(&other.lineage), "{message}");
        assert_eq!(backend.read("prod").unwrap().unwrap(), current);
        push(&backend, other.clone(), true).expect("forced");
        assert_eq!(
            backend.read("prod").unwrap().unwrap().lineage,
            other.lineage
        );
    }

    #[test]
    fn a_killed_applys_journal_is_settled_into_history_and_written() {
        let (_dir, backend) = backend();
        let mut state = applied(&backend, "prod");
        assert!(!settle_journal(&backend, &state).expect("empty journal"));
        assert_eq!(backend.read("prod").unwrap().unwrap().serial, 2);
        state.journal.push(crate::state::JournalEntry {
            apply_id: "killed".into(),
            seq: 1,
            deployment: "deployment.web".into(),
            step: 1,
            host: Some("h1".into()),
            action: crate::state::JournalAction::Deploy,
            version: "2.0.0".into(),
            started_at: "2026-01-03T00:00:01Z".into(),
            finished_at: None,
            result: None,
        });
        assert!(settle_journal(&backend, &state).expect("settle"));
        let stored = backend.read("prod").unwrap().unwrap();
        assert_eq!(stored.serial, 3);
        assert!(stored.journal.is_empty());
        let last = stored.history.last().unwrap();
        assert_eq!(last.apply_id, "killed");
        assert_eq!(last.result, HistoryResult::Interrupted);
        assert_eq!(last.versions["deployment.web"], "2.0.0");
    }

    #[test]
    fn the_end_of_a_rejection_goes_to_the_newest_reject_entry_only() {
        let versions = || -> std::collections::BTreeMap<String, String> {
            [("deployment.web".to_string(), "2.0.0".to_string())].into()
        };
        let mut earlier = entry(HistoryOperation::Reject, versions());
        earlier.result = HistoryResult::RolledBack;
        let mut rejected = entry(HistoryOperation::Reject, versions());
        rejected.result = HistoryResult::Rejected;
        let mut approved = entry(HistoryOperation::Approve, versions());
        approved.result = HistoryResult::Approved;
        let mut state = State::new("prod");
        state.history = vec![earlier.clone(), rejected.clone(), approved.clone()];
        finish_rejection(&mut state, HistoryResult::Failed, "2026-02-03T04:05:06Z");
        assert_eq!(state.history[0], earlier);
        assert_eq!(state.history[1].result, HistoryResult::Failed);
        assert_eq!(
            state.history[1].finished_at.as_deref(),
            Some("2026-02-03T04:05:06Z")
        );
        assert_eq!(state.history[1].apply_id, rejected.apply_id);
        assert_eq!(state.history[2], approved);

        let mut without = State::new("prod");
        without.history = vec![approved.clone()];
        finish_rejection(&mut without, HistoryResult::Failed, "2026-02-03T04:05:06Z");
        assert_eq!(without.history, [approved]);
    }

    #[test]
    fn remove_keeps_the_rest_and_records_it() {
        let (_dir, backend) = backend();
        applied(&backend, "prod");
        assert_eq!(
            remove_deployment(&backend, "prod", "deployment.nope").unwrap(),
            None
        );
        assert_eq!(backend.read("prod").unwrap().unwrap().serial, 2);
        let mut state = backend.read("prod").unwrap().unwrap();
        state.scaling_suspended.insert(
            "deployment.web".into(),
            crate::state::ScalingSuspension {
                resource_id: "service/prod/web".into(),
                min_capacity: 1,
                max_capacity: 2,
                before: Default::default(),
            },
        );
        backend.write(&mut state).unwrap();
        let (removed, serial) = remove_deployment(&backend, "prod", "deployment.web")
            .unwrap()
            .expect("removed");
        assert!(backend
            .read("prod")
            .unwrap()
            .unwrap()
            .scaling_suspended
            .is_empty());
        assert_eq!(removed.version, "1.0.0");
        assert_eq!(serial, 4); // 2 applied, 3 the suspension written above, 4 the removal
        let state = backend.read("prod").unwrap().unwrap();
        assert!(state.deployments.is_empty());
        let last = state.history.last().unwrap();
        assert_eq!(last.operation, HistoryOperation::StateRm);
        assert_eq!(last.versions["deployment.web"], "1.0.0");
    }

    #[test]
    fn migrate_copies_exactly_and_refuses_another_lineage() {
        let (_a, from) = backend();
        let (_b, to) = backend();
        let prod = applied(&from, "prod");
        let dev = applied(&from, "dev");
        let migrated = migrate(&from, &to, Duration::ZERO, |_| {}).expect("migrate");
        assert_eq!(migrated.len(), 2);
        assert_eq!(to.read("prod").unwrap().unwrap(), prod);
        assert_eq!(to.read("dev").unwrap().unwrap(), dev);
        assert_eq!(from.current_lock("prod").unwrap(), None);
        assert_eq!(to.current_lock("prod").unwrap(), None);

        // Again: already there, nothing written.
        let again = migrate(&from, &to, Duration::ZERO, |_| {}).expect("again");
        assert!(again.iter().all(|m| m.already_there));

        // Back, after the destination moved on: the older source is refused.
        let mut newer = prod.clone();
        to.write(&mut newer).unwrap();
        let error = migrate(&from, &to, Duration::ZERO, |_| {}).expect_err("older");
        assert!(matches!(error, StateError::OlderSerial(_)), "{error}");

        let (_c, elsewhere) = backend();
        let mut other = State::new("dev");
        elsewhere.write(&mut other).unwrap();
        let error = migrate(&from, &elsewhere, Duration::ZERO, |_| {}).expect_err("lineage");
        assert!(matches!(error, StateError::LineageMismatch(_)), "{error}");
        assert_eq!(
            elsewhere.environments().unwrap(),
            ["dev"],
            "nothing migrated"
        );
        assert_eq!(elsewhere.read("dev").unwrap().unwrap(), {
            other.serial = 1;
            other
        });
    }

    #[test]
    fn history_is_merged_by_time_and_filtered_by_deployment() {
        let mut prod = State::new("prod");
        let mut dev = State::new("dev");
        let at = |time: &str, address: &str| HistoryEntry {
            apply_id: time.to_string(),
            operation: HistoryOperation::Apply,
            who: "bob".to_string(),
            started_at: time.to_string(),
            finished_at: None,
            plan_digest: None,
            versions: [(address.to_string(), "1".to_string())].into(),
            result: HistoryResult::Succeeded,
            approvals: Vec::new(),
        };
        prod.history
            .push(at("2026-01-03T00:00:00Z", "deployment.web"));
        dev.history
            .push(at("2026-01-01T00:00:00Z", "deployment.web"));
        dev.history
            .push(at("2026-01-02T00:00:00Z", "deployment.api"));
        let states = [prod, dev];
        let all: Vec<(&str, &str)> = history(&states, None)
            .into_iter()
            .map(|(environment, entry)| (environment, entry.apply_id.as_str()))
            .collect();
        assert_eq!(
            all,
            [
                ("dev", "2026-01-01T00:00:00Z"),
                ("dev", "2026-01-02T00:00:00Z"),
                ("prod", "2026-01-03T00:00:00Z")
            ]
        );
        assert_eq!(history(&states, Some("web")).len(), 2);
        assert_eq!(history(&states, Some("deployment.api")).len(), 1);
    }
}
