//! Apply's side of notifications: which event a deployment's course
//! produces, and the warning line a failed delivery leaves in apply's output.
//!
//! A deployment that apply changes sends `started` before its first step and,
//! when it ends, `succeeded`, or `failed` followed by `rolled_back` when its
//! rollout put it back on the previous version. A deployment that stops at an
//! approval sends `approval_waiting` instead. Delivery problems are warnings: they never change an
//! outcome.
//!
//! Not here: payloads and delivery (`crate::notify`).

use super::{ApplyOptions, DeploymentOutcome, Progress, Recorder};
use crate::config::Config;
use crate::notify::{Details, EventKind, Notifier};
use crate::plan::{Action, DeploymentChange};
use crate::state::DeploymentStatus;

/// Send `kind` to the notifier's webhooks; a failed delivery becomes a
/// warning line of the deployment.
pub async fn send(notifier: &Notifier, kind: EventKind, details: &Details, progress: &Progress) {
    if notifier.is_empty() {
        return;
    }
    for warning in notifier.send(kind, details).await {
        progress.report(
            &notifier.context().deployment,
            super::events::RolloutEvent::NotificationWarning {
                message: warning.to_string(),
            },
        );
    }
}

/// A deployment is about to change: send `started` and return its notifier
/// (`None` for a destroy, which only forgets state, or without notify blocks).
pub async fn started(
    config: &Config,
    change: &DeploymentChange,
    options: &ApplyOptions,
    progress: &Progress,
) -> Option<Notifier> {
    if change.action == Action::Destroy {
        return None;
    }
    let notifier = Notifier::new(config, change, &options.apply_id);
    if notifier.is_empty() {
        return None;
    }
    send(&notifier, EventKind::Started, &Details::default(), progress).await;
    Some(notifier)
}

/// The events a deployment's outcome sends, in order: a failed outcome's
/// error is the `failed` event's message. `recorded` is the status state
/// holds for it now; `waiting`, the approval it stopped at.
pub fn closing_events<E: std::fmt::Display>(
    outcome: &Result<DeploymentOutcome, E>,
    recorded: Option<&DeploymentStatus>,
    waiting: Option<Details>,
) -> Vec<(EventKind, Details)> {
    let failed = |message: String| Details {
        message: Some(message),
        ..Details::default()
    };
    match outcome {
        Err(error) => vec![(EventKind::Failed, failed(error.to_string()))],
        Ok(outcome) if outcome.waiting_approval.is_some() => waiting
            .map(|details| vec![(EventKind::ApprovalWaiting, details)])
            .unwrap_or_default(),
        Ok(outcome) if outcome.failures.is_empty() => {
            vec![(EventKind::Succeeded, Details::default())]
        }
        Ok(outcome) => {
            let mut events = vec![(EventKind::Failed, failed(outcome.failures.join("\n")))];
            if recorded == Some(&DeploymentStatus::RolledBack) {
                events.push((EventKind::RolledBack, Details::default()));
            }
            events
        }
    }
}

/// The deployment ended: send its closing events.
pub async fn finished<E: std::fmt::Display>(
    config: &Config,
    notifier: Option<&Notifier>,
    outcome: &Result<DeploymentOutcome, E>,
    recorder: &Recorder,
    progress: &Progress,
) {
    let Some(notifier) = notifier else {
        return;
    };
    let address = &notifier.context().deployment;
    let saved = recorder.deployment(address);
    let waiting = saved
        .as_ref()
        .and_then(|d| d.waiting_approval())
        .map(|w| Details {
            message: outcome
                .as_ref()
                .ok()
                .and_then(|o| o.waiting_approval.clone()),
            approval: Some(w.name.clone()),
            step: Some(w.after_step),
            approvers: config
                .deployments
                .get(address)
                .and_then(|d| config.rollout_of(d))
                .and_then(|r| r.approvals.iter().find(|a| a.name == w.name))
                .map(|a| a.approvers.clone())
                .unwrap_or_default(),
        });
    let recorded = saved.map(|d| d.status);
    for (kind, details) in closing_events(outcome, recorded.as_ref(), waiting) {
        send(notifier, kind, &details, progress).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(events: Vec<(EventKind, Details)>) -> Vec<&'static str> {
        events.into_iter().map(|(k, _)| k.as_str()).collect()
    }

    #[test]
    fn outcomes_map_to_closing_events() {
        let ok = Ok::<_, String>(DeploymentOutcome::default());
        assert_eq!(
            kinds(closing_events(&ok, Some(&DeploymentStatus::Deployed), None)),
            ["succeeded"]
        );
        let failed = Ok::<_, String>(DeploymentOutcome {
            failures: vec!["deployment.a: host-1: health.http failed".into()],
            ..DeploymentOutcome::default()
        });
        assert_eq!(
            kinds(closing_events(
                &failed,
                Some(&DeploymentStatus::RolledBack),
                None
            )),
            ["failed", "rolled_back"]
        );
        let events = closing_events(&failed, Some(&DeploymentStatus::Failed), None);
        assert_eq!(
            events[0].1.message.as_deref(),
            Some("deployment.a: host-1: health.http failed")
        );
        assert_eq!(kinds(events), ["failed"]);
        assert_eq!(
            kinds(closing_events(
                &Err::<_, String>("no state".into()),
                None,
                None
            )),
            ["failed"]
        );
        let waiting = Ok::<_, String>(DeploymentOutcome {
            waiting_approval: Some("waits".into()),
            ..DeploymentOutcome::default()
        });
        let details = Details {
            approval: Some("release-manager".into()),
            step: Some(1),
            ..Details::default()
        };
        let events = closing_events(&waiting, Some(&DeploymentStatus::Partial), Some(details));
        assert_eq!(events[0].1.approval.as_deref(), Some("release-manager"));
        assert_eq!(kinds(events), ["approval_waiting"]);
    }
}
