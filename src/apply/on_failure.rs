//! What a rollout's `on_failure` makes of a failed step, decided once for
//! both targets — VM hosts and ECS traffic — as data ([`AfterFailure`]).
//!
//! The VM and ECS executors carry the decision out: a rollback puts back
//! what the rollout moved (hosts, or traffic and task definition); a stop
//! leaves the targets as they are and records the status decided here.
//! Neither target refines it: a paused ECS canary is partial whether or not
//! traffic had moved, and an aborted one is failed.
//!
//! Not here: putting anything back, reporting, or writing state.

use crate::config::OnFailure;
use crate::state::DeploymentStatus;

/// What follows a failed step of a rollout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterFailure {
    /// Put back what the rollout moved; the deployment's status follows from
    /// how that went (rolled back, or failed naming what stayed).
    RollBack,
    /// Leave the targets as they are and record the deployment `status`.
    Stop {
        status: DeploymentStatus,
        /// The rollout is paused: the apply reports `paused`, and the next
        /// `apply` continues the rollout.
        paused: bool,
    },
}

/// The decision for a rollout whose `on_failure` is `on_failure`.
pub fn after_failed_step(on_failure: OnFailure) -> AfterFailure {
    match on_failure {
        OnFailure::Rollback => AfterFailure::RollBack,
        // Unfinished, whichever targets it reached: partial is what the
        // planner continues.
        OnFailure::Pause => AfterFailure::Stop {
            status: DeploymentStatus::Partial,
            paused: true,
        },
        OnFailure::Abort => AfterFailure::Stop {
            status: DeploymentStatus::Failed,
            paused: false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_policy_decides_one_thing_for_both_targets() {
        let decided: Vec<(OnFailure, AfterFailure)> =
            [OnFailure::Rollback, OnFailure::Pause, OnFailure::Abort]
                .into_iter()
                .map(|policy| (policy, after_failed_step(policy)))
                .collect();
        assert_eq!(
            decided,
            vec![
                (OnFailure::Rollback, AfterFailure::RollBack),
                (
                    OnFailure::Pause,
                    AfterFailure::Stop {
                        status: DeploymentStatus::Partial,
                        paused: true
                    }
                ),
                (
                    OnFailure::Abort,
                    AfterFailure::Stop {
                        status: DeploymentStatus::Failed,
                        paused: false
                    }
                ),
            ]
        );
    }
}
