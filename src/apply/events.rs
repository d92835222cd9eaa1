//! What happens during a rollout, as data: the events the VM and ECS
//! executors report to [`super::Progress`], which renders them as log lines,
//! spinners or `apply -json` objects (`event`, with `kind` and typed fields;
//! see `docs/apply-json.md`).
//!
//! Each event renders as the words the log has always shown ([`Display`]);
//! programs decide on `kind` and its fields, never on the words. Failure
//! lines keep their text in a `message` field: it says for people what went
//! wrong on a host, and may quote what the host printed (already withheld or
//! masked). Not here: deciding anything, or printing (the reporter does).
//!
//! [`Display`]: std::fmt::Display

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::Serialize;

use crate::ecs::short_arn;
use crate::plan::{Action, ScheduledStrategy};
use crate::state::DeploymentStatus;

/// A length in `apply -json`: seconds, as a number.
fn as_seconds<S: serde::Serializer>(length: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64(length.as_secs_f64())
}

/// One thing that happened to a deployment during apply, in one of five
/// families. Serialized as the family's event (`kind` and its fields), so
/// the JSON shape does not show the family.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Rollout(RolloutEvent),
    Host(HostEvent),
    Service(ServiceEvent),
    Traffic(TrafficEvent),
    Scaling(ScalingEvent),
}

impl Serialize for Event {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Event::Rollout(event) => event.serialize(serializer),
            Event::Host(event) => event.serialize(serializer),
            Event::Service(event) => event.serialize(serializer),
            Event::Traffic(event) => event.serialize(serializer),
            Event::Scaling(event) => event.serialize(serializer),
        }
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Rollout(event) => event.fmt(f),
            Event::Host(event) => event.fmt(f),
            Event::Service(event) => event.fmt(f),
            Event::Traffic(event) => event.fmt(f),
            Event::Scaling(event) => event.fmt(f),
        }
    }
}

impl From<RolloutEvent> for Event {
    fn from(event: RolloutEvent) -> Event {
        Event::Rollout(event)
    }
}

impl From<HostEvent> for Event {
    fn from(event: HostEvent) -> Event {
        Event::Host(event)
    }
}

impl From<ServiceEvent> for Event {
    fn from(event: ServiceEvent) -> Event {
        Event::Service(event)
    }
}

impl From<TrafficEvent> for Event {
    fn from(event: TrafficEvent) -> Event {
        Event::Traffic(event)
    }
}

impl From<ScalingEvent> for Event {
    fn from(event: ScalingEvent) -> Event {
        Event::Scaling(event)
    }
}

/// What happens to any deployment: it starts, waits, is judged by its gates, waits for an approval, and fails.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RolloutEvent {
    /// The deployment begins: `create 1.0.0 with rolling`.
    Started {
        action: Action,
        version: String,
        strategy: ScheduledStrategy,
    },
    /// A wait begins (`what`: `step 2/4: bake`, or a gate's next evaluation).
    Waiting {
        what: String,
        #[serde(rename = "seconds", serialize_with = "as_seconds")]
        length: Duration,
    },
    /// A verification gate was judged.
    GateJudged {
        step: usize,
        gate: String,
        passed: bool,
        summary: String,
    },
    /// One evaluation of a gate that is judged several times.
    GateEvaluated {
        gate: String,
        evaluation: u32,
        count: u32,
        sample: String,
    },
    /// The result of a gate could not be kept in state.
    GateNotRecorded { gate: String, error: String },
    /// The rollout stopped after `step` to wait for an approval.
    WaitingForApproval { step: usize, approval: String },
    /// An interrupted apply was rolling back after `step` failed; this one
    /// finishes that rollback (`apply_id` when state names it).
    FinishingInterruptedRollback {
        apply_id: Option<String>,
        step: usize,
    },
    /// A notification could not be sent.
    NotificationWarning { message: String },

    /// The deployment failed; `message` says why.
    Failed { message: String },
}

/// What happens on the VM hosts of a deployment.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum HostEvent {
    /// The hosts of step `step` (of `total`) are updated and judged.
    StepDone {
        step: usize,
        total: usize,
        hosts: Vec<String>,
    },
    /// Hosts of `step` failed, but no more than `max_failures` allows.
    FailuresWithinLimit {
        step: usize,
        failed: usize,
        allowed: usize,
    },
    /// Step `step` failed (a gate, or the hosts); `message` says why.
    StepFailed { step: usize, message: String },
    /// A host now serves `version`.
    HostUpdated { host: String, version: String },
    /// A host's update failed.
    HostFailed {
        host: String,
        phase: String,
        message: String,
    },
    /// A host an interrupted apply had finished is not updated again.
    HostAlreadyUpdated {
        host: String,
        version: String,
        apply_id: String,
    },
    /// An interrupted apply left an unfinished step on a host; this apply
    /// takes the host over.
    HostTakenOver {
        host: String,
        action: String,
        version: String,
        apply_id: String,
    },
    /// The host was read again: the interrupted apply had (or had not)
    /// finished its update.
    HostRechecked {
        host: String,
        version: String,
        apply_id: String,
        finished: bool,
    },
    /// `on_failure = "pause"`: the hosts stay as they are.
    Paused,
    /// A rejected approval: the hosts the rollout moved go back.
    Rejected { version: String },
    /// Nothing to put back after `reason` (`step 2 failed`, `rejected`).
    NothingToRollBack { reason: String },
    /// The hosts the rollout moved go back after `reason`.
    RollingBackHosts { reason: String, hosts: Vec<String> },
    /// `slipway rollback`: hosts go back to `version`, `at_a_time` at once.
    RollingBackToRelease {
        hosts: usize,
        version: String,
        at_a_time: usize,
    },
    /// A host serves `version` again.
    HostRolledBack { host: String, version: String },
    /// A host that ran nothing before the rollout was stopped.
    HostStopped { host: String },
    /// A rollback of a host failed (`rolled_back: false`: the host may
    /// still run the new version), or went back with a problem.
    RollbackProblem {
        host: String,
        rolled_back: bool,
        message: String,
    },
    /// The deployment's hosts are done.
    HostsEnded { ended: HostsEnd },
}

/// What happens to the ECS services and task definitions of a deployment.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ServiceEvent {
    /// ECS runs a service state did not know; the rollout adopts it.
    ServiceAdopted {
        service: String,
        task_definition: String,
        tasks: u32,
    },
    /// The task definition ECS has already matches; nothing registered.
    TaskDefinitionMatches {
        task_definition: String,
    },
    TaskDefinitionRegistered {
        task_definition: String,
    },
    ServiceCreated {
        service: String,
        task_definition: String,
    },
    /// The service now runs `task_definition` (`version` for a rollback).
    ServiceUpdated {
        service: String,
        task_definition: String,
        version: Option<String>,
    },
    ServiceStable {
        service: String,
        tasks: i32,
    },
    ServiceDeleted {
        service: String,
    },
    RollingBackTo {
        task_definition: String,
    },
    /// A failed first rollout: the new service is removed.
    RemovingNewService,
    /// A serving service is set back to `task_definition`.
    SettingServiceBack {
        service: String,
        task_definition: String,
    },
    /// A failure was not rolled back: it has no record kept.
    NoRecordKept,
    /// `on_failure = "pause"`: the service and its traffic stay as they are.
    Paused,
    /// The deployment's service is done.
    ServiceEnded {
        ended: ServiceEnd,
    },
}

/// What happens to the listener traffic of an ECS deployment.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TrafficEvent {
    /// The service already runs the new task definition with all traffic.
    NothingToShift {
        service: String,
        task_definition: String,
    },
    /// `percent` of the listener's traffic is on `service` at step `step`
    /// of `total`.
    TrafficShifted {
        step: usize,
        total: usize,
        percent: u32,
        service: String,
        how: ShiftKind,
    },
    /// All traffic goes back, and `removing` is deleted; `to` names the
    /// service that takes it when known.
    TrafficSentBack {
        to: Option<String>,
        removing: String,
    },
    /// Update in place: `service` is updated while `temporary` carries all
    /// the traffic.
    UpdatingInPlace {
        service: String,
        task_definition: String,
        temporary: String,
    },
    /// Update in place: all traffic is back on `service`.
    TrafficBackOn {
        service: String,
        task_definition: String,
    },
    /// A canary left by an unfinished rollout is withdrawn first.
    CanaryWithdrawn {
        percent: u32,
        canary: String,
        to: String,
    },
    /// An interrupted apply was bringing `service` to `task_definition`; it
    /// goes back to `previous` (its recorded task definition) with all
    /// traffic first.
    InterruptedRolloutUndone {
        service: String,
        task_definition: Option<String>,
        previous: Option<String>,
    },
    /// The listener goes back to the weights state recorded (`live`: what
    /// it had, when set outside slipway).
    ListenerRestored {
        listener: String,
        live: Option<BTreeMap<String, i32>>,
        recorded: BTreeMap<String, u32>,
    },
    /// How a traffic step (`percent` on `service`) an interrupted apply
    /// left uncertain was settled.
    InterruptedShiftSettled {
        step: usize,
        percent: u32,
        service: String,
        apply_id: String,
        settled: ShiftSettled,
    },
}

/// What happens to the autoscaling of an ECS service around a rollout.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ScalingEvent {
    AutoscalingSuspended {
        resource: String,
        min: u32,
        max: u32,
    },
    /// Autoscaling runs `tasks` tasks; the rollout uses `floor`, not the
    /// planned count.
    AutoscalingFloor {
        service: String,
        tasks: i32,
        min: u32,
        max: u32,
        floor: i32,
        planned: i32,
    },
    /// Autoscaling restored, on `resource` (moved from `from` when the
    /// serving service changed).
    AutoscalingRestored {
        resource: String,
        from: Option<String>,
    },
    /// The autoscaling target an interrupted apply was moving is moved and
    /// restored.
    AutoscalingMoveFinished { from: String, to: String },
    /// Autoscaling could not be restored; `message` says what to do.
    AutoscalingNotRestored { message: String },
}

/// How a traffic step came about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ShiftKind {
    /// This apply set the listener.
    Shifted,
    /// An interrupted apply had set it; it is checked before going on.
    AlreadyShifted,
    /// Nothing served before: the new service takes all traffic at once.
    FirstService,
}

/// What the listener showed of a traffic step an interrupted apply began.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ShiftSettled {
    Done,
    NotDone,
    ChangedByHand,
}

/// How a VM deployment ended, in host counts.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum HostsEnd {
    Deployed {
        version: String,
        hosts: usize,
    },
    RolledBack {
        hosts: usize,
    },
    /// An interrupt stopped it after `hosts` moved to `version`.
    Interrupted {
        version: String,
        hosts: usize,
    },
    WaitingForApproval {
        version: String,
        hosts: usize,
    },
    Partial {
        version: String,
        hosts: usize,
        failed: usize,
    },
    /// A rollback that could not put every host back.
    NotRolledBack {
        rolled_back: usize,
        not_rolled_back: usize,
    },
    Failed {
        failed: usize,
    },
}

impl fmt::Display for HostsEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostsEnd::Deployed { version, hosts } => {
                write!(f, "deployed {version} to {hosts} host(s)")
            }
            HostsEnd::RolledBack { hosts } => write!(f, "rolled back {hosts} host(s)"),
            HostsEnd::Interrupted { version, hosts } => write!(
                f,
                "interrupted: {hosts} host(s) moved to {version} by this apply; `slipway apply` continues the rollout"
            ),
            HostsEnd::WaitingForApproval { version, hosts } => write!(
                f,
                "waiting for approval: {hosts} host(s) moved to {version} so far"
            ),
            HostsEnd::Partial {
                version,
                hosts,
                failed,
            } => write!(f, "partial: {hosts} host(s) on {version}, {failed} failed"),
            HostsEnd::NotRolledBack {
                rolled_back,
                not_rolled_back,
            } => write!(
                f,
                "failed: {rolled_back} host(s) rolled back, {not_rolled_back} NOT rolled back"
            ),
            HostsEnd::Failed { failed } => write!(f, "failed ({failed} host(s) failed)"),
        }
    }
}

/// How an ECS deployment ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum ServiceEnd {
    Deployed {
        version: String,
        task_definition: String,
        tasks: i32,
    },
    RolledBack,
    WaitingForApproval,
    /// Failed or partial.
    Other {
        status: DeploymentStatus,
    },
}

impl fmt::Display for RolloutEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use RolloutEvent as E;
        match self {
            E::Started {
                action,
                version,
                strategy,
            } => write!(f, "{} {version} with {strategy}", action.as_str()),
            E::Waiting { what, length } => {
                write!(f, "{what}: waiting {}", super::progress::short(*length))
            }
            E::GateJudged { gate, summary, .. } => write!(f, "gate {gate}: {summary}"),
            E::GateEvaluated {
                gate,
                evaluation,
                count,
                sample,
            } => write!(f, "gate {gate}: evaluation {evaluation}/{count}: {sample}"),
            E::GateNotRecorded { gate, error } => {
                write!(f, "gate {gate}: could not record the result: {error}")
            }
            E::WaitingForApproval { step, approval } => {
                write!(f, "step {step}: waiting for approval \"{approval}\"")
            }
            E::FinishingInterruptedRollback {
                apply_id: None,
                step,
            } => write!(
                f,
                "an interrupted apply was rolling back after step {step} failed: finishing its rollback"
            ),
            E::FinishingInterruptedRollback {
                apply_id: Some(apply_id),
                step,
            } => write!(
                f,
                "the interrupted apply {apply_id} was rolling back after step {step} failed: finishing its rollback"
            ),
            E::NotificationWarning { message } => write!(f, "warning: {message}"),
            E::Failed { message } => write!(f, "failed: {message}"),
        }
    }
}

impl fmt::Display for HostEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use HostEvent as E;
        match self {
            E::StepDone { step, total, hosts } => {
                write!(f, "step {step}/{total} done: {}", hosts.join(", "))
            }
            E::FailuresWithinLimit {
                step,
                failed,
                allowed,
            } => write!(
                f,
                "step {step}: {failed} host(s) failed, within max_failures ({allowed})"
            ),
            E::StepFailed { step, message } => write!(f, "step {step}: {message}"),
            E::HostUpdated { host, version } => write!(f, "{host}: on {version}"),
            E::HostFailed {
                host,
                phase,
                message,
            } => write!(f, "{host}: {phase} failed: {message}"),
            E::HostAlreadyUpdated {
                host,
                version,
                apply_id,
            } => write!(
                f,
                "{host}: re-checked, not updated again: on {version} (the interrupted apply {apply_id} had finished it)"
            ),
            E::HostTakenOver {
                host,
                action,
                version,
                apply_id,
            } => write!(
                f,
                "{host}: the {action} {version} of interrupted apply {apply_id} may or may not have happened; this apply takes the host over"
            ),
            E::HostRechecked {
                host,
                version,
                apply_id,
                finished,
            } => write!(
                f,
                "{host}: re-checked: apply {apply_id} had {}finished its update to {version}",
                if *finished { "" } else { "not " }
            ),
            E::Paused => f.write_str(
                "paused: hosts are left as they are; fix the cause and run `slipway apply` to continue with the hosts that remain",
            ),
            E::Rejected { version } => write!(
                f,
                "rejected: rolling back the hosts the rollout of {version} moved"
            ),
            E::NothingToRollBack { reason } => {
                write!(f, "{reason}: the rollout moved no host, nothing to roll back")
            }
            E::RollingBackHosts { reason, hosts } => write!(
                f,
                "{reason}: rolling back {} host(s) the rollout moved: {}",
                hosts.len(),
                hosts.join(", ")
            ),
            E::RollingBackToRelease {
                hosts,
                version,
                at_a_time,
            } => write!(
                f,
                "rolling back {hosts} host(s) to {version}, {at_a_time} at a time"
            ),
            E::HostRolledBack { host, version } => write!(f, "{host}: rolled back to {version}"),
            E::HostStopped { host } => {
                write!(f, "{host}: stopped (nothing ran here before the rollout)")
            }
            E::RollbackProblem { message, .. } => f.write_str(message),
            E::HostsEnded { ended } => ended.fmt(f),
        }
    }
}

impl fmt::Display for ServiceEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ServiceEvent as E;
        match self {
            E::ServiceAdopted {
                service,
                task_definition,
                tasks,
            } => write!(
                f,
                "adopting service {service} (task definition {}, {tasks} task(s)), which state did not know",
                short_arn(task_definition)
            ),
            E::TaskDefinitionMatches { task_definition } => write!(
                f,
                "task definition {} already matches; not registering",
                short_arn(task_definition)
            ),
            E::TaskDefinitionRegistered { task_definition } => write!(
                f,
                "registered task definition {}",
                short_arn(task_definition)
            ),
            E::ServiceCreated {
                service,
                task_definition,
            } => write!(
                f,
                "service {service} created with {}",
                short_arn(task_definition)
            ),
            E::ServiceUpdated {
                service,
                task_definition,
                version: None,
            } => write!(
                f,
                "service {service} updated to {}",
                short_arn(task_definition)
            ),
            E::ServiceUpdated {
                service,
                task_definition,
                version: Some(version),
            } => write!(
                f,
                "service {service} updated to {} ({version})",
                short_arn(task_definition)
            ),
            E::ServiceStable { service, tasks } => {
                write!(f, "service {service} is stable ({tasks} task(s))")
            }
            E::ServiceDeleted { service } => write!(f, "service {service} deleted"),
            E::RollingBackTo { task_definition } => {
                write!(f, "rolling back to {}", short_arn(task_definition))
            }
            E::RemovingNewService => {
                f.write_str("removing the new service (there is no previous version)")
            }
            E::SettingServiceBack {
                service,
                task_definition,
            } => write!(f, "setting {service} back to {}", short_arn(task_definition)),
            E::NoRecordKept => {
                f.write_str("no record kept: ECS runs what it ran before this deployment")
            }
            E::Paused => f.write_str(
                "paused: the service and its traffic are left as they are; fix the cause and run `slipway apply` to continue the rollout",
            ),
            E::ServiceEnded { ended } => match ended {
                ServiceEnd::Deployed {
                    version,
                    task_definition,
                    tasks,
                } => write!(
                    f,
                    "deployed {version} ({}, {tasks} task(s))",
                    short_arn(task_definition)
                ),
                ServiceEnd::RolledBack => f.write_str("rolled back"),
                ServiceEnd::WaitingForApproval => f.write_str("waiting for approval"),
                ServiceEnd::Other { status } => write!(f, "ended {status}"),
            },
        }
    }
}

impl fmt::Display for TrafficEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use TrafficEvent as E;
        match self {
            E::NothingToShift {
                service,
                task_definition,
            } => write!(
                f,
                "{service} already runs {} and has all traffic; nothing to shift",
                short_arn(task_definition)
            ),
            E::TrafficShifted {
                step,
                total,
                percent,
                service,
                how,
            } => match how {
                ShiftKind::Shifted => write!(
                    f,
                    "step {step}/{total}: {percent}% of traffic on {service}"
                ),
                ShiftKind::AlreadyShifted => write!(
                    f,
                    "step {step}/{total}: {percent}% on {service} since the interrupted apply; checking it before going on"
                ),
                ShiftKind::FirstService => write!(
                    f,
                    "step {step}/{total}: {percent}% of traffic on {service} (nothing served before)"
                ),
            },
            E::TrafficSentBack { to: None, removing } => {
                write!(f, "sending all traffic back and removing {removing}")
            }
            E::TrafficSentBack {
                to: Some(to),
                removing,
            } => write!(f, "sending all traffic back to {to} and removing {removing}"),
            E::UpdatingInPlace {
                service,
                task_definition,
                temporary,
            } => write!(
                f,
                "updating {service} to {} while {temporary} carries all the traffic",
                short_arn(task_definition)
            ),
            E::TrafficBackOn {
                service,
                task_definition,
            } => write!(
                f,
                "all traffic back on {service}, which now runs {}",
                short_arn(task_definition)
            ),
            E::CanaryWithdrawn {
                percent,
                canary,
                to,
            } => write!(
                f,
                "the {percent}% of traffic on {canary} left by an unfinished rollout goes back to {to}, and {canary} is removed, before the rolling update"
            ),
            E::InterruptedRolloutUndone {
                service,
                task_definition,
                previous,
            } => write!(
                f,
                "an interrupted apply was bringing {service} to {}; it goes back to {} with all traffic first",
                task_definition.as_deref().map_or("", short_arn),
                previous
                    .as_deref()
                    .map_or("its recorded task definition", short_arn)
            ),
            E::ListenerRestored {
                listener,
                live: None,
                recorded,
            } => write!(
                f,
                "listener {} set back to the recorded {recorded:?}",
                short_arn(listener)
            ),
            E::ListenerRestored {
                listener,
                live: Some(live),
                recorded,
            } => write!(
                f,
                "listener {} had weights {live:?} set outside slipway; set back to the recorded {recorded:?}",
                short_arn(listener)
            ),
            E::InterruptedShiftSettled {
                step,
                percent,
                service,
                apply_id,
                settled,
            } => {
                write!(f, "step {step} ({percent}% on {service}): ")?;
                match settled {
                    ShiftSettled::Done => write!(
                        f,
                        "the interrupted apply {apply_id} had shifted the listener; recorded"
                    ),
                    ShiftSettled::NotDone => write!(
                        f,
                        "the interrupted apply {apply_id} had not changed the listener; the step runs again"
                    ),
                    ShiftSettled::ChangedByHand => write!(
                        f,
                        "the listener was changed outside slipway since the interrupted apply {apply_id}; it is set back to the recorded weights"
                    ),
                }
            }
        }
    }
}

impl fmt::Display for ScalingEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ScalingEvent as E;
        match self {
            E::AutoscalingSuspended { resource, min, max } => write!(
                f,
                "autoscaling of {resource} suspended while the rollout runs (min {min}, max {max})"
            ),
            E::AutoscalingFloor {
                service,
                tasks,
                min,
                max,
                floor,
                planned,
            } => write!(
                f,
                "{service} runs {tasks} task(s) under autoscaling (min {min}, max {max}); the rollout uses {floor}, not the planned {planned}"
            ),
            E::AutoscalingRestored {
                resource,
                from: None,
            } => write!(f, "autoscaling of {resource} restored"),
            E::AutoscalingRestored {
                resource,
                from: Some(from),
            } => write!(
                f,
                "autoscaling target moved from {from} to {resource} with its policies and scheduled actions, and restored"
            ),
            E::AutoscalingMoveFinished { from, to } => write!(
                f,
                "the autoscaling target an interrupted apply was moving from {from} to {to} is moved, and restored"
            ),
            E::AutoscalingNotRestored { message } => f.write_str(message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(event: impl Into<Event>) -> String {
        event.into().to_string()
    }

    /// The words the log showed before events were data: scripts and people
    /// who read CI logs see the same lines.
    #[test]
    fn events_read_as_the_log_lines_they_replace() {
        assert_eq!(
            text(RolloutEvent::Started {
                action: Action::Create,
                version: "1.0.0".into(),
                strategy: ScheduledStrategy::Rolling,
            }),
            "create 1.0.0 with rolling"
        );
        assert_eq!(
            text(RolloutEvent::Waiting {
                what: "step 2/4: bake".into(),
                length: Duration::from_secs(300),
            }),
            "step 2/4: bake: waiting 5m00s"
        );
        assert_eq!(
            text(HostEvent::StepDone {
                step: 1,
                total: 2,
                hosts: vec!["web-1".into(), "web-2".into()],
            }),
            "step 1/2 done: web-1, web-2"
        );
        assert_eq!(
            text(HostEvent::HostRechecked {
                host: "web-1".into(),
                version: "2.0.0".into(),
                apply_id: "a1".into(),
                finished: false,
            }),
            "web-1: re-checked: apply a1 had not finished its update to 2.0.0"
        );
        assert_eq!(
            text(HostEvent::RollingBackHosts {
                reason: "step 2 failed".into(),
                hosts: vec!["web-1".into(), "web-2".into()],
            }),
            "step 2 failed: rolling back 2 host(s) the rollout moved: web-1, web-2"
        );
        assert_eq!(
            text(HostEvent::HostsEnded {
                ended: HostsEnd::NotRolledBack {
                    rolled_back: 1,
                    not_rolled_back: 2,
                },
            }),
            "failed: 1 host(s) rolled back, 2 NOT rolled back"
        );
        assert_eq!(
            text(RolloutEvent::FinishingInterruptedRollback {
                apply_id: Some("a1".into()),
                step: 2,
            }),
            "the interrupted apply a1 was rolling back after step 2 failed: finishing its rollback"
        );
    }

    #[test]
    fn ecs_events_name_task_definitions_by_their_short_arn() {
        let arn = "arn:aws:ecs:us-east-1:123456789012:task-definition/api:7";
        assert_eq!(
            text(TrafficEvent::TrafficShifted {
                step: 2,
                total: 3,
                percent: 25,
                service: "api-canary".into(),
                how: ShiftKind::Shifted,
            }),
            "step 2/3: 25% of traffic on api-canary"
        );
        assert_eq!(
            text(TrafficEvent::TrafficShifted {
                step: 1,
                total: 1,
                percent: 100,
                service: "api".into(),
                how: ShiftKind::FirstService,
            }),
            "step 1/1: 100% of traffic on api (nothing served before)"
        );
        assert_eq!(
            text(ServiceEvent::ServiceUpdated {
                service: "api".into(),
                task_definition: arn.into(),
                version: Some("1.0.0".into()),
            }),
            "service api updated to api:7 (1.0.0)"
        );
        assert_eq!(
            text(TrafficEvent::InterruptedRolloutUndone {
                service: "api".into(),
                task_definition: Some(arn.into()),
                previous: None,
            }),
            "an interrupted apply was bringing api to api:7; it goes back to its recorded task definition with all traffic first"
        );
        assert_eq!(
            text(TrafficEvent::InterruptedShiftSettled {
                step: 2,
                percent: 50,
                service: "api-canary".into(),
                apply_id: "a1".into(),
                settled: ShiftSettled::NotDone,
            }),
            "step 2 (50% on api-canary): the interrupted apply a1 had not changed the listener; the step runs again"
        );
        assert_eq!(
            text(ScalingEvent::AutoscalingRestored {
                resource: "service/prod/api".into(),
                from: Some("service/prod/api-canary".into()),
            }),
            "autoscaling target moved from service/prod/api-canary to service/prod/api with its policies and scheduled actions, and restored"
        );
        assert_eq!(
            text(ServiceEvent::ServiceEnded {
                ended: ServiceEnd::Other {
                    status: DeploymentStatus::Failed,
                },
            }),
            "ended failed"
        );
    }

    /// `apply -json` carries the event as data: `kind` and its fields, full
    /// ARNs, numbers as numbers.
    #[test]
    fn an_event_is_json_with_its_kind_and_typed_fields() {
        let event = TrafficEvent::TrafficShifted {
            step: 2,
            total: 3,
            percent: 25,
            service: "api-canary".into(),
            how: ShiftKind::AlreadyShifted,
        };
        assert_eq!(
            serde_json::to_value(Event::from(event.clone())).unwrap(),
            serde_json::to_value(&event).unwrap(),
            "the family does not show"
        );
        assert_eq!(
            serde_json::to_value(&event).unwrap(),
            serde_json::json!({
                "kind": "traffic_shifted",
                "step": 2,
                "total": 3,
                "percent": 25,
                "service": "api-canary",
                "how": "already_shifted",
            })
        );
        let ended = HostEvent::HostsEnded {
            ended: HostsEnd::Deployed {
                version: "1.0.0".into(),
                hosts: 3,
            },
        };
        assert_eq!(
            serde_json::to_value(&ended).unwrap(),
            serde_json::json!({
                "kind": "hosts_ended",
                "ended": {"result": "deployed", "version": "1.0.0", "hosts": 3},
            })
        );
        assert_eq!(
            serde_json::to_value(RolloutEvent::Waiting {
                what: "step 1/1: bake".into(),
                length: Duration::from_millis(11_500),
            })
            .unwrap(),
            serde_json::json!({"kind": "waiting", "what": "step 1/1: bake", "seconds": 11.5})
        );
        let in_progress = ServiceEvent::ServiceEnded {
            ended: ServiceEnd::Other {
                status: DeploymentStatus::InProgress,
            },
        };
        assert_eq!(text(in_progress.clone()), "ended in_progress");
        assert_eq!(
            serde_json::to_value(&in_progress).unwrap(),
            serde_json::json!({"kind": "service_ended", "ended": {"result": "other", "status": "in_progress"}})
        );
        let started = RolloutEvent::Started {
            action: Action::Update,
            version: "2.0.0".into(),
            strategy: ScheduledStrategy::BlueGreen,
        };
        assert_eq!(
            serde_json::to_value(&started).unwrap(),
            serde_json::json!({
                "kind": "started",
                "action": "update",
                "version": "2.0.0",
                "strategy": "blue_green",
            })
        );
    }
}
