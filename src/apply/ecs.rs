//! Applying one ECS deployment with aws-sdk-ecs and
//! aws-sdk-elasticloadbalancingv2.
//!
//! - Register the task definition, unless the latest revision of the family
//!   already matches (compared as JSON, `crate::ecs::definition_json`).
//! - **rolling** / **all_at_once**: create the service or update it, then poll
//!   it with backoff until only the new deployment runs at the desired count
//!   (`crate::ecs::judge`). On failure with `on_failure = "rollback"`, the
//!   service goes back to the previous task definition revision; `pause`
//!   and `abort` leave it as it is, recorded partial (the next apply
//!   continues) or failed, as `super::on_failure` decides for both targets.
//! - **canary** / **blue_green**: the serving service keeps its name, its
//!   target group and its autoscaling target for good. The new version
//!   starts beside it in a temporary service behind the listener's other
//!   target group (`crate::ecs::canary_service_name`); once stable, the
//!   listener's weights move step by step, each after checking the listener
//!   and the new target group as they really are, then bake and gates. At
//!   100% the serving service is updated in place while the canary carries
//!   the traffic, takes all of it back, and the canary is removed (a
//!   `promote` journal entry). Rollback sends all traffic back (after setting
//!   the serving service's task definition back, if its update had begun)
//!   and deletes the temporary service. A first rollout, with nothing
//!   serving, creates the configured service and gives it all traffic.
//!
//! Every change is recorded in state as it happens ([`Recorder`]). Each
//! listener change is also a journal entry: a `traffic` step (version and
//! share, "2.0.0 25%") or the `rollback`, written as started before the
//! listener is touched and as finished in the same write as the new weights.
//! After a killed apply, the next one resumes from the journal:
//!
//! - an uncertain `traffic` step is settled from the listener as it is
//!   (`crate::ecs::judge_interrupted_shift`): its weights mean the shift
//!   happened and is only recorded; the recorded weights mean it runs again;
//!   anything else is a listener changed behind slipway's back. The step the
//!   killed apply shifted last is checked (bake, health, gates, approval)
//!   before the rollout goes on from the next step;
//! - a killed apply whose last step was a `rollback` has its rollback
//!   finished (all traffic back, the new service removed, both idempotent);
//!   of the same version, the deployment ends rolled back.
//!
//! What fails or is refused is an [`EcsApplyError`], whose message apply
//! prints and records as the deployment's failure.
//!
//! Not here: deciding what to change (the planner) or the shapes of requests
//! (`crate::ecs`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aws_sdk_ecs::types::{
    AssignPublicIp, AwsVpcConfiguration, Compatibility, DeploymentCircuitBreaker,
    DeploymentConfiguration, LaunchType, LoadBalancer, NetworkConfiguration, NetworkMode,
};
use aws_sdk_elasticloadbalancingv2::types::{
    Action as ListenerAction, ActionTypeEnum, ForwardActionConfig, TargetGroupTuple,
    TargetHealthStateEnum,
};

use super::events::{
    Event, RolloutEvent, ScalingEvent, ServiceEnd, ServiceEvent, ShiftKind, ShiftSettled,
    TrafficEvent,
};
use super::gates::GateError;
use super::on_failure::{self, AfterFailure};
use super::recorder::StepRecord;
use super::scaling::ScalingError;
use super::{gates, ApplyOptions, DeploymentOutcome, Progress, Recorder};
use crate::aws::{self, error_text};
use crate::config::{Config, Deployment, DurationText, EcsCluster, EcsSpec, OnFailure, Rollout};
use crate::ecs::{
    self as requests, DeploymentSnapshot, InterruptedShift, ServiceSnapshot, Verdict,
};
use crate::plan::planner::desired_task_definition;
use crate::plan::{DeploymentChange, ScheduledDeployment, Step, StepKind};
use crate::state::{
    CanaryState, DeploymentStatus, EcsState, JournalAction, JournalEntry, State, StateError,
    StepOutcome, StepResult,
};

/// How long apply waits for a deployment to become stable by default.
const DEFAULT_WAIT_TIMEOUT: Duration = Duration::from_secs(600);
/// Polling starts this fast and slows down to [`MAX_POLL_INTERVAL`].
const FIRST_POLL_INTERVAL: Duration = Duration::from_millis(200);
const MAX_POLL_INTERVAL: Duration = Duration::from_secs(5);

/// Why an ECS deployment, its rejection (`slipway reject`) or its rollback
/// (`slipway rollback`) failed or was refused. The message is what apply
/// prints and records (`DeploymentOutcome`, the summary).
#[derive(Debug, thiserror::Error)]
pub enum EcsApplyError {
    /// The deployment is not in the configuration.
    #[error("{address} is not in the configuration")]
    UnknownDeployment { address: String },
    /// The configuration lacks what an ECS deployment needs (`missing`:
    /// the environment, the service's ecs block, the environment's
    /// ecs_cluster).
    #[error("{address}: {missing}")]
    NotConfigured {
        address: String,
        missing: &'static str,
    },
    /// An AWS call failed: which one, on what, and the SDK's message.
    #[error("{call}: {message}")]
    Aws { call: AwsCall, message: String },
    /// RegisterTaskDefinition answered without the new revision's ARN.
    #[error("RegisterTaskDefinition returned no ARN")]
    NoTaskDefinitionArn,
    /// The task definition's containers could not be built.
    #[error(transparent)]
    Containers(#[from] requests::ContainerError),
    /// A request could not be built (the service's awsvpc configuration).
    #[error(transparent)]
    Request(#[from] aws_sdk_ecs::error::BuildError),
    /// ECS says the service cannot reach the new task definition.
    #[error("service {service}: {reason}")]
    Unstable { service: String, reason: String },
    /// After a traffic step, the new service is failing (`reason`: ECS's
    /// verdict, which names the service).
    #[error("{reason}")]
    ServiceFailed { service: String, reason: String },
    /// The service was not stable within the wait timeout; `waiting`: what
    /// it was still waiting for.
    #[error("service {service} did not become stable within {timeout:?}: {waiting}")]
    WaitTimedOut {
        service: String,
        timeout: Duration,
        waiting: String,
    },
    /// DescribeListeners does not know the listener.
    #[error("listener {listener} not found")]
    ListenerNotFound { listener: String },
    /// The listener's weights changed during the rollout.
    #[error(
        "listener {} changed during the rollout: expected weights {expected:?}, found {found:?}",
        requests::short_arn(.listener)
    )]
    ListenerChanged {
        listener: String,
        expected: BTreeMap<String, u32>,
        found: BTreeMap<String, i32>,
    },
    /// The serving side's live weight is not the recorded one: someone
    /// changed the listener, and the rollout does not go on.
    #[error(
        "listener {} does not look as recorded: state says {recorded:?}, the listener has {live:?}; run `slipway plan -refresh` and check who changed it",
        requests::short_arn(.listener)
    )]
    ListenerNotAsRecorded {
        listener: String,
        recorded: BTreeMap<String, u32>,
        live: BTreeMap<String, i32>,
    },
    /// A traffic step a killed apply left uncertain: the listener has
    /// neither the recorded weights nor the step's.
    #[error(
        "listener {} does not look as recorded: state says {:?}, the interrupted apply {} was setting {:?} ({}), the listener has {:?}; run `slipway plan -refresh` and check who changed it",
        requests::short_arn(&.0.listener),
        .0.recorded,
        .0.apply_id,
        .0.intended,
        .0.step,
        .0.live
    )]
    ListenerDrifted(Box<ListenerDrift>),
    /// Targets of the new side's target group are unhealthy or
    /// unavailable: it gets no more traffic.
    #[error(
        "target group {} has unhealthy targets: {}",
        requests::short_arn(.target_group),
        .targets.join(", ")
    )]
    UnhealthyTargets {
        target_group: String,
        targets: Vec<String>,
    },
    /// A service of the name exists that state does not know and the plan
    /// did not adopt; refused before anything changed.
    #[error(
        "service {service} exists in cluster {cluster} but the plan did not adopt it (state has no record of it); nothing was changed: run `slipway plan` again"
    )]
    NotAdopted { service: String, cluster: String },
    /// The name the new side needs is taken by a service state does not
    /// know; refused before anything changed.
    #[error(
        "service {service} exists in cluster {cluster} but state has no record of it, and the {strategy} rollout needs that name for the new version beside {serving}; nothing was changed: delete or rename {service}"
    )]
    NameTaken {
        service: String,
        cluster: String,
        strategy: String,
        serving: String,
    },
    /// A canary or blue/green without a listener to shift.
    #[error(
        "a {strategy} rollout needs `listener_arn` in the deployment's ecs block or the environment's ecs_cluster"
    )]
    NoListener { strategy: String },
    /// A canary or blue/green without exactly two target groups.
    #[error(
        "a {strategy} rollout needs exactly two `target_groups` (blue and green), {given} given"
    )]
    TargetGroupCount { strategy: String, given: usize },
    /// The rollout failed (`failure`) and so did the rollback after it.
    #[error("{failure}; rollback failed: {rollback}")]
    RollbackFailed {
        failure: Box<EcsApplyError>,
        rollback: Box<EcsApplyError>,
    },
    /// The rollout failed (`failure`) and the rolling update's rollback
    /// request failed (`message`: the SDK's).
    #[error("{failure}; rollback failed: {message}")]
    RollbackRequestFailed {
        failure: Box<EcsApplyError>,
        message: String,
    },
    /// The rollout failed (`failure`) and the service it went back to did
    /// not become stable (`wait`).
    #[error("{failure}; rollback did not become stable: {wait}")]
    RollbackUnstable {
        failure: Box<EcsApplyError>,
        wait: Box<EcsApplyError>,
    },
    /// The rollback a killed apply had started could not be finished.
    #[error("finishing the rollback of the interrupted apply {apply_id}: {source}")]
    KilledRollbackUnfinished {
        apply_id: String,
        source: Box<EcsApplyError>,
    },
    /// Step `step` had failed in a killed apply, which had rolled back or
    /// whose rollback this apply finished (`finished`: the killed apply's
    /// rollback had ended); of the same version nothing new is deployed.
    #[error(
        "step {step} failed in the interrupted apply {apply_id}, {}",
        killed_rollback_end(*.finished)
    )]
    RolledBackByKilledApply {
        step: usize,
        apply_id: String,
        finished: bool,
    },
    /// The wait for an approval could not be recorded (the shared approval
    /// check of `super::wait_for_approval` gives its reason as text).
    #[error("{0}")]
    Approval(String),
    /// A gate of the rollout failed.
    #[error(transparent)]
    Gate(#[from] GateError),
    /// An Application Auto Scaling call failed.
    #[error(transparent)]
    Scaling(#[from] ScalingError),
    /// The autoscaling target could not be read, so no count is set.
    #[error(
        "{source}; slipway asks Application Auto Scaling (DescribeScalableTargets) before changing a service, so that it never sets a count below what autoscaling holds"
    )]
    ScalingUnreadable { source: ScalingError },
    /// The suspended autoscaling could not be restored after the rollout.
    #[error(
        "autoscaling of {resource_id} is still suspended ({source}); the next apply of this deployment restores it"
    )]
    ScalingStillSuspended {
        resource_id: String,
        source: ScalingError,
    },
    /// A change happened (or is about to) but state could not record it.
    #[error("could not record state: {0}")]
    Unrecorded(#[from] StateError),
    /// State could not be written at the start or end of the deployment.
    #[error(transparent)]
    State(StateError),
    /// `slipway reject`: state has no ECS service for the deployment.
    #[error("{address} has no ECS service in state")]
    NoServiceInState { address: String },
    /// `slipway reject`: no new version runs beside the old one.
    #[error(
        "{address}: no new version runs beside the old one (the rolling update finished); deploy the previous version to go back"
    )]
    NothingBeside { address: String },
    /// `slipway reject`: every step had passed and the serving service was
    /// being updated when its apply stopped.
    #[error(
        "{address}: every step of the rollout had passed and {service} was being updated to the new version when its apply stopped; nothing was changed: `slipway apply` finishes it, `slipway rollback` goes back to the previous release"
    )]
    BeingPromoted { address: String, service: String },
    /// `slipway reject`: state names no listener or old target group.
    #[error("{address}: state names no listener or old target group")]
    NoListenerInState { address: String },
    /// `slipway rollback` of a deployment that is not an ECS one.
    #[error("{address}: not an ECS deployment")]
    NotEcs { address: String },
    /// `slipway rollback` refused before anything changed.
    #[error("nothing was changed: {0}")]
    Unchanged(Box<EcsApplyError>),
    /// `slipway rollback`: the release names no task definition.
    #[error("state names no task definition for release {version}")]
    NoReleaseTaskDefinition { version: String },
    /// `slipway rollback`: the serving service is not in the cluster.
    #[error(
        "service {service} is not in cluster {cluster}; `slipway plan -refresh` shows what runs"
    )]
    ServiceGone { service: String, cluster: String },
    /// `slipway rollback`: the release's task definition cannot be read.
    #[error(
        "task definition {} of release {version} cannot be read: {message}",
        requests::short_arn(.arn)
    )]
    ReleaseUnreadable {
        arn: String,
        version: String,
        message: String,
    },
}

/// The listener as [`EcsApplyError::ListenerDrifted`] found it.
#[derive(Debug)]
pub struct ListenerDrift {
    pub listener: String,
    /// The weights state records.
    pub recorded: BTreeMap<String, u32>,
    /// The killed apply that started the step.
    pub apply_id: String,
    /// The weights the step was setting.
    pub intended: BTreeMap<String, u32>,
    /// The step, as "step N (P% on SERVICE)".
    pub step: String,
    /// The weights the listener has.
    pub live: BTreeMap<String, i32>,
}

/// How [`EcsApplyError::RolledBackByKilledApply`] ends.
fn killed_rollback_end(finished: bool) -> &'static str {
    if finished {
        "which had rolled back; nothing new is deployed"
    } else {
        "which was rolling back; this apply finished the rollback"
    }
}

/// An AWS call of the ECS executor and the resource it is about, as
/// [`EcsApplyError::Aws`] names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AwsCall {
    RegisterTaskDefinition {
        family: String,
    },
    UpdateService {
        service: String,
    },
    CreateService {
        service: String,
    },
    /// UpdateService to 0 tasks before DeleteService.
    ScaleDown {
        service: String,
    },
    DeleteService {
        service: String,
    },
    DescribeService {
        service: String,
    },
    DescribeListener {
        listener: String,
    },
    /// ModifyListener with new weights.
    SetListenerWeights {
        listener: String,
    },
    DescribeTargetHealth {
        target_group: String,
    },
}

impl std::fmt::Display for AwsCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AwsCall::RegisterTaskDefinition { family } => {
                write!(f, "registering task definition {family}")
            }
            AwsCall::UpdateService { service } => write!(f, "updating service {service}"),
            AwsCall::CreateService { service } => write!(f, "creating service {service}"),
            AwsCall::ScaleDown { service } => write!(f, "scaling {service} down"),
            AwsCall::DeleteService { service } => write!(f, "deleting {service}"),
            AwsCall::DescribeService { service } => write!(f, "describing service {service}"),
            AwsCall::DescribeListener { listener } => write!(f, "describing listener {listener}"),
            AwsCall::SetListenerWeights { listener } => {
                write!(f, "setting weights of listener {listener}")
            }
            AwsCall::DescribeTargetHealth { target_group } => {
                write!(f, "reading target health of {target_group}")
            }
        }
    }
}

impl AwsCall {
    /// The error of this call, with the SDK's `message`.
    fn failed(self, message: String) -> EcsApplyError {
        EcsApplyError::Aws {
            call: self,
            message,
        }
    }
}

/// The clients and settings one ECS deployment works with.
struct Job<'a> {
    config: &'a Config,
    deployment: &'a Deployment,
    spec: &'a EcsSpec,
    settings: EcsCluster,
    service_name: String,
    desired: i32,
    wait_timeout: Duration,
    ecs: aws_sdk_ecs::Client,
    elb: aws_sdk_elasticloadbalancingv2::Client,
    scaling: aws_sdk_applicationautoscaling::Client,
    /// An autoscaling target governs the serving service's count: a
    /// rollback keeps the rollout's count rather than the recorded one.
    autoscaled: bool,
    recorder: &'a Recorder,
    progress: &'a Progress,
    /// The version before this apply, for baseline gates.
    baseline_version: Option<String>,
    apply_id: &'a str,
    /// The plan says the listener's weights were changed outside slipway:
    /// they are set back to the recorded ones before anything else.
    restore_listener: bool,
}

impl Job<'_> {
    fn address(&self) -> &str {
        &self.deployment.address
    }

    fn report(&self, event: impl Into<Event>) {
        self.progress.report(self.address(), event);
    }
}

/// The deployment at `address` with its clients and settings.
async fn job<'a>(
    config: &'a Config,
    address: &str,
    recorder: &'a Recorder,
    options: &'a ApplyOptions,
    progress: &'a Progress,
) -> Result<Job<'a>, EcsApplyError> {
    let deployment =
        config
            .deployments
            .get(address)
            .ok_or_else(|| EcsApplyError::UnknownDeployment {
                address: address.to_string(),
            })?;
    let not_configured = |missing: &'static str| EcsApplyError::NotConfigured {
        address: address.to_string(),
        missing,
    };
    let environment = config
        .environment_of(deployment)
        .ok_or_else(|| not_configured("environment not found"))?;
    let spec = deployment
        .service
        .ecs
        .as_ref()
        .ok_or_else(|| not_configured("the service has no ecs block"))?;
    let settings = deployment
        .ecs_settings(environment)
        .ok_or_else(|| not_configured("the environment has no ecs_cluster"))?;
    let sdk = aws::sdk_config(&aws::Target::new(
        settings.region.as_deref(),
        settings.endpoint.as_deref(),
    ))
    .await;
    Ok(Job {
        config,
        deployment,
        spec,
        service_name: settings.service_name.clone().unwrap_or_default(),
        desired: crate::plan::planner::desired_count(deployment, environment) as i32,
        wait_timeout: settings
            .wait_timeout
            .as_ref()
            .map_or(DEFAULT_WAIT_TIMEOUT, DurationText::get),
        ecs: aws_sdk_ecs::Client::new(&sdk),
        elb: aws_sdk_elasticloadbalancingv2::Client::new(&sdk),
        scaling: aws_sdk_applicationautoscaling::Client::new(&sdk),
        autoscaled: false,
        settings,
        recorder,
        progress,
        apply_id: &options.apply_id,
        baseline_version: gates::baseline_version(recorder, address, &deployment.service.version),
        restore_listener: false,
    })
}

pub async fn apply_deployment(
    config: &Config,
    change: &DeploymentChange,
    scheduled: &ScheduledDeployment,
    recorder: &Recorder,
    options: &ApplyOptions,
    progress: &Progress,
) -> Result<DeploymentOutcome, EcsApplyError> {
    let mut job = job(config, &change.address, recorder, options, progress).await?;
    let deployment = job.deployment;
    let rollout = config.rollout_of(deployment);
    let saved = recorder.deployment(&change.address);
    // The version the last apply, perhaps a killed one, moved this deployment to.
    let recorded_version = saved.as_ref().map(|d| d.version.clone());
    // What the deployment goes back to when this apply rolls back: the record
    // state had before it (version, verification, artifact).
    let before = saved.clone().filter(|d| d.ecs.is_some());
    // The record as it was, for a deployment refused before it changed anything.
    let as_it_was = saved.clone();
    let mut previous = recorded_or_adopted(&job, change, saved.and_then(|d| d.ecs));
    job.restore_listener = change
        .reasons
        .iter()
        .any(|r| r.kind == crate::plan::ReasonKind::ListenerWeights);
    // The count the plan decided (`plan::capacity`); plans without one
    // count from the configuration.
    if let Some(capacity) = &change.capacity {
        job.desired = capacity.tasks as i32;
    }
    let serving = previous
        .as_ref()
        .map_or_else(|| job.service_name.clone(), |p| p.service_name.clone());
    let suspension = scaling_to_suspend(&mut job, &serving).await?;
    let job = job;
    let killed_steps = recorder.killed_deployment_steps(&change.address, &options.apply_id);
    recorder
        .start_deployment(config, deployment, &options.apply_id)
        .map_err(EcsApplyError::State)?;
    if let Some(suspension) = &suspension {
        suspend_scaling(&job, suspension).await?;
    }
    progress.report(
        &change.address,
        RolloutEvent::Started {
            action: change.action,
            version: deployment.service.version.clone(),
            strategy: scheduled.strategy,
        },
    );
    let rolled_back_for_killed_apply = finish_rollback_of_killed_apply(
        &job,
        &killed_steps,
        &mut previous,
        recorded_version.as_deref(),
    )
    .await;
    let task_definition_arn = match rolled_back_for_killed_apply {
        Some(_) => String::new(),
        None => ensure_task_definition(&job).await?,
    };
    let result = match rolled_back_for_killed_apply {
        Some(failure) => Err(failure),
        None => {
            run_rollout(
                &job,
                rollout,
                scheduled,
                previous,
                &task_definition_arn,
                &killed_steps,
            )
            .await
        }
    };
    let mut outcome = DeploymentOutcome::default();
    if let Some(suspension) = &suspension {
        if let Err(message) = restore_scaling(&job, suspension).await {
            job.report(ScalingEvent::AutoscalingNotRestored {
                message: message.to_string(),
            });
            outcome
                .failures
                .push(format!("{}: {message}", change.address));
        }
    }
    record_outcome(
        &job,
        result,
        outcome,
        (as_it_was, before.as_ref()),
        &task_definition_arn,
    )
}

/// The record a rollout starts from: state's, or, when state has none, the
/// service the plan adopts (as ECS ran it at plan time).
fn recorded_or_adopted(
    job: &Job<'_>,
    change: &DeploymentChange,
    recorded: Option<EcsState>,
) -> Option<EcsState> {
    if recorded.is_some() {
        return recorded;
    }
    let adopted = change.adopt.as_ref()?;
    job.report(ServiceEvent::ServiceAdopted {
        service: adopted.service.clone(),
        task_definition: adopted.task_definition_arn.clone(),
        tasks: adopted.desired_count,
    });
    Some(adopted_record(adopted))
}

/// A killed apply was rolling this deployment back (its last step for it
/// was a rollback): the rollback is finished first; of the same version,
/// nothing new is deployed (`Some`: how the deployment ends). For another
/// version, `previous` becomes what serves after the rollback and the
/// rollout goes on from there (`None`).
async fn finish_rollback_of_killed_apply(
    job: &Job<'_>,
    killed_steps: &[JournalEntry],
    previous: &mut Option<EcsState>,
    recorded_version: Option<&str>,
) -> Option<Failure> {
    let rollback = killed_steps
        .iter()
        .max_by_key(|e| e.seq)
        .filter(|e| e.action == JournalAction::Rollback)?;
    job.report(RolloutEvent::FinishingInterruptedRollback {
        apply_id: Some(rollback.apply_id.clone()),
        step: rollback.step,
    });
    match finish_killed_rollback(job, previous.as_ref(), rollback).await {
        Err(error) => Some(Failure::failed(EcsApplyError::KilledRollbackUnfinished {
            apply_id: rollback.apply_id.clone(),
            source: Box::new(error),
        })),
        Ok(_) if recorded_version == Some(job.deployment.service.version.as_str()) => Some(
            Failure::rolled_back(EcsApplyError::RolledBackByKilledApply {
                step: rollback.step,
                apply_id: rollback.apply_id.clone(),
                finished: rollback.finished_at.is_some(),
            }),
        ),
        // Another version now: it is deployed from what serves after the rollback.
        Ok(restored) => {
            *previous = restored;
            None
        }
    }
}

/// The rollout itself: a rolling update (then the approval of its one step,
/// if any), or a canary or blue/green by traffic steps. `Some`: waiting for
/// that approval.
async fn run_rollout(
    job: &Job<'_>,
    rollout: Option<&Rollout>,
    scheduled: &ScheduledDeployment,
    previous: Option<EcsState>,
    task_definition_arn: &str,
    killed_steps: &[JournalEntry],
) -> Result<Option<String>, Failure> {
    let traffic_steps: Vec<u32> = scheduled
        .steps
        .iter()
        .filter_map(|s| match s.kind {
            StepKind::TrafficShift { percent } => Some(percent),
            _ => None,
        })
        .collect();
    if traffic_steps.is_empty() {
        rolling(
            job,
            rollout,
            scheduled.on_failure,
            previous,
            task_definition_arn,
        )
        .await?;
        return match scheduled.steps.first() {
            Some(step) => wait_for_approval(job, step).map_err(Failure::failed),
            None => Ok(None),
        };
    }
    traffic_shift(
        job,
        rollout,
        scheduled,
        previous,
        task_definition_arn,
        &traffic_steps,
        killed_steps,
    )
    .await
}

/// Record how the deployment ended: its status (deployed, waiting for
/// approval, failed, rolled back) into `outcome` and state; a deployment
/// refused before anything changed gets back its record as it was
/// (`as_it_was`); a rolled back one the version it ran before (`before`).
fn record_outcome(
    job: &Job<'_>,
    result: Result<Option<String>, Failure>,
    mut outcome: DeploymentOutcome,
    (as_it_was, before): (
        Option<crate::state::DeploymentState>,
        Option<&crate::state::DeploymentState>,
    ),
    task_definition_arn: &str,
) -> Result<DeploymentOutcome, EcsApplyError> {
    let address = job.address().to_string();
    let mut untouched = false;
    let status = match result {
        Ok(None) => DeploymentStatus::Deployed,
        Ok(Some(waiting)) => {
            outcome.waiting_approval = Some(waiting);
            DeploymentStatus::Partial
        }
        Err(failure) => {
            job.report(RolloutEvent::Failed {
                message: failure.error.to_string(),
            });
            outcome
                .failures
                .push(format!("{address}: {}", failure.error));
            outcome.rolled_back = failure.status == DeploymentStatus::RolledBack;
            outcome.paused = failure.paused;
            if failure.paused {
                job.report(ServiceEvent::Paused);
            }
            untouched = failure.untouched;
            failure.status
        }
    };
    let verified = status == DeploymentStatus::Deployed;
    job.recorder
        .finish_deployment(&address, status.clone(), verified, &[])
        .map_err(EcsApplyError::State)?;
    if untouched {
        // Nothing changed in ECS: state keeps the record it had.
        let address = address.clone();
        job.recorder
            .update(|state| match as_it_was {
                Some(record) => {
                    state.deployments.insert(address, record);
                }
                None => {
                    state.deployments.remove(&address);
                }
            })
            .map_err(EcsApplyError::State)?;
    }
    if status == DeploymentStatus::RolledBack {
        record_rolled_back(job, before).map_err(EcsApplyError::State)?;
    }
    job.progress.done(&address);
    let ended = match status {
        DeploymentStatus::Deployed => ServiceEnd::Deployed {
            version: job.deployment.service.version.clone(),
            task_definition: task_definition_arn.to_string(),
            tasks: job.desired,
        },
        DeploymentStatus::RolledBack => ServiceEnd::RolledBack,
        DeploymentStatus::Partial if outcome.waiting_approval.is_some() => {
            ServiceEnd::WaitingForApproval
        }
        status => ServiceEnd::Other { status },
    };
    job.report(ServiceEvent::ServiceEnded { ended });
    Ok(outcome)
}

/// After a rollback, state says what ECS runs: the version the deployment
/// ran before this apply (`before`, its record then) with its verification.
/// A deployment that had no service in state before (first deployment, or an
/// adopted service) has no record afterwards: ECS runs what it ran before
/// slipway, and the next plan says so (create, or adopt again).
fn record_rolled_back(
    job: &Job<'_>,
    before: Option<&crate::state::DeploymentState>,
) -> Result<(), crate::state::StateError> {
    let address = job.address().to_string();
    let new_version = job.deployment.service.version.clone();
    let previous_version = before
        .map(|d| d.version.clone())
        .filter(|v| *v != new_version)
        .or_else(|| job.baseline_version.clone());
    let Some(before) = before else {
        job.report(ServiceEvent::NoRecordKept);
        return job.recorder.forget(&address);
    };
    job.recorder.update(|state| {
        let Some(deployment) = state.deployments.get_mut(&address) else {
            return;
        };
        if let Some(version) = previous_version {
            if before.version == version {
                deployment.artifact_sha256 = before.artifact_sha256.clone();
                deployment.verified = before.verified;
            }
            deployment.version = version;
        }
    })
}

/// The state record of a service the plan adopts, as ECS ran it at plan time.
fn adopted_record(adopted: &crate::plan::AdoptedService) -> EcsState {
    EcsState {
        cluster: adopted.cluster.clone(),
        service_name: adopted.service.clone(),
        task_definition: adopted.task_definition.clone(),
        task_definition_arn: Some(adopted.task_definition_arn.clone()),
        desired_count: adopted.desired_count,
        weights: adopted.weights.clone(),
        target_group: adopted.target_group.clone(),
        canary: None,
    }
}

/// Why a deployment failed and what that leaves it as.
struct Failure {
    error: EcsApplyError,
    status: DeploymentStatus,
    /// Refused before anything changed: state goes back to its record
    /// before this apply.
    untouched: bool,
    /// `on_failure = "pause"` stopped the rollout where it was.
    paused: bool,
}

impl Failure {
    /// A failure after something may have changed.
    fn failed(error: EcsApplyError) -> Failure {
        Failure::stopped(error, DeploymentStatus::Failed, false)
    }

    /// Refused before anything changed.
    fn refused(error: EcsApplyError) -> Failure {
        Failure {
            untouched: true,
            ..Failure::failed(error)
        }
    }

    /// A failure whose rollout was put back.
    fn rolled_back(error: EcsApplyError) -> Failure {
        Failure::stopped(error, DeploymentStatus::RolledBack, false)
    }

    /// A failure that leaves the deployment `status` (`paused`: by
    /// `on_failure = "pause"`).
    fn stopped(error: EcsApplyError, status: DeploymentStatus, paused: bool) -> Failure {
        Failure {
            error,
            status,
            untouched: false,
            paused,
        }
    }
}

/// Register the configured task definition unless the family's latest
/// revision already matches; returns the ARN to deploy.
async fn ensure_task_definition(job: &Job<'_>) -> Result<String, EcsApplyError> {
    let desired = crate::plan::render::task_definition(job.spec);
    let latest = job
        .ecs
        .describe_task_definition()
        .task_definition(&job.spec.family)
        .send()
        .await;
    if let Ok(output) = &latest {
        if let Some(live) = output.task_definition() {
            if live_definition_json(live) == desired {
                let arn = live.task_definition_arn().unwrap_or_default().to_string();
                job.report(ServiceEvent::TaskDefinitionMatches {
                    task_definition: arn.clone(),
                });
                return Ok(arn);
            }
        }
    }
    let fields = requests::task_fields(job.spec);
    let containers = requests::container_definitions(job.spec)?;
    let registered = job
        .ecs
        .register_task_definition()
        .family(&fields.family)
        .set_cpu(fields.cpu.clone())
        .set_memory(fields.memory.clone())
        .network_mode(NetworkMode::from(job.spec.network_mode.as_str()))
        .requires_compatibilities(Compatibility::from(job.spec.launch_type.as_str()))
        .set_execution_role_arn(fields.execution_role_arn.clone())
        .set_task_role_arn(fields.task_role_arn.clone())
        .set_container_definitions(Some(containers))
        .send()
        .await
        .map_err(|e| {
            AwsCall::RegisterTaskDefinition {
                family: job.spec.family.clone(),
            }
            .failed(job.config.mask(&error_text(&e)))
        })?;
    let arn = registered
        .task_definition()
        .and_then(|t| t.task_definition_arn())
        .ok_or(EcsApplyError::NoTaskDefinitionArn)?
        .to_string();
    job.report(ServiceEvent::TaskDefinitionRegistered {
        task_definition: arn.clone(),
    });
    Ok(arn)
}

/// A live task definition in the JSON shape plan and state use.
pub fn live_definition_json(live: &aws_sdk_ecs::types::TaskDefinition) -> serde_json::Value {
    let fields = requests::TaskFields {
        family: live.family().unwrap_or_default().to_string(),
        cpu: live.cpu().map(str::to_string),
        memory: live.memory().map(str::to_string),
        network_mode: live.network_mode().map(|m| m.as_str().to_string()),
        requires_compatibilities: live
            .requires_compatibilities()
            .iter()
            .map(|c| c.as_str().to_string())
            .collect(),
        execution_role_arn: live.execution_role_arn().map(str::to_string),
        task_role_arn: live.task_role_arn().map(str::to_string),
    };
    requests::definition_json(&fields, live.container_definitions())
}

/// The state record of `service` running `task_definition_arn`.
fn ecs_record(job: &Job<'_>, service: &str, task_definition_arn: &str) -> EcsState {
    EcsState {
        cluster: job.settings.cluster.clone(),
        service_name: service.to_string(),
        task_definition: desired_task_definition(job.config, job.deployment)
            .unwrap_or(serde_json::Value::Null),
        task_definition_arn: Some(task_definition_arn.to_string()),
        desired_count: job.desired as u32,
        weights: BTreeMap::new(),
        target_group: None,
        canary: None,
    }
}

fn record_ecs(job: &Job<'_>, ecs: Option<EcsState>) -> Result<(), Failure> {
    let address = job.address().to_string();
    job.recorder
        .update(|state| put_ecs(state, &address, ecs))
        .map_err(|e| Failure::failed(EcsApplyError::Unrecorded(e)))
}

/// Set the ECS record of `address` in `state`.
fn put_ecs(state: &mut State, address: &str, ecs: Option<EcsState>) {
    if let Some(deployment) = state.deployments.get_mut(address) {
        deployment.ecs = ecs;
        deployment.updated_at = crate::state::lock::now_rfc3339();
    }
}

// ---- autoscaling -----------------------------------------------------------

/// The autoscaling to suspend for this rollout, if a target governs the
/// serving service (`serving`), and the rollout's count raised to what
/// autoscaling holds now: never below the target's minimum or the live
/// count, whatever the plan counted. A suspension a killed apply left in
/// state is taken over: what it recorded as before is what is restored.
async fn scaling_to_suspend(
    job: &mut Job<'_>,
    serving: &str,
) -> Result<Option<crate::state::ScalingSuspension>, EcsApplyError> {
    let address = job.address().to_string();
    let left = job
        .recorder
        .read(|state| state.scaling_suspended.get(&address).cloned());
    let resource = super::scaling::resource_id(&job.settings.cluster, serving);
    // A killed apply was moving the target to the service that serves now
    // (a canary had ended): the move is finished first, and what it
    // recorded as before is restored there.
    let left = match left {
        Some(left) if left.resource_id != resource => {
            super::scaling::restore(&job.scaling, &left, &resource).await?;
            job.report(ScalingEvent::AutoscalingMoveFinished {
                from: left.resource_id.clone(),
                to: resource.clone(),
            });
            let address = job.address().to_string();
            job.recorder.update(|state| {
                state.scaling_suspended.remove(&address);
            })?;
            None
        }
        left => left,
    };
    let live = super::scaling::read_target(&job.scaling, &resource)
        .await
        .map_err(|source| EcsApplyError::ScalingUnreadable { source })?;
    let suspension = match (left, live) {
        (Some(left), _) => left,
        (None, Some((target, before))) => crate::state::ScalingSuspension {
            resource_id: resource,
            min_capacity: target.min,
            max_capacity: target.max,
            before,
        },
        (None, None) => return Ok(None),
    };
    job.autoscaled = true;
    let live_count = describe_service(job, serving)
        .await?
        .filter(|s| s.status == "ACTIVE")
        .map_or(0, |s| s.desired_count);
    let floor = live_count.max(suspension.min_capacity as i32);
    if floor > job.desired {
        job.report(ScalingEvent::AutoscalingFloor {
            service: serving.to_string(),
            tasks: live_count,
            min: suspension.min_capacity,
            max: suspension.max_capacity,
            floor,
            planned: job.desired,
        });
        job.desired = floor;
    }
    Ok(Some(suspension))
}

/// Record the suspension, then suspend: a kill after either leaves a
/// record the next apply restores from.
async fn suspend_scaling(
    job: &Job<'_>,
    suspension: &crate::state::ScalingSuspension,
) -> Result<(), EcsApplyError> {
    let address = job.address().to_string();
    job.recorder.update(|state| {
        state.scaling_suspended.insert(address, suspension.clone());
    })?;
    super::scaling::suspend(&job.scaling, suspension).await?;
    job.report(ScalingEvent::AutoscalingSuspended {
        resource: suspension.resource_id.clone(),
        min: suspension.min_capacity,
        max: suspension.max_capacity,
    });
    Ok(())
}

/// Restore the suspended autoscaling on the service that serves now (state's
/// record says which; the suspended one when nothing is recorded), then
/// remove the record. When the serving service changed (a canary or
/// blue/green ended on the other side), the target moves to it.
async fn restore_scaling(
    job: &Job<'_>,
    suspension: &crate::state::ScalingSuspension,
) -> Result<(), EcsApplyError> {
    let serving = job
        .recorder
        .deployment(job.address())
        .and_then(|d| d.ecs)
        .map(|e| super::scaling::resource_id(&e.cluster, &e.service_name))
        .unwrap_or_else(|| suspension.resource_id.clone());
    super::scaling::restore(&job.scaling, suspension, &serving)
        .await
        .map_err(|source| EcsApplyError::ScalingStillSuspended {
            resource_id: suspension.resource_id.clone(),
            source,
        })?;
    let address = job.address().to_string();
    job.recorder.update(|state| {
        state.scaling_suspended.remove(&address);
    })?;
    let from = (serving != suspension.resource_id).then(|| suspension.resource_id.clone());
    job.report(ScalingEvent::AutoscalingRestored {
        resource: serving,
        from,
    });
    Ok(())
}

// ---- rolling ---------------------------------------------------------------

/// A rolling update of the service that serves (created when there is none),
/// judged by its rollout's gates; on a failure, `on_failure` (the plan's)
/// decides whether it goes back to `previous`.
async fn rolling(
    job: &Job<'_>,
    rollout: Option<&Rollout>,
    on_failure: OnFailure,
    previous: Option<EcsState>,
    task_definition_arn: &str,
) -> Result<(), Failure> {
    let mut previous = previous;
    // A canary or blue/green left in flight (stopped at an approval, or its
    // rollout changed since): its new side is given up first, all traffic
    // back on the side that serves.
    if let Some(in_flight) = previous.clone().filter(|p| p.canary.is_some()) {
        if let Some(canary) = &in_flight.canary {
            job.report(TrafficEvent::CanaryWithdrawn {
                percent: canary.percent,
                canary: canary.service_name.clone(),
                to: in_flight.service_name.clone(),
            });
        }
        previous = roll_back_traffic(job, Some(&in_flight), 1, false, SendBack::Withdraw, None)
            .await
            .map_err(Failure::failed)?;
    }
    // Weights changed outside slipway, as the plan showed: set back first.
    if let (true, Some(listener), Some(record)) = (
        job.restore_listener,
        job.settings.listener_arn.as_deref(),
        previous.as_ref().filter(|p| !p.weights.is_empty()),
    ) {
        shift_traffic(job, listener, 1, 100, record)
            .await
            .map_err(Failure::failed)?;
        job.report(TrafficEvent::ListenerRestored {
            listener: listener.to_string(),
            live: None,
            recorded: record.weights.clone(),
        });
    }
    // The service that serves is updated in place, whatever its name (after
    // a canary, the new side kept its name and the rollout's service name may
    // not be it); its target group and recorded weights are kept.
    let service = previous
        .as_ref()
        .map_or_else(|| job.service_name.clone(), |p| p.service_name.clone());
    let target_group = previous
        .as_ref()
        .and_then(|p| p.target_group.clone())
        .or_else(|| job.settings.target_groups.first().cloned());
    let exists = describe_service(job, &service)
        .await
        .map_err(Failure::failed)?
        .is_some_and(|s| s.status == "ACTIVE");
    if exists && previous.is_none() {
        return Err(Failure::refused(EcsApplyError::NotAdopted {
            service,
            cluster: job.settings.cluster.clone(),
        }));
    }
    if exists {
        job.ecs
            .update_service()
            .cluster(&job.settings.cluster)
            .service(&service)
            .task_definition(task_definition_arn)
            .desired_count(job.desired)
            .send()
            .await
            .map_err(|e| {
                Failure::failed(
                    AwsCall::UpdateService {
                        service: service.clone(),
                    }
                    .failed(error_text(&e)),
                )
            })?;
        job.report(ServiceEvent::ServiceUpdated {
            service: service.clone(),
            task_definition: task_definition_arn.to_string(),
            version: None,
        });
    } else {
        create_service(
            job,
            &service,
            task_definition_arn,
            target_group.as_deref(),
            true,
        )
        .await
        .map_err(Failure::failed)?;
    }
    let mut record = ecs_record(job, &service, task_definition_arn);
    record.target_group = target_group;
    record.weights = previous
        .as_ref()
        .map(|p| p.weights.clone())
        .unwrap_or_default();
    record_ecs(job, Some(record.clone()))?;

    let mut result = wait_until_stable(job, &service, task_definition_arn, job.desired).await;
    if result.is_ok() {
        if let Some(rollout) = rollout {
            result = judge_gates(job, rollout, 1).await;
        }
    }
    let Err(message) = result else {
        return Ok(());
    };
    match on_failure::after_failed_step(on_failure) {
        AfterFailure::Stop { status, paused } => Err(Failure::stopped(message, status, paused)),
        AfterFailure::RollBack => {
            Err(roll_back_rolling(job, &service, previous.as_ref(), message).await)
        }
    }
}

/// A failed rolling update (`message`) with `on_failure = "rollback"`: the
/// service goes back to the task definition and count it ran before
/// (`previous`, state's record), or, when there was none, is removed. The
/// failure to return: rolled back, or why the rollback failed.
async fn roll_back_rolling(
    job: &Job<'_>,
    service: &str,
    previous: Option<&EcsState>,
    message: EcsApplyError,
) -> Failure {
    let rolled_back = match previous.and_then(|p| p.task_definition_arn.clone().map(|arn| (p, arn)))
    {
        Some((previous, previous_arn)) => {
            let back_to = count_to_go_back_to(job, previous.desired_count);
            job.report(ServiceEvent::RollingBackTo {
                task_definition: previous_arn.clone(),
            });
            let sent = job
                .ecs
                .update_service()
                .cluster(&job.settings.cluster)
                .service(service)
                .task_definition(&previous_arn)
                .desired_count(back_to)
                .send()
                .await;
            if let Err(e) = sent {
                return Failure::failed(EcsApplyError::RollbackRequestFailed {
                    failure: Box::new(message),
                    message: error_text(&e),
                });
            }
            if let Err(e) = wait_until_stable(job, service, &previous_arn, back_to).await {
                return Failure::failed(EcsApplyError::RollbackUnstable {
                    failure: Box::new(message),
                    wait: Box::new(e),
                });
            }
            record_ecs(job, Some(previous.clone()))
        }
        None => {
            job.report(ServiceEvent::RemovingNewService);
            if let Err(e) = delete_service(job, service).await {
                return Failure::failed(EcsApplyError::RollbackFailed {
                    failure: Box::new(message),
                    rollback: Box::new(e),
                });
            }
            record_ecs(job, None)
        }
    };
    match rolled_back {
        Ok(()) => Failure::rolled_back(message),
        Err(unrecorded) => unrecorded,
    }
}

// ---- canary and blue/green -------------------------------------------------

/// One canary or blue/green run: what it shifts traffic between, the new
/// side beside what serves, and where a stopped rollout left it.
struct Shift<'a> {
    rollout: Option<&'a Rollout>,
    scheduled: &'a ScheduledDeployment,
    task_definition_arn: &'a str,
    percents: &'a [u32],
    listener: String,
    groups: [String; 2],
    /// The slot of the target group that serves now; `None`: nothing serves.
    old_slot: Option<usize>,
    new_slot: usize,
    new_service: String,
    new_group: String,
    /// The share of traffic a stopped rollout of this task definition had
    /// reached on the new side (0 for a new rollout).
    reached: u32,
    /// Every step had passed in a killed apply: only the promotion is left.
    promoting: bool,
    /// The last step a killed apply shifted and never checked.
    unchecked: Option<&'a JournalEntry>,
}

#[allow(clippy::too_many_arguments)]
async fn traffic_shift(
    job: &Job<'_>,
    rollout: Option<&Rollout>,
    scheduled: &ScheduledDeployment,
    previous: Option<EcsState>,
    task_definition_arn: &str,
    percents: &[u32],
    killed_steps: &[JournalEntry],
) -> Result<Option<String>, Failure> {
    let (listener, groups) = listener_and_groups(job, scheduled)?;
    let LeftOver {
        previous,
        live,
        promoting,
        unchecked,
    } = settle_left_over(
        job,
        &listener,
        &groups,
        previous,
        task_definition_arn,
        percents,
        killed_steps,
    )
    .await
    .map_err(Failure::failed)?;

    if let Some(serving) =
        already_serving(job, previous.as_ref(), &groups, &live, task_definition_arn)
            .await
            .map_err(Failure::failed)?
    {
        job.report(TrafficEvent::NothingToShift {
            service: serving.service_name.clone(),
            task_definition: task_definition_arn.to_string(),
        });
        record_ecs(job, Some(serving))?;
        return Ok(None);
    }

    let old_slot = serving_slot(previous.as_ref(), &groups);
    if !promoting {
        check_serving_weights(previous.as_ref(), &listener, &groups, old_slot, &live)?;
    }
    let new_slot = old_slot.map_or(0, |old| 1 - old);
    // The serving service keeps its name; the new version runs beside it in
    // a temporary service. A first rollout's service is the configured name.
    let new_service = match (previous.as_ref(), old_slot) {
        (Some(serving), Some(_)) => {
            requests::canary_service_name(&job.service_name, &serving.service_name)
        }
        _ => requests::slot_service_name(&job.service_name, new_slot),
    };
    // A rollout of this task definition that stopped (at an approval, or
    // killed) goes on after the share of traffic it had reached.
    let reached = previous
        .as_ref()
        .and_then(|p| p.canary.as_ref())
        .filter(|c| c.task_definition_arn == task_definition_arn && c.service_name == new_service)
        .map_or(0, |c| c.percent);
    let shift = Shift {
        rollout,
        scheduled,
        task_definition_arn,
        percents,
        listener,
        new_group: groups[new_slot].clone(),
        groups,
        old_slot,
        new_slot,
        new_service,
        reached,
        promoting,
        unchecked,
    };
    let mut record = start_new_side(job, &shift, previous.as_ref()).await?;

    // The step in flight, for the rollback's journal entry.
    let mut current_step = percents
        .iter()
        .position(|p| *p > reached)
        .map_or(percents.len(), |i| i + 1);
    let shifted = shift_steps(job, &shift, &mut record, &mut current_step).await;
    finish_traffic_shift(
        job,
        &shift,
        previous.is_none(),
        &record,
        current_step,
        shifted,
    )
    .await
}

/// The listener and the two target groups (blue, green) a canary or
/// blue/green needs; refused before anything changes without them.
fn listener_and_groups(
    job: &Job<'_>,
    scheduled: &ScheduledDeployment,
) -> Result<(String, [String; 2]), Failure> {
    let listener = job.settings.listener_arn.clone().ok_or_else(|| {
        Failure::refused(EcsApplyError::NoListener {
            strategy: scheduled.strategy.to_string(),
        })
    })?;
    let [blue, green] = job.settings.target_groups.as_slice() else {
        return Err(Failure::refused(EcsApplyError::TargetGroupCount {
            strategy: scheduled.strategy.to_string(),
            given: job.settings.target_groups.len(),
        }));
    };
    Ok((listener, [blue.clone(), green.clone()]))
}

/// The slot of the target group the recorded service serves from, `None`
/// when nothing serves (no record, or a first rollout's record without a
/// target group).
fn serving_slot(previous: Option<&EcsState>, groups: &[String; 2]) -> Option<usize> {
    let old_live = previous
        .filter(|p| p.canary.is_none() || p.target_group.is_some())
        .and_then(|p| p.target_group.clone());
    match &old_live {
        Some(group) => groups.iter().position(|g| g == group),
        None => None,
    }
}

/// The serving group's live weight is the recorded one; otherwise someone
/// changed the listener and the rollout does not go on.
fn check_serving_weights(
    previous: Option<&EcsState>,
    listener: &str,
    groups: &[String; 2],
    old_slot: Option<usize>,
    live: &BTreeMap<String, i32>,
) -> Result<(), Failure> {
    let (Some(old), Some(previous)) = (old_slot, previous) else {
        return Ok(());
    };
    let serving = live.get(&groups[old]).copied().unwrap_or(0);
    if !previous.weights.is_empty() && previous.weights.get(&groups[old]) != Some(&(serving as u32))
    {
        return Err(Failure::failed(EcsApplyError::ListenerNotAsRecorded {
            listener: listener.to_string(),
            recorded: previous.weights.clone(),
            live: live.clone(),
        }));
    }
    Ok(())
}

/// Start the new side beside the old one (or take over the one a stopped
/// rollout recorded), recording it before it is made when something serves
/// and once it exists when nothing did. Returns the record to go on from.
async fn start_new_side(
    job: &Job<'_>,
    shift: &Shift<'_>,
    previous: Option<&EcsState>,
) -> Result<EcsState, Failure> {
    let new_service = &shift.new_service;
    let existing = describe_service(job, new_service)
        .await
        .map_err(Failure::failed)?
        .filter(|s| s.status == "ACTIVE");
    if existing.is_some() && previous.is_none() {
        return Err(Failure::refused(EcsApplyError::NotAdopted {
            service: new_service.clone(),
            cluster: job.settings.cluster.clone(),
        }));
    }
    // The new side's name is taken by a service state knows nothing of
    // (made outside slipway): slipway does not take it over.
    let recorded_new_side = previous
        .and_then(|p| p.canary.as_ref())
        .is_some_and(|c| c.service_name == *new_service);
    if existing.is_some() && !recorded_new_side {
        return Err(Failure::refused(EcsApplyError::NameTaken {
            service: new_service.clone(),
            cluster: job.settings.cluster.clone(),
            strategy: shift.scheduled.strategy.to_string(),
            serving: previous.map_or("", |p| p.service_name.as_str()).to_string(),
        }));
    }
    let mut record = previous
        .cloned()
        .unwrap_or_else(|| ecs_record(job, new_service, shift.task_definition_arn));
    if previous.is_some() {
        // Recorded before the new side is made: a kill in between leaves a
        // record of it, so the next apply takes it over (or makes it)
        // rather than refusing it as a service state does not know.
        record.canary = Some(CanaryState {
            service_name: new_service.clone(),
            target_group: shift.new_group.clone(),
            task_definition_arn: shift.task_definition_arn.to_string(),
            percent: shift.reached,
            promoted: shift.promoting,
        });
        record_ecs(job, Some(record.clone()))?;
    } else {
        record.target_group = Some(shift.new_group.clone());
    }
    if shift.promoting {
        // Every step had passed: the temporary service, if the killed apply
        // had not removed it yet, carries the traffic as it is.
    } else if existing.is_some() {
        update_service(job, new_service, shift.task_definition_arn, job.desired)
            .await
            .map_err(Failure::failed)?;
    } else {
        create_service(
            job,
            new_service,
            shift.task_definition_arn,
            Some(&shift.new_group),
            false,
        )
        .await
        .map_err(Failure::failed)?;
    }
    if previous.is_none() {
        // Nothing served before: recorded once it exists (a kill before
        // that leaves a service the next plan adopts, visibly).
        record_ecs(job, Some(record.clone()))?;
    }
    Ok(record)
}

/// The new side, once stable, takes its traffic: all at once when nothing
/// served before, else step by step and then the promotion. `record` follows
/// every shift; `current_step` is the step in flight. `Some` when a step
/// waits for approval.
async fn shift_steps(
    job: &Job<'_>,
    shift: &Shift<'_>,
    record: &mut EcsState,
    current_step: &mut usize,
) -> Result<Option<String>, EcsApplyError> {
    if !shift.promoting {
        wait_until_stable(
            job,
            &shift.new_service,
            shift.task_definition_arn,
            job.desired,
        )
        .await?;
    }
    let Some(old_slot) = shift.old_slot else {
        return shift_all_at_once(job, shift, record).await;
    };
    let percents = shift.percents;
    let new_service = &shift.new_service;
    let old_group = shift.groups[old_slot].clone();
    for (index, percent) in percents.iter().enumerate() {
        if shift.promoting {
            break;
        }
        let step_number = index + 1;
        let check_only = *percent == shift.reached
            && shift.unchecked.is_some_and(|e| {
                e.step == step_number && e.traffic_percent() == Some(shift.reached)
            });
        if *percent <= shift.reached && !check_only {
            continue;
        }
        *current_step = step_number;
        if check_only {
            job.report(TrafficEvent::TrafficShifted {
                step: step_number,
                total: percents.len(),
                percent: *percent,
                service: new_service.to_string(),
                how: ShiftKind::AlreadyShifted,
            });
        } else {
            check_before_shift(job, &shift.listener, &record.weights, &shift.new_group).await?;
            let mut after = record.clone();
            after.weights = requests::step_weights(&old_group, &shift.new_group, *percent);
            if let Some(canary) = &mut after.canary {
                canary.percent = *percent;
            }
            shift_traffic(job, &shift.listener, step_number, *percent, &after).await?;
            *record = after;
            job.report(TrafficEvent::TrafficShifted {
                step: step_number,
                total: percents.len(),
                percent: *percent,
                service: new_service.to_string(),
                how: ShiftKind::Shifted,
            });
        }
        let step = shift.scheduled.steps.get(index);
        judge_step(job, shift, step, step_number).await?;
        if let Some(waiting) = step
            .map(|s| wait_for_approval(job, s))
            .transpose()?
            .flatten()
        {
            return Ok(Some(waiting));
        }
    }
    promote(
        job,
        &shift.listener,
        record,
        &old_group,
        shift.task_definition_arn,
        percents.len(),
    )
    .await?;
    Ok(None)
}

/// Nothing serves yet: the new side takes all traffic at once (the plan has
/// one step, 100%), then that step's bake and the rollout's gates are
/// judged like any step's.
async fn shift_all_at_once(
    job: &Job<'_>,
    shift: &Shift<'_>,
    record: &mut EcsState,
) -> Result<Option<String>, EcsApplyError> {
    let step_number = shift.percents.len();
    let mut after = record.clone();
    after.weights =
        requests::step_weights(&shift.groups[1 - shift.new_slot], &shift.new_group, 100);
    shift_traffic(job, &shift.listener, step_number, 100, &after).await?;
    *record = after;
    job.report(TrafficEvent::TrafficShifted {
        step: step_number,
        total: step_number,
        percent: 100,
        service: shift.new_service.clone(),
        how: ShiftKind::FirstService,
    });
    judge_step(job, shift, shift.scheduled.steps.last(), step_number).await?;
    Ok(None)
}

/// After the traffic of step `step_number` moved: its bake, then the new
/// service's health and the rollout's gates.
async fn judge_step(
    job: &Job<'_>,
    shift: &Shift<'_>,
    step: Option<&Step>,
    step_number: usize,
) -> Result<(), EcsApplyError> {
    if let Some(bake) = step
        .and_then(|s| s.bake.as_ref())
        .map(DurationText::get)
        .filter(|b| !b.is_zero())
    {
        let what = format!("step {step_number}/{}: bake", shift.percents.len());
        job.progress.wait(job.address(), &what, bake).await;
    }
    if let Verdict::Failed(why) =
        judge_service(job, &shift.new_service, shift.task_definition_arn).await?
    {
        return Err(EcsApplyError::ServiceFailed {
            service: shift.new_service.clone(),
            reason: why,
        });
    }
    if let Some(rollout) = shift.rollout {
        judge_gates(job, rollout, step_number).await?;
    }
    Ok(())
}

/// What the steps' outcome leaves: a first rollout that took all traffic is
/// recorded as the service that serves; a failure is left as it is (`pause`,
/// `abort`) or sends all traffic back and removes the new side.
async fn finish_traffic_shift(
    job: &Job<'_>,
    shift: &Shift<'_>,
    first_rollout: bool,
    record: &EcsState,
    current_step: usize,
    shifted: Result<Option<String>, EcsApplyError>,
) -> Result<Option<String>, Failure> {
    let new_service = &shift.new_service;
    match shifted {
        Ok(Some(waiting)) => Ok(Some(waiting)),
        Ok(None) => {
            if shift.old_slot.is_none() {
                let mut done = ecs_record(job, new_service, shift.task_definition_arn);
                done.target_group = Some(shift.new_group.clone());
                done.weights = record.weights.clone();
                record_ecs(job, Some(done))?;
            }
            Ok(None)
        }
        Err(message) => {
            if let AfterFailure::Stop { status, paused } =
                on_failure::after_failed_step(shift.scheduled.on_failure)
            {
                return Err(Failure::stopped(message, status, paused));
            }
            job.report(TrafficEvent::TrafficSentBack {
                to: None,
                removing: new_service.to_string(),
            });
            let rolled_back = roll_back_traffic(
                job,
                Some(record),
                current_step,
                first_rollout,
                SendBack::Rollback,
                None,
            )
            .await;
            if let Err(e) = rolled_back {
                return Err(Failure::failed(EcsApplyError::RollbackFailed {
                    failure: Box::new(message),
                    rollback: Box::new(e),
                }));
            }
            Err(Failure::rolled_back(message))
        }
    }
}

/// The end of a canary or blue/green whose steps all passed. The serving
/// service keeps its name, its target group and its autoscaling target:
/// while the canary carries all the traffic it is updated in place to the
/// canary's task definition, then takes all the traffic back (`serving_group`
/// at 100), and the canary is removed. `record` is marked `promoted` before
/// anything changes, so a kill anywhere in between leaves a record the next
/// apply finishes from (each part is idempotent), and a rollback knows to
/// set the serving service's task definition back. One `promote` journal
/// entry of `step`, finished together with the record of what serves.
async fn promote(
    job: &Job<'_>,
    listener: &str,
    record: &mut EcsState,
    serving_group: &str,
    task_definition_arn: &str,
    step: usize,
) -> Result<(), EcsApplyError> {
    let Some(canary) = record.canary.clone() else {
        return Ok(());
    };
    if !canary.promoted {
        let mut marked = record.clone();
        if let Some(canary) = &mut marked.canary {
            canary.promoted = true;
        }
        record_ecs(job, Some(marked.clone())).map_err(|f| f.error)?;
        *record = marked;
    }
    let serving = record.service_name.clone();
    let mut done = ecs_record(job, &serving, task_definition_arn);
    done.target_group = Some(serving_group.to_string());
    done.weights = requests::step_weights(&canary.target_group, serving_group, 100);
    let seq = begin_ecs_step(
        job,
        step,
        JournalAction::Promote,
        &job.deployment.service.version,
    )?;
    let work = async {
        job.report(TrafficEvent::UpdatingInPlace {
            service: serving.to_string(),
            task_definition: task_definition_arn.to_string(),
            temporary: canary.service_name.clone(),
        });
        update_service(job, &serving, task_definition_arn, job.desired).await?;
        wait_until_stable(job, &serving, task_definition_arn, job.desired).await?;
        // All traffic is on the canary, or already back (a killed apply got
        // that far); anything else was changed by hand.
        let live = listener_weights(job, listener).await?;
        if !requests::weights_match(&live, &record.weights)
            && !requests::weights_match(&live, &done.weights)
        {
            return Err(EcsApplyError::ListenerChanged {
                listener: listener.to_string(),
                expected: record.weights.clone(),
                found: live,
            });
        }
        check_targets_healthy(job, serving_group).await?;
        set_listener_weights(job, listener, &done.weights).await?;
        job.report(TrafficEvent::TrafficBackOn {
            service: serving.to_string(),
            task_definition: task_definition_arn.to_string(),
        });
        delete_service(job, &canary.service_name).await
    }
    .await;
    let address = job.address();
    let ended = match &work {
        Ok(()) => job.recorder.end_step(seq, StepOutcome::Done, |state| {
            put_ecs(state, address, Some(done.clone()))
        }),
        Err(_) => job.recorder.end_step(seq, StepOutcome::Failed, |_| {}),
    };
    work?;
    ended?;
    *record = done;
    Ok(())
}

/// Record that `action` of rollout step `step` starts (a journal entry of
/// this deployment, no host); returns the entry's number.
fn begin_ecs_step(
    job: &Job<'_>,
    step: usize,
    action: JournalAction,
    version: &str,
) -> Result<u64, EcsApplyError> {
    job.recorder
        .begin_step(
            &StepRecord {
                apply_id: job.apply_id,
                deployment: job.address(),
                step,
                host: None,
                action,
                version,
            },
            |_| {},
        )
        .map_err(EcsApplyError::Unrecorded)
}

/// The count a service goes back to on a rollback from the `recorded` one:
/// under autoscaling it stays where the rollout had it (never below what
/// autoscaling kept); otherwise it goes back to the recorded one.
fn count_to_go_back_to(job: &Job<'_>, recorded: u32) -> i32 {
    if job.autoscaled {
        job.desired.max(recorded as i32)
    } else {
        recorded as i32
    }
}

/// Update `service` to `task_definition_arn` at `count` tasks.
async fn update_service(
    job: &Job<'_>,
    service: &str,
    task_definition_arn: &str,
    count: i32,
) -> Result<(), EcsApplyError> {
    job.ecs
        .update_service()
        .cluster(&job.settings.cluster)
        .service(service)
        .task_definition(task_definition_arn)
        .desired_count(count)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| {
            AwsCall::UpdateService {
                service: service.to_string(),
            }
            .failed(error_text(&e))
        })
}

/// What a killed apply or a hand change left, settled before a canary or
/// blue/green goes on (see [`settle_left_over`]).
struct LeftOver<'a> {
    /// The record to go on from.
    previous: Option<EcsState>,
    /// The listener's weights as they are now.
    live: BTreeMap<String, i32>,
    /// Every step had passed in a killed apply, which was bringing the
    /// serving service to this task definition: only that is left.
    promoting: bool,
    /// The last step a killed apply shifted, never checked (bake, gates,
    /// approval): it is checked before the rollout goes on.
    unchecked: Option<&'a JournalEntry>,
}

/// Before a canary or blue/green of `task_definition_arn` goes on from
/// `previous`: a promotion a killed apply began for another task definition
/// is undone; an uncertain traffic step of a killed apply is settled from
/// the listener; weights changed by hand, as the plan showed, are set back.
async fn settle_left_over<'a>(
    job: &Job<'_>,
    listener: &str,
    groups: &[String; 2],
    previous: Option<EcsState>,
    task_definition_arn: &str,
    percents: &[u32],
    killed_steps: &'a [JournalEntry],
) -> Result<LeftOver<'a>, EcsApplyError> {
    // Which side serves now, as the listener really is.
    let mut live = listener_weights(job, listener).await?;

    let mut previous = previous;
    // A killed apply was bringing the serving service to another task
    // definition (the configuration changed since): that is undone first,
    // the serving service back on its own task definition with all traffic.
    if let Some(stale) = previous.clone().filter(|p| {
        p.canary
            .as_ref()
            .is_some_and(|c| c.promoted && c.task_definition_arn != task_definition_arn)
    }) {
        job.report(TrafficEvent::InterruptedRolloutUndone {
            service: stale.service_name.clone(),
            task_definition: stale.canary.as_ref().map(|c| c.task_definition_arn.clone()),
            previous: stale.task_definition_arn.clone(),
        });
        previous = roll_back_traffic(job, Some(&stale), 1, false, SendBack::Withdraw, None).await?;
        live = listener_weights(job, listener).await?;
    }
    // Every step passed in a killed apply, which was bringing the serving
    // service to this task definition: only that is left to finish.
    let promoting = previous
        .as_ref()
        .and_then(|p| p.canary.as_ref())
        .is_some_and(|c| c.promoted);

    // A traffic step a killed apply started and never recorded as finished:
    // the listener says whether it happened.
    let mut shifted_by_killed_apply = None;
    if let Some(uncertain) = killed_steps
        .iter()
        .rfind(|e| e.action == JournalAction::Traffic && e.finished_at.is_none())
    {
        if resolve_interrupted_shift(job, listener, groups, &live, previous.as_mut(), uncertain)? {
            shifted_by_killed_apply = Some(uncertain);
        }
    }
    // The last step a killed apply shifted was never checked (bake, gates,
    // approval): it is checked before the rollout goes on.
    let unchecked = shifted_by_killed_apply.or_else(|| {
        killed_steps
            .iter()
            .filter(|e| e.action == JournalAction::Traffic)
            .filter(|e| e.result.as_ref().is_some_and(|r| r.is(StepOutcome::Done)))
            .max_by_key(|e| e.seq)
    });

    // Weights changed outside slipway, as the plan showed: set back first.
    if let Some(record) = previous
        .as_ref()
        .filter(|p| job.restore_listener && !p.weights.is_empty())
        .filter(|p| !requests::weights_match(&live, &p.weights))
    {
        let percent = record.canary.as_ref().map_or(100, |c| c.percent);
        let step = percents
            .iter()
            .position(|p| *p == percent)
            .map_or(1, |i| i + 1);
        shift_traffic(job, listener, step, percent, record).await?;
        job.report(TrafficEvent::ListenerRestored {
            listener: listener.to_string(),
            live: Some(live.clone()),
            recorded: record.weights.clone(),
        });
        live = record
            .weights
            .iter()
            .map(|(group, weight)| (group.clone(), *weight as i32))
            .collect();
    }
    Ok(LeftOver {
        previous,
        live,
        promoting,
        unchecked,
    })
}

/// The rollback journal entry's version when the rollout was the first one:
/// nothing served before, so rolling back removes the new service.
const NO_PREVIOUS_VERSION: &str = "(none)";

/// One traffic step, journaled: recorded as started, the listener set to
/// `after.weights`, then recorded as finished together with `after` (the
/// weights and the canary's share) in one write. A failure to set the
/// weights closes the entry as failed and leaves the record as it was.
async fn shift_traffic(
    job: &Job<'_>,
    listener: &str,
    step: usize,
    percent: u32,
    after: &EcsState,
) -> Result<(), EcsApplyError> {
    let version = JournalEntry::traffic_version(&job.deployment.service.version, percent);
    let seq = begin_ecs_step(job, step, JournalAction::Traffic, &version)?;
    let result = set_listener_weights(job, listener, &after.weights).await;
    let address = job.address();
    let ended = match &result {
        Ok(()) => job.recorder.end_step(seq, StepOutcome::Done, |state| {
            put_ecs(state, address, Some(after.clone()))
        }),
        Err(_) => job.recorder.end_step(
            seq,
            StepResult::noted(StepOutcome::Failed, "the listener was not changed"),
            |_| {},
        ),
    };
    result?;
    ended.map_err(EcsApplyError::Unrecorded)
}

/// Why all traffic goes back to the serving side; it names the journal entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SendBack {
    /// A step failed: a `rollback` entry. The next apply finishes a killed
    /// apply's rollback and, of the same version, deploys nothing.
    Rollback,
    /// An unfinished rollout is given up before another one starts: a
    /// `withdraw` entry. A killed apply's is simply done again by the next
    /// apply, which then goes on with its own rollout.
    Withdraw,
}

impl SendBack {
    fn journal_action(self) -> JournalAction {
        match self {
            SendBack::Rollback => JournalAction::Rollback,
            SendBack::Withdraw => JournalAction::Withdraw,
        }
    }

    fn finished_result(self) -> StepOutcome {
        match self {
            SendBack::Rollback => StepOutcome::RolledBack,
            SendBack::Withdraw => StepOutcome::Done,
        }
    }
}

/// Send all traffic back to the side that served before the rollout and
/// remove the new service, journaled as one entry of `step` (`why`).
/// `record` is the ECS record as state has it now (the new side in
/// `canary`); when `first_rollout`, nothing served before and the new service
/// is all there is. Returns the record of what serves afterwards, which is
/// written in the same write that finishes the entry and closes
/// `interrupted` (the uncertain rollback of a killed apply, finished here).
async fn roll_back_traffic(
    job: &Job<'_>,
    record: Option<&EcsState>,
    step: usize,
    first_rollout: bool,
    why: SendBack,
    interrupted: Option<&JournalEntry>,
) -> Result<Option<EcsState>, EcsApplyError> {
    let mut weights = None;
    let mut remove = None;
    let restored = match record {
        Some(record) => match &record.canary {
            Some(canary) => {
                let mut restored = record.clone();
                restored.canary = None;
                if let Some(old_group) = record
                    .target_group
                    .as_ref()
                    .filter(|g| job.settings.target_groups.contains(g))
                {
                    restored.weights = requests::step_weights(&canary.target_group, old_group, 100);
                    weights = Some(restored.weights.clone());
                }
                remove = Some(canary.service_name.clone());
                Some(restored)
            }
            None if first_rollout => {
                remove = Some(record.service_name.clone());
                None
            }
            None => Some(record.clone()),
        },
        None => None,
    };
    let version = if first_rollout {
        NO_PREVIOUS_VERSION.to_string()
    } else {
        job.baseline_version
            .clone()
            .unwrap_or_else(|| "previous".to_string())
    };
    let seq = begin_ecs_step(job, step, why.journal_action(), &version)?;
    // The serving service was being brought to the new version: it goes
    // back to its recorded task definition before it takes traffic again.
    let set_back = record
        .filter(|r| r.canary.as_ref().is_some_and(|c| c.promoted))
        .and_then(|r| r.task_definition_arn.clone().map(|arn| (r, arn)));
    let work = async {
        if let Some((serving, arn)) = &set_back {
            let count = count_to_go_back_to(job, serving.desired_count);
            job.report(ServiceEvent::SettingServiceBack {
                service: serving.service_name.clone(),
                task_definition: arn.to_string(),
            });
            update_service(job, &serving.service_name, arn, count).await?;
            wait_until_stable(job, &serving.service_name, arn, count).await?;
        }
        if let (Some(listener), Some(weights)) = (&job.settings.listener_arn, &weights) {
            set_listener_weights(job, listener, weights).await?;
        }
        if let Some(service) = &remove {
            delete_service(job, service).await?;
        }
        Ok::<(), EcsApplyError>(())
    }
    .await;
    let address = job.address();
    let ended = match &work {
        Ok(()) => job.recorder.end_step(seq, why.finished_result(), |state| {
            put_ecs(state, address, restored.clone());
            if let Some(entry) = interrupted {
                state.finish_journal_entry(
                    entry.seq,
                    StepResult::noted(
                        StepOutcome::RolledBack,
                        format!("finished by {}", job.apply_id),
                    ),
                );
            }
        }),
        Err(_) => job.recorder.end_step(seq, StepOutcome::Failed, |_| {}),
    };
    work?;
    ended?;
    Ok(restored)
}

/// Finish the rollback a killed apply journaled as `rollback`, from `record`
/// (the ECS record it left). A rollback it recorded as finished needs nothing
/// more. Returns the record of what serves afterwards.
async fn finish_killed_rollback(
    job: &Job<'_>,
    record: Option<&EcsState>,
    rollback: &JournalEntry,
) -> Result<Option<EcsState>, EcsApplyError> {
    if rollback.finished_at.is_some() {
        return Ok(record.cloned());
    }
    let first_rollout = rollback.version == NO_PREVIOUS_VERSION;
    roll_back_traffic(
        job,
        record,
        rollback.step,
        first_rollout,
        SendBack::Rollback,
        Some(rollback),
    )
    .await
}

/// Settle `uncertain`, a traffic step a killed apply started and never
/// recorded as finished, from the listener's `live` weights. When they are
/// the weights the step meant to set, the shift happened: `record` gets them
/// (and the canary its share), written together with the closed entry;
/// returns true. When they are still the recorded ones, the entry is closed
/// as not done and the step runs again; returns false. Anything else is a
/// listener changed behind slipway's back, an error.
fn resolve_interrupted_shift(
    job: &Job<'_>,
    listener: &str,
    groups: &[String; 2],
    live: &BTreeMap<String, i32>,
    record: Option<&mut EcsState>,
    uncertain: &JournalEntry,
) -> Result<bool, EcsApplyError> {
    let (Some(record), Some(percent)) = (record, uncertain.traffic_percent()) else {
        return Ok(false);
    };
    // The side the step moved traffic to: the canary's, or, for a first
    // rollout, the one service there is.
    let Some(new_group) = record
        .canary
        .as_ref()
        .map(|c| c.target_group.clone())
        .or_else(|| record.target_group.clone())
    else {
        return Ok(false);
    };
    let Some(old_group) = groups.iter().find(|g| **g != new_group) else {
        return Ok(false);
    };
    let intended = requests::step_weights(old_group, &new_group, percent);
    let address = job.address();
    let new_service = record
        .canary
        .as_ref()
        .map_or(&record.service_name, |c| &c.service_name)
        .clone();
    let settled = |settled| TrafficEvent::InterruptedShiftSettled {
        step: uncertain.step,
        percent,
        service: new_service.clone(),
        apply_id: uncertain.apply_id.clone(),
        settled,
    };
    match requests::judge_interrupted_shift(live, &record.weights, &intended) {
        InterruptedShift::Done => {
            record.weights = intended;
            if let Some(canary) = &mut record.canary {
                canary.percent = percent;
            }
            let recorded = record.clone();
            job.recorder.update(|state| {
                state.finish_journal_entry(
                    uncertain.seq,
                    StepResult::noted(
                        StepOutcome::Done,
                        format!("listener re-read by {}", job.apply_id),
                    ),
                );
                put_ecs(state, address, Some(recorded));
            })?;
            job.report(settled(ShiftSettled::Done));
            Ok(true)
        }
        InterruptedShift::NotDone => {
            job.recorder.update(|state| {
                state.finish_journal_entry(
                    uncertain.seq,
                    StepResult::noted(
                        StepOutcome::NotDone,
                        format!("listener re-read by {}", job.apply_id),
                    ),
                )
            })?;
            job.report(settled(ShiftSettled::NotDone));
            Ok(false)
        }
        // The listener is neither as recorded nor as the step set it: it
        // was changed by hand. When the plan showed that and apply is to set
        // the recorded weights back, the step is closed as not done and the
        // weights are set back first, as the plan said.
        InterruptedShift::Drifted if job.restore_listener => {
            job.recorder.update(|state| {
                state.finish_journal_entry(
                    uncertain.seq,
                    StepResult::noted(
                        StepOutcome::NotDone,
                        format!(
                            "the listener was changed outside slipway; re-read by {}",
                            job.apply_id
                        ),
                    ),
                )
            })?;
            job.report(settled(ShiftSettled::ChangedByHand));
            Ok(false)
        }
        InterruptedShift::Drifted => Err(EcsApplyError::ListenerDrifted(Box::new(ListenerDrift {
            listener: listener.to_string(),
            recorded: record.weights.clone(),
            apply_id: uncertain.apply_id.clone(),
            intended,
            step: format!("step {} ({percent}% on {new_service})", uncertain.step),
            live: live.clone(),
        }))),
    }
}

/// The record to write when the rollout has nothing left to do: state says
/// one service runs this task definition at the desired count with no
/// canary beside it, ECS has it stable, and the listener sends it all the
/// traffic (a rollout whose end was not recorded, or a rollout policy that
/// changed alone). `None` otherwise.
async fn already_serving(
    job: &Job<'_>,
    previous: Option<&EcsState>,
    groups: &[String; 2],
    live: &BTreeMap<String, i32>,
    task_definition_arn: &str,
) -> Result<Option<EcsState>, EcsApplyError> {
    let Some(previous) = previous.filter(|p| {
        p.canary.is_none()
            && p.task_definition_arn.as_deref() == Some(task_definition_arn)
            && p.desired_count == job.desired as u32
    }) else {
        return Ok(None);
    };
    let Some(group) = previous
        .target_group
        .as_ref()
        .filter(|g| groups.contains(g) && requests::serves_only(live, g))
    else {
        return Ok(None);
    };
    if judge_service(job, &previous.service_name, task_definition_arn).await? != Verdict::Stable {
        return Ok(None);
    }
    let other = groups.iter().find(|g| *g != group).unwrap_or(group);
    let mut serving = ecs_record(job, &previous.service_name, task_definition_arn);
    serving.target_group = Some(group.clone());
    serving.weights = requests::step_weights(other, group, 100);
    Ok(Some(serving))
}

/// `slipway reject`: a canary or blue/green rollout that waits for an approval
/// sends all traffic back to the old service and removes the new one.
pub async fn reject_deployment(
    config: &Config,
    address: &str,
    recorder: &Recorder,
    options: &ApplyOptions,
    progress: &Progress,
) -> Result<DeploymentOutcome, EcsApplyError> {
    let job = job(config, address, recorder, options, progress).await?;
    let record = recorder
        .deployment(address)
        .and_then(|d| d.ecs)
        .ok_or_else(|| EcsApplyError::NoServiceInState {
            address: address.to_string(),
        })?;
    let Some(canary) = record.canary.clone() else {
        return Err(EcsApplyError::NothingBeside {
            address: address.to_string(),
        });
    };
    if canary.promoted {
        return Err(EcsApplyError::BeingPromoted {
            address: address.to_string(),
            service: record.service_name,
        });
    }
    let (Some(listener), Some(old_group)) = (
        job.settings.listener_arn.clone(),
        record.target_group.clone(),
    ) else {
        return Err(EcsApplyError::NoListenerInState {
            address: address.to_string(),
        });
    };
    job.report(TrafficEvent::TrafficSentBack {
        to: Some(record.service_name.clone()),
        removing: canary.service_name.clone(),
    });
    let weights = requests::step_weights(&canary.target_group, &old_group, 100);
    set_listener_weights(&job, &listener, &weights).await?;
    delete_service(&job, &canary.service_name).await?;
    let mut restored = record;
    restored.weights = weights;
    restored.canary = None;
    record_ecs(&job, Some(restored)).map_err(|f| f.error)?;
    recorder
        .finish_deployment(address, DeploymentStatus::RolledBack, false, &[])
        .map_err(EcsApplyError::State)?;
    progress.done(address);
    job.report(ServiceEvent::ServiceEnded {
        ended: ServiceEnd::RolledBack,
    });
    Ok(DeploymentOutcome::default())
}

/// `slipway rollback` of an ECS deployment (see [`crate::plan::rollback`]):
/// the service that serves now and the release's task definition are looked
/// up first, and nothing changes unless both exist. Then state records the
/// rollback as started; an unfinished rollout's new side gets no more
/// traffic and is removed; the service is updated to the release's task
/// definition (its desired count kept) and waited for until it is stable.
pub async fn roll_back_to_release(
    config: &Config,
    plan: &crate::plan::rollback::RollbackPlan,
    recorder: &Recorder,
    options: &ApplyOptions,
    progress: &Progress,
) -> Result<DeploymentOutcome, EcsApplyError> {
    let crate::plan::rollback::RollbackTarget::Ecs { now, to } = &plan.target else {
        return Err(EcsApplyError::NotEcs {
            address: plan.address.clone(),
        });
    };
    let mut job = job(config, &plan.address, recorder, options, progress).await?;
    // The count it runs now; under autoscaling, never below what
    // autoscaling holds, and its scaling suspended while the rollback runs.
    job.desired = now.desired_count as i32;
    let suspension = scaling_to_suspend(&mut job, &now.service_name)
        .await
        .map_err(|e| EcsApplyError::Unchanged(Box::new(e)))?;
    let job = job;
    let unchanged = |why: EcsApplyError| EcsApplyError::Unchanged(Box::new(why));
    let arn = to.task_definition_arn.clone().ok_or_else(|| {
        unchanged(EcsApplyError::NoReleaseTaskDefinition {
            version: plan.to.version.clone(),
        })
    })?;
    match describe_service(&job, &now.service_name)
        .await
        .map_err(&unchanged)?
    {
        Some(service) if service.status == "ACTIVE" => {}
        _ => {
            return Err(unchanged(EcsApplyError::ServiceGone {
                service: now.service_name.clone(),
                cluster: now.cluster.clone(),
            }))
        }
    }
    job.ecs
        .describe_task_definition()
        .task_definition(&arn)
        .send()
        .await
        .map_err(|e| {
            unchanged(EcsApplyError::ReleaseUnreadable {
                arn: arn.clone(),
                version: plan.to.version.clone(),
                message: error_text(&e),
            })
        })?;
    super::rollback::record_start(recorder, plan, options).map_err(EcsApplyError::State)?;
    if let Some(suspension) = &suspension {
        suspend_scaling(&job, suspension).await?;
    }
    let result = switch_to_release(&job, now, to, &arn, &plan.to.version).await;
    if let Some(suspension) = &suspension {
        let restored = restore_scaling(&job, suspension).await;
        if let (Ok(()), Err(message)) = (&result, restored) {
            return Err(message);
        }
    }
    result?;
    progress.done(&plan.address);
    Ok(DeploymentOutcome {
        rolled_back: true,
        ..DeploymentOutcome::default()
    })
}

/// The changes of `slipway rollback` of an ECS deployment: the unfinished
/// canary's side removed, the serving service on the release's task
/// definition (`arn`) at the job's count, and state recording it.
async fn switch_to_release(
    job: &Job<'_>,
    now: &EcsState,
    to: &EcsState,
    arn: &str,
    version: &str,
) -> Result<(), EcsApplyError> {
    if let (Some(canary), Some(listener)) = (&now.canary, job.settings.listener_arn.clone()) {
        job.report(TrafficEvent::TrafficSentBack {
            to: Some(now.service_name.clone()),
            removing: canary.service_name.clone(),
        });
        set_listener_weights(job, &listener, &to.weights).await?;
        delete_service(job, &canary.service_name).await?;
        let mut record = now.clone();
        record.weights = to.weights.clone();
        record.canary = None;
        record_ecs(job, Some(record)).map_err(|f| f.error)?;
    }
    job.ecs
        .update_service()
        .cluster(&now.cluster)
        .service(&now.service_name)
        .task_definition(arn)
        .desired_count(job.desired)
        .send()
        .await
        .map_err(|e| {
            AwsCall::UpdateService {
                service: now.service_name.clone(),
            }
            .failed(error_text(&e))
        })?;
    job.report(ServiceEvent::ServiceUpdated {
        service: now.service_name.clone(),
        task_definition: arn.to_string(),
        version: Some(version.to_string()),
    });
    let mut record = to.clone();
    record.desired_count = job.desired.max(0) as u32;
    record_ecs(job, Some(record)).map_err(|f| f.error)?;
    wait_until_stable(job, &now.service_name, arn, job.desired).await
}

/// After `step`: the shared approval check with this job's deployment.
fn wait_for_approval(job: &Job<'_>, step: &Step) -> Result<Option<String>, EcsApplyError> {
    super::wait_for_approval(
        job.config,
        job.deployment,
        step,
        job.recorder,
        job.progress,
        job.apply_id,
    )
    .map_err(|e| EcsApplyError::Approval(e.to_string()))
}

/// Before moving weights: the listener must still send traffic as last set,
/// and no target of the new side may be unhealthy.
async fn check_before_shift(
    job: &Job<'_>,
    listener: &str,
    expected: &BTreeMap<String, u32>,
    new_group: &str,
) -> Result<(), EcsApplyError> {
    let live = listener_weights(job, listener).await?;
    if !expected.is_empty() && !requests::weights_match(&live, expected) {
        return Err(EcsApplyError::ListenerChanged {
            listener: listener.to_string(),
            expected: expected.clone(),
            found: live,
        });
    }
    check_targets_healthy(job, new_group).await
}

/// No target of `new_group` may be unhealthy before it gets more traffic.
async fn check_targets_healthy(job: &Job<'_>, new_group: &str) -> Result<(), EcsApplyError> {
    let health = job
        .elb
        .describe_target_health()
        .target_group_arn(new_group)
        .send()
        .await
        .map_err(|e| {
            AwsCall::DescribeTargetHealth {
                target_group: new_group.to_string(),
            }
            .failed(error_text(&e))
        })?;
    let unhealthy: Vec<String> = health
        .target_health_descriptions()
        .iter()
        .filter(|d| {
            matches!(
                d.target_health().and_then(|h| h.state()),
                Some(TargetHealthStateEnum::Unhealthy | TargetHealthStateEnum::Unavailable)
            )
        })
        .map(|d| {
            d.target()
                .and_then(|t| t.id())
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    if !unhealthy.is_empty() {
        return Err(EcsApplyError::UnhealthyTargets {
            target_group: new_group.to_string(),
            targets: unhealthy,
        });
    }
    Ok(())
}

// ---- AWS calls -------------------------------------------------------------

async fn create_service(
    job: &Job<'_>,
    service: &str,
    task_definition_arn: &str,
    target_group: Option<&str>,
    ecs_rolls_back: bool,
) -> Result<(), EcsApplyError> {
    let mut request = job
        .ecs
        .create_service()
        .cluster(&job.settings.cluster)
        .service_name(service)
        .task_definition(task_definition_arn)
        .desired_count(job.desired)
        .launch_type(LaunchType::from(job.spec.launch_type.as_str()))
        .deployment_configuration(
            DeploymentConfiguration::builder()
                .maximum_percent(200)
                .minimum_healthy_percent(100)
                .deployment_circuit_breaker(
                    DeploymentCircuitBreaker::builder()
                        .enable(true)
                        .rollback(ecs_rolls_back)
                        .build(),
                )
                .build(),
        );
    if job.spec.network_mode == crate::config::NetworkMode::Awsvpc {
        let vpc = AwsVpcConfiguration::builder()
            .set_subnets(Some(job.settings.subnets.clone()))
            .set_security_groups(Some(job.settings.security_groups.clone()))
            .assign_public_ip(if job.settings.assign_public_ip {
                AssignPublicIp::Enabled
            } else {
                AssignPublicIp::Disabled
            })
            .build()?;
        request = request.network_configuration(
            NetworkConfiguration::builder()
                .awsvpc_configuration(vpc)
                .build(),
        );
    }
    if let (Some(group), Some((container, port))) =
        (target_group, requests::load_balanced_container(job.spec))
    {
        request = request.load_balancers(
            LoadBalancer::builder()
                .target_group_arn(group)
                .container_name(container)
                .container_port(i32::from(port))
                .build(),
        );
    }
    request.send().await.map_err(|e| {
        AwsCall::CreateService {
            service: service.to_string(),
        }
        .failed(error_text(&e))
    })?;
    job.report(ServiceEvent::ServiceCreated {
        service: service.to_string(),
        task_definition: task_definition_arn.to_string(),
    });
    Ok(())
}

async fn delete_service(job: &Job<'_>, service: &str) -> Result<(), EcsApplyError> {
    match describe_service(job, service).await? {
        Some(s) if s.status == "ACTIVE" => {}
        _ => return Ok(()),
    }
    job.ecs
        .update_service()
        .cluster(&job.settings.cluster)
        .service(service)
        .desired_count(0)
        .send()
        .await
        .map_err(|e| {
            AwsCall::ScaleDown {
                service: service.to_string(),
            }
            .failed(error_text(&e))
        })?;
    job.ecs
        .delete_service()
        .cluster(&job.settings.cluster)
        .service(service)
        .force(true)
        .send()
        .await
        .map_err(|e| {
            AwsCall::DeleteService {
                service: service.to_string(),
            }
            .failed(error_text(&e))
        })?;
    job.report(ServiceEvent::ServiceDeleted {
        service: service.to_string(),
    });
    Ok(())
}

/// The service as ECS describes it, `None` when ECS does not know it.
async fn describe_service(
    job: &Job<'_>,
    service: &str,
) -> Result<Option<ServiceSnapshot>, EcsApplyError> {
    let described = describe_one_service(&job.ecs, &job.settings.cluster, service)
        .await
        .map_err(|e| {
            AwsCall::DescribeService {
                service: service.to_string(),
            }
            .failed(error_text(&e))
        })?;
    Ok(described.as_ref().map(snapshot))
}

/// The entry DescribeServices returns for `service` in `cluster` (any
/// status), `None` when ECS does not know it: the one DescribeServices call,
/// for apply and for what `plan` and `-refresh` read.
pub(super) async fn describe_one_service(
    ecs: &aws_sdk_ecs::Client,
    cluster: &str,
    service: &str,
) -> Result<
    Option<aws_sdk_ecs::types::Service>,
    aws_sdk_ecs::error::SdkError<
        aws_sdk_ecs::operation::describe_services::DescribeServicesError,
        aws_sdk_ecs::config::http::HttpResponse,
    >,
> {
    let output = ecs
        .describe_services()
        .cluster(cluster)
        .services(service)
        .send()
        .await?;
    Ok(output.services().first().cloned())
}

pub fn snapshot(service: &aws_sdk_ecs::types::Service) -> ServiceSnapshot {
    ServiceSnapshot {
        status: service.status().unwrap_or("ACTIVE").to_string(),
        desired_count: service.desired_count(),
        running_count: service.running_count(),
        deployments: service
            .deployments()
            .iter()
            .map(|d| DeploymentSnapshot {
                id: d.id().unwrap_or_default().to_string(),
                status: d.status().unwrap_or_default().to_string(),
                task_definition: d.task_definition().unwrap_or_default().to_string(),
                desired_count: d.desired_count(),
                running_count: d.running_count(),
                failed_tasks: d.failed_tasks(),
                rollout_state: d.rollout_state().map(|s| s.as_str().to_string()),
                rollout_state_reason: d.rollout_state_reason().map(str::to_string),
            })
            .collect(),
        events: service
            .events()
            .iter()
            .filter_map(|e| e.message().map(str::to_string))
            .collect(),
    }
}

async fn judge_service(
    job: &Job<'_>,
    service: &str,
    task_definition_arn: &str,
) -> Result<Verdict, EcsApplyError> {
    let snapshot = describe_service(job, service)
        .await?
        .unwrap_or(ServiceSnapshot {
            status: "MISSING".into(),
            ..ServiceSnapshot::default()
        });
    Ok(requests::judge(&snapshot, task_definition_arn, job.desired))
}

/// Poll with backoff until the service runs only `task_definition_arn` at
/// `desired` tasks; fail as soon as ECS says it cannot get there.
async fn wait_until_stable(
    job: &Job<'_>,
    service: &str,
    task_definition_arn: &str,
    desired: i32,
) -> Result<(), EcsApplyError> {
    let deadline = Instant::now() + job.wait_timeout;
    let mut interval = FIRST_POLL_INTERVAL;
    loop {
        let snapshot = describe_service(job, service)
            .await?
            .unwrap_or(ServiceSnapshot {
                status: "MISSING".into(),
                ..ServiceSnapshot::default()
            });
        match requests::judge(&snapshot, task_definition_arn, desired) {
            Verdict::Stable => {
                job.report(ServiceEvent::ServiceStable {
                    service: service.to_string(),
                    tasks: desired,
                });
                return Ok(());
            }
            Verdict::Failed(why) => {
                return Err(EcsApplyError::Unstable {
                    service: service.to_string(),
                    reason: why,
                })
            }
            Verdict::Waiting(what) => {
                if Instant::now() >= deadline {
                    return Err(EcsApplyError::WaitTimedOut {
                        service: service.to_string(),
                        timeout: job.wait_timeout,
                        waiting: what,
                    });
                }
                job.progress
                    .status(job.address(), &format!("{service}: {what}"));
                tokio::time::sleep(interval.min(deadline - Instant::now())).await;
                interval = (interval * 3 / 2).min(MAX_POLL_INTERVAL);
            }
        }
    }
}

/// Target group ARN → weight of the listener's default forward action.
pub async fn read_listener_weights(
    elb: &aws_sdk_elasticloadbalancingv2::Client,
    listener: &str,
) -> Result<BTreeMap<String, i32>, EcsApplyError> {
    let output = elb
        .describe_listeners()
        .listener_arns(listener)
        .send()
        .await
        .map_err(|e| {
            AwsCall::DescribeListener {
                listener: listener.to_string(),
            }
            .failed(error_text(&e))
        })?;
    let listener_description =
        output
            .listeners()
            .first()
            .ok_or_else(|| EcsApplyError::ListenerNotFound {
                listener: listener.to_string(),
            })?;
    let mut weights = BTreeMap::new();
    for action in listener_description.default_actions() {
        if let Some(forward) = action.forward_config() {
            for tuple in forward.target_groups() {
                if let Some(group) = tuple.target_group_arn() {
                    weights.insert(group.to_string(), tuple.weight().unwrap_or(1));
                }
            }
        } else if let Some(group) = action.target_group_arn() {
            weights.insert(group.to_string(), 1);
        }
    }
    Ok(weights)
}

async fn listener_weights(
    job: &Job<'_>,
    listener: &str,
) -> Result<BTreeMap<String, i32>, EcsApplyError> {
    read_listener_weights(&job.elb, listener).await
}

async fn set_listener_weights(
    job: &Job<'_>,
    listener: &str,
    weights: &BTreeMap<String, u32>,
) -> Result<(), EcsApplyError> {
    let forward = ForwardActionConfig::builder()
        .set_target_groups(Some(
            weights
                .iter()
                .map(|(group, weight)| {
                    TargetGroupTuple::builder()
                        .target_group_arn(group)
                        .weight(*weight as i32)
                        .build()
                })
                .collect(),
        ))
        .build();
    let action = ListenerAction::builder()
        .r#type(ActionTypeEnum::Forward)
        .forward_config(forward)
        .build();
    job.elb
        .modify_listener()
        .listener_arn(listener)
        .default_actions(action)
        .send()
        .await
        .map_err(|e| {
            AwsCall::SetListenerWeights {
                listener: listener.to_string(),
            }
            .failed(error_text(&e))
        })?;
    Ok(())
}

async fn judge_gates(job: &Job<'_>, rollout: &Rollout, step: usize) -> Result<(), EcsApplyError> {
    let ctx = gates::GateContext {
        config: job.config,
        deployment: job.deployment,
        baseline_version: job.baseline_version.as_deref(),
        step,
        hosts: &[],
        has_hosts: false,
        recorder: job.recorder,
        progress: job.progress,
    };
    for gate in &rollout.verify {
        if let Some(result) = gates::judge_on_runner(gate, &ctx).await {
            result?;
        }
    }
    Ok(())
}
