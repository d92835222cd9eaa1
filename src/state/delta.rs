//! A small change to a state: the records one apply step touched.
//!
//! During an apply most state writes are about one host: its record and a
//! journal entry. Writing the whole state for each of them costs time that
//! grows with the fleet, so a backend may store such a write as a
//! [`StateDelta`] (the touched records, whole, as they are after the change)
//! and fold the deltas into the state file later ([`super::Backend::append`]).
//! [`StateDelta::capture`] takes the records from the state after a change;
//! [`State::apply_delta`] puts them into an older copy, giving the same state.
//!
//! This module does not decide which writes are small (the recorder does)
//! and does not store anything (the backends do).

use serde::{Deserialize, Serialize};

use super::model::{HostState, JournalEntry, State, JOURNAL_LIMIT};

/// The records one write changed, as they are after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateDelta {
    /// The serial of the state this delta produces (the state it applies
    /// to has `serial - 1`). Set by the backend that stores it.
    pub serial: u64,
    /// Host records, each with its deployment's `updated_at`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<HostRow>,
    /// Journal entries, started or finished by the write.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub journal: Vec<JournalEntry>,
}

/// One host's record of one deployment, after a change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostRow {
    pub deployment: String,
    pub host: String,
    /// `None`: the deployment has no record of the host (any more).
    pub record: Option<HostState>,
    /// The deployment's `updated_at` after the change.
    pub deployment_updated_at: String,
}

/// Which records a change may touch: the only ones its delta carries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Touched {
    /// (deployment address, host)
    pub hosts: Vec<(String, String)>,
    /// Journal entries by number.
    pub journal: Vec<u64>,
}

/// Why stored deltas cannot be replayed on a state ([`State::replay`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayError {
    /// A delta that continues the state (serial `serial`) has serial
    /// `next`, not the one after: a step is missing.
    Gap { serial: u64, next: u64 },
    /// A delta newer than the state (serial `serial`) was stored on top of
    /// another state: the state was replaced after an apply was killed.
    Replaced { serial: u64, newer: u64 },
}

impl StateDelta {
    /// The records `touched` names, as `state` has them now. A host of a
    /// deployment the state does not have is left out (no change can have
    /// touched it); so is a journal entry it does not have.
    pub fn capture(state: &State, touched: &Touched) -> StateDelta {
        let hosts = touched
            .hosts
            .iter()
            .filter_map(|(deployment, host)| {
                let record = state.deployments.get(deployment)?;
                Some(HostRow {
                    deployment: deployment.clone(),
                    host: host.clone(),
                    record: record.hosts.get(host).cloned(),
                    deployment_updated_at: record.updated_at.clone(),
                })
            })
            .collect();
        let journal = touched
            .journal
            .iter()
            .filter_map(|seq| state.journal.iter().find(|e| e.seq == *seq).cloned())
            .collect();
        StateDelta {
            serial: state.serial,
            hosts,
            journal,
        }
    }
}

impl State {
    /// Put the records of `delta` into this state and take its serial.
    pub fn apply_delta(&mut self, delta: &StateDelta) {
        for row in &delta.hosts {
            let Some(deployment) = self.deployments.get_mut(&row.deployment) else {
                continue;
            };
            match &row.record {
                Some(record) => {
                    deployment.hosts.insert(row.host.clone(), record.clone());
                }
                None => {
                    deployment.hosts.remove(&row.host);
                }
            }
            deployment.updated_at = row.deployment_updated_at.clone();
        }
        for entry in &delta.journal {
            match self.journal.iter_mut().find(|e| e.seq == entry.seq) {
                Some(existing) => *existing = entry.clone(),
                None => self.push_journal(entry.clone()),
            }
        }
        self.serial = delta.serial;
    }

    /// Replay stored deltas on this state, in serial order, each with
    /// whether it continues this state (it was stored on top of the state
    /// as read: same file or object). One that does must have the next
    /// serial. One that does not is skipped when it is not newer than the
    /// state (a fold wrote it into the state already and a crash kept it
    /// from being removed); when it is newer, the state was replaced under
    /// it. Returns how many were applied.
    pub fn replay<'a>(
        &mut self,
        deltas: impl IntoIterator<Item = (bool, &'a StateDelta)>,
    ) -> Result<usize, ReplayError> {
        let mut applied = 0;
        for (continues, delta) in deltas {
            if continues {
                if delta.serial != self.serial + 1 {
                    return Err(ReplayError::Gap {
                        serial: self.serial,
                        next: delta.serial,
                    });
                }
                self.apply_delta(delta);
                applied += 1;
            } else if delta.serial > self.serial {
                return Err(ReplayError::Replaced {
                    serial: self.serial,
                    newer: delta.serial,
                });
            }
        }
        Ok(applied)
    }

    /// Append `entry` to the journal; beyond [`JOURNAL_LIMIT`] entries the
    /// oldest finished one is dropped first.
    pub fn push_journal(&mut self, entry: JournalEntry) {
        if self.journal.len() >= JOURNAL_LIMIT {
            if let Some(oldest) = self.journal.iter().position(|e| e.finished_at.is_some()) {
                self.journal.remove(oldest);
            }
        }
        self.journal.push(entry);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{DeploymentState, DeploymentStatus, HostStatus};

    fn entry(seq: u64, finished: bool) -> JournalEntry {
        JournalEntry {
            apply_id: "apply-1".into(),
            seq,
            deployment: "deployment.web".into(),
            step: 1,
            host: Some(format!("h{seq}")),
            action: crate::state::JournalAction::Deploy,
            version: "2.0.0".into(),
            started_at: "2026-12-06T00:00:00Z".into(),
            finished_at: finished.then(|| "2026-12-06T00:00:01Z".into()),
            result: finished.then(|| "deployed".into()),
        }
    }

    fn host(version: &str, status: HostStatus) -> HostState {
        HostState {
            version: version.into(),
            artifact_sha256: None,
            status,
            updated_at: "2026-12-06T00:00:02Z".into(),
            config_digest: None,
            rollout: None,
            previous: None,
        }
    }

    fn state() -> State {
        let mut state = State::new("prod");
        let mut deployment = DeploymentState::new(
            "web",
            "2.0.0",
            DeploymentStatus::InProgress,
            "2026-12-06T00:00:00Z",
        );
        deployment
            .hosts
            .insert("a".into(), host("1.0.0", HostStatus::Deployed));
        deployment
            .hosts
            .insert("b".into(), host("1.0.0", HostStatus::Deployed));
        state
            .deployments
            .insert("deployment.web".into(), deployment);
        state.journal.push(entry(1, true));
        state
    }

    #[test]
    fn a_captured_delta_applied_to_the_state_before_gives_the_state_after() {
        let before = state();
        let mut after = before.clone();
        let deployment = after.deployments.get_mut("deployment.web").unwrap();
        deployment
            .hosts
            .insert("a".into(), host("2.0.0", HostStatus::InProgress));
        deployment.hosts.remove("b");
        deployment
            .hosts
            .insert("c".into(), host("2.0.0", HostStatus::Deployed));
        deployment.updated_at = "2026-12-06T00:00:09Z".into();
        after.journal[0].result = Some("changed".into());
        after.push_journal(entry(2, false));
        after.serial = 7;

        let touched = Touched {
            hosts: ["a", "b", "c"]
                .map(|h| ("deployment.web".to_string(), h.to_string()))
                .to_vec(),
            journal: vec![1, 2],
        };
        let delta = StateDelta::capture(&after, &touched);
        let text = serde_json::to_string(&delta).unwrap();
        let mut replayed = before.clone();
        replayed.apply_delta(&serde_json::from_str(&text).unwrap());
        assert_eq!(replayed, after);
    }

    #[test]
    fn replay_applies_what_continues_skips_what_was_folded_and_refuses_the_rest() {
        let delta = |serial| StateDelta {
            serial,
            hosts: Vec::new(),
            journal: Vec::new(),
        };
        let mut state = state();
        state.serial = 4;
        let (folded, next, after) = (delta(3), delta(5), delta(6));
        let applied = state
            .replay([(false, &folded), (true, &next), (true, &after)])
            .unwrap();
        assert_eq!((applied, state.serial), (2, 6));

        let mut state = self::state();
        state.serial = 4;
        assert_eq!(
            state.replay([(true, &after)]),
            Err(ReplayError::Gap { serial: 4, next: 6 })
        );
        assert_eq!(
            state.replay([(false, &next)]),
            Err(ReplayError::Replaced {
                serial: 4,
                newer: 5
            })
        );
        assert_eq!(state.serial, 4);
    }

    #[test]
    fn records_of_a_deployment_the_state_does_not_have_are_left_out() {
        let state = state();
        let touched = Touched {
            hosts: vec![("deployment.gone".into(), "a".into())],
            journal: vec![99],
        };
        let delta = StateDelta::capture(&state, &touched);
        assert!(
            delta.hosts.is_empty() && delta.journal.is_empty(),
            "{delta:?}"
        );
    }

    #[test]
    fn replay_drops_the_same_old_entry_at_the_journal_limit() {
        let mut before = State::new("prod");
        for seq in 1..=JOURNAL_LIMIT as u64 {
            before.journal.push(entry(seq, seq != 1));
        }
        let mut after = before.clone();
        let next = JOURNAL_LIMIT as u64 + 1;
        after.push_journal(entry(next, false));
        let delta = StateDelta::capture(
            &after,
            &Touched {
                hosts: Vec::new(),
                journal: vec![next],
            },
        );
        before.apply_delta(&delta);
        assert_eq!(before, after);
        assert_eq!(after.journal.len(), JOURNAL_LIMIT);
        assert_eq!(
            after.journal[0].seq, 1,
            "an unfinished entry is never dropped"
        );
        assert_eq!(after.journal[1].seq, 3);
    }
}
