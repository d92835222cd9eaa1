//! Apply: the only layer that changes the world.
//!
//! Given a configuration and the plan computed from it, apply walks the plan's
//! schedule: waves one after another, the deployments of a wave in parallel
//! (bounded by `parallelism`), the steps of a deployment in order and the hosts
//! of a step in parallel. Every host step is recorded in state as it happens
//! ([`recorder`]), so a later `plan` shows exactly what remains. On a failed
//! step the rollout's `on_failure` decides: roll every host of this apply back
//! to its previous release, pause, or abort. Remote steps are built by
//! `crate::vm::steps` and run through `crate::transport`.
//!
//! Every host step is also written to the state's journal as started before it
//! runs and as finished after, so an apply killed at any moment can be
//! resumed: the next apply re-reads the outcome of the one step that may or
//! may not have happened (the host's release marker) and goes on with the
//! same rollout. Once its cancellation token is cancelled
//! ([`ApplyOptions::cancel`], which the CLI hands to `crate::signals` for the
//! first interrupt) no new step starts; the steps in flight finish and are
//! recorded, and the apply ends as "interrupted".
//!
//! Not here: choosing what to change (the planner did) and rendering the plan.

pub mod alb;
pub mod ecs;
pub mod events;
pub mod gates;
pub mod host_output;
pub mod notifications;
pub mod on_failure;
pub mod progress;
pub mod recorder;
pub mod refresh;
pub mod rollback;
pub mod scaling;
pub mod vm;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::plan::{
    Action, DeploymentChange, PendingPromotion, Plan, ScheduledDeployment, TargetKind,
};

pub use progress::Progress;
pub use recorder::Recorder;

/// How apply runs.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// Deployments of one wave run at most this many at a time.
    pub parallelism: usize,
    /// Identifies this apply in state, history and release markers.
    pub apply_id: String,
    /// Who runs it, for history.
    pub who: String,
    /// Where packed artifacts are kept.
    pub artifact_cache: PathBuf,
    /// Once cancelled (a first interrupt), no new deployment, step or
    /// rollback of a host starts; those in flight finish and are recorded.
    pub cancel: crate::signals::Cancel,
}

/// What happened, for the closing summary and the exit code.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplySummary {
    pub deployments_succeeded: usize,
    pub deployments_failed: usize,
    pub hosts_deployed: usize,
    pub hosts_failed: usize,
    pub hosts_rolled_back: usize,
    /// Hosts a rollback should have put back and could not (unreachable,
    /// or a rollback step failed).
    pub hosts_not_rolled_back: usize,
    /// ECS deployments put back on the service that served before.
    pub deployments_rolled_back: usize,
    pub duration: Duration,
    /// One line per failure, naming the deployment, host and step.
    pub failures: Vec<String>,
    /// Deployments not started because one they wait for failed.
    pub skipped: Vec<String>,
    /// Deployments stopped at an approval, one line each saying how to go on.
    pub waiting: Vec<String>,
    /// Deployments not started because one they wait for stopped at an approval.
    pub held: Vec<String>,
    /// An interrupt stopped the apply before its end; `slipway apply` goes on.
    pub interrupted: bool,
    /// Deployments that failed and paused (`on_failure = "pause"`), counted
    /// in `deployments_failed` too.
    pub paused: usize,
    /// Deployments not started because of the interrupt.
    pub not_started: Vec<String>,
    /// ECS deployments this apply started.
    pub ecs_deployments: usize,
}

impl ApplySummary {
    pub fn succeeded(&self) -> bool {
        self.deployments_failed == 0 && self.failures.is_empty() && !self.interrupted
    }

    /// The last line of a failed apply: where its outcome is recorded, in
    /// the words of what it changed (hosts, ECS services, or both).
    pub fn closing_note(&self) -> &'static str {
        let hosts = self.hosts_deployed
            + self.hosts_failed
            + self.hosts_rolled_back
            + self.hosts_not_rolled_back
            > 0;
        let services = self.ecs_deployments > 0;
        match (hosts, services) {
            (true, true) => "State records every host's outcome and each ECS service as it runs now; `slipway plan` shows what remains.",
            (false, true) => "State records each ECS service as it runs now (after a rollback: the version it went back to); `slipway plan` shows what remains.",
            _ => "State records every host's outcome; `slipway plan` shows what remains.",
        }
    }

    /// Every deployment that failed paused (none rolled back or aborted).
    pub fn only_paused(&self) -> bool {
        self.paused > 0 && self.paused == self.deployments_failed
    }

    /// How the apply ended, decided once: history's result, the `-json`
    /// result word, the closing line and the exit code all follow from it.
    pub fn end(&self) -> ApplyEnd {
        if self.interrupted {
            ApplyEnd::Interrupted
        } else if self.succeeded() && !self.waiting.is_empty() {
            ApplyEnd::WaitingApproval
        } else if self.succeeded() {
            ApplyEnd::Succeeded
        } else if self.only_paused() {
            ApplyEnd::Paused
        } else if self.hosts_rolled_back + self.deployments_rolled_back > 0 {
            ApplyEnd::RolledBack
        } else {
            ApplyEnd::Failed
        }
    }
}

/// How an apply that started ended ([`ApplySummary::end`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyEnd {
    /// Every deployment it started reached its end.
    Succeeded,
    /// Nothing failed, and a rollout stopped at an approval.
    WaitingApproval,
    /// Every deployment that failed paused (`on_failure = "pause"`).
    Paused,
    /// A deployment failed and targets were put back.
    RolledBack,
    /// A deployment failed (nothing put back, or not everything).
    Failed,
    /// An interrupt stopped it; the steps in flight finished.
    Interrupted,
}

impl ApplyEnd {
    /// Whether the apply did what it was asked (an approval wait included).
    pub fn is_success(self) -> bool {
        matches!(self, ApplyEnd::Succeeded | ApplyEnd::WaitingApproval)
    }
}

impl From<ApplyEnd> for crate::state::HistoryResult {
    fn from(end: ApplyEnd) -> Self {
        use crate::state::HistoryResult as R;
        match end {
            ApplyEnd::Succeeded => R::Succeeded,
            ApplyEnd::WaitingApproval => R::WaitingApproval,
            ApplyEnd::Paused => R::Paused,
            ApplyEnd::RolledBack => R::RolledBack,
            ApplyEnd::Failed => R::Failed,
            ApplyEnd::Interrupted => R::Interrupted,
        }
    }
}

/// The outcome of one deployment.
#[derive(Debug, Clone, Default)]
pub struct DeploymentOutcome {
    pub hosts_deployed: usize,
    pub hosts_failed: usize,
    pub hosts_rolled_back: usize,
    /// Hosts a rollback should have put back and could not.
    pub hosts_not_rolled_back: usize,
    /// An ECS deployment that failed went back to the service that served
    /// before (VM rollbacks count hosts instead).
    pub rolled_back: bool,
    pub failures: Vec<String>,
    /// The deployment stopped at an approval: how to go on.
    pub waiting_approval: Option<String>,
    /// An interrupt stopped it between two steps.
    pub interrupted: bool,
    /// A step failed and the rollout paused (`on_failure = "pause"`).
    pub paused: bool,
}

/// Run `futures` concurrently on this task; the results keep their order.
/// (Hosts of one step, or every host `plan -refresh` reads.)
pub(crate) async fn join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut pinned: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut results: Vec<Option<F::Output>> = (0..pinned.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (index, future) in pinned.iter_mut().enumerate() {
            if results[index].is_some() {
                continue;
            }
            match future.as_mut().poll(cx) {
                std::task::Poll::Ready(value) => results[index] = Some(value),
                std::task::Poll::Pending => pending = true,
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    results.into_iter().flatten().collect()
}

/// Reasons apply refuses to start; checked before anything changes.
pub fn unsupported(config: &Config, plan: &Plan) -> Vec<String> {
    let mut problems = Vec::new();
    for wave in &plan.schedule.waves {
        for scheduled in &wave.deployments {
            let Some(change) = plan.deployment(&scheduled.address) else {
                continue;
            };
            if change.action == Action::Destroy {
                continue;
            }
            let Some(deployment) = config.deployments.get(&scheduled.address) else {
                continue;
            };
            problems.extend(crate::plan::planner::adoption_refusal(
                config, deployment, change,
            ));
            if let Some(problem) = config
                .environment_of(deployment)
                .and_then(|e| e.vm_hosts.as_ref())
                .and_then(|hosts| crate::config::unusable_identity_file(hosts, &config.root))
            {
                problems.push(format!(
                    "{}: {problem} (see the warning above for where it is set); no host was contacted",
                    scheduled.address
                ));
            }
        }
    }
    problems
}

pub use crate::state::{approval_instructions, rejected_message};

/// After `step` of `deployment`: when the rollout asks for an approval there
/// that was not given for this version, record that the deployment waits for
/// it and say how to go on (`Some`); otherwise `None`. Shared by the VM and
/// ECS executors.
pub(crate) fn wait_for_approval(
    config: &Config,
    deployment: &crate::config::Deployment,
    step: &crate::plan::Step,
    recorder: &Recorder,
    progress: &Progress,
    apply_id: &str,
) -> Result<Option<String>, crate::state::StateError> {
    let Some(name) = &step.approval else {
        return Ok(None);
    };
    let address = deployment.address.as_str();
    let approved = recorder.read(|state| {
        state
            .deployments
            .get(address)
            .is_some_and(|d| d.approved(name, &deployment.service.version))
    });
    if approved {
        return Ok(None);
    }
    let approvers = config
        .rollout_of(deployment)
        .and_then(|r| r.approvals.iter().find(|a| &a.name == name))
        .map(|a| a.approvers.clone())
        .unwrap_or_default();
    recorder.wait_for_approval(address, name, step.index as u32, &approvers, apply_id)?;
    progress.report(
        address,
        events::RolloutEvent::WaitingForApproval {
            step: step.index,
            approval: name.to_string(),
        },
    );
    Ok(Some(approval_instructions(
        address,
        name,
        step.index as u32,
    )))
}

/// The outcome of a deployment that already waits for an approval: nothing
/// runs until someone approves or rejects.
fn still_waiting(
    address: &str,
    waiting: Option<&crate::state::ApprovalRecord>,
) -> DeploymentOutcome {
    DeploymentOutcome {
        waiting_approval: waiting.map(|w| approval_instructions(address, &w.name, w.after_step)),
        ..DeploymentOutcome::default()
    }
}

/// Why a promotion the plan left to apply does not hold now, if it does
/// not: the source's state must record its version deployed and verified.
fn not_promoted(
    promotion: &crate::plan::PendingPromotion,
    source: Option<&Recorder>,
) -> Option<String> {
    let saved = source.and_then(|r| r.deployment(&promotion.from));
    let why = match &saved {
        None => "it has no record".to_string(),
        Some(s) if s.version != promotion.version => format!("it has {} recorded", s.version),
        Some(s) if s.status != crate::state::DeploymentStatus::Deployed || !s.verified => format!(
            "{} is {} there, not deployed and verified",
            promotion.version,
            format!("{:?}", s.status).to_lowercase()
        ),
        Some(_) => return None,
    };
    Some(format!(
        "not promoted: the plan {}, but {why}; nothing was changed",
        promotion
            .describe()
            .replacen("promoted when", "promotes it when", 1)
    ))
}

/// Why a scheduled deployment does not start.
enum Blocked {
    /// A deployment it waits for failed (or was not started for that reason).
    Failed,
    /// A deployment it waits for stopped at an approval.
    Held,
}

/// Whether `scheduled` may start, given the deployments that failed and
/// those held at an approval so far. A plan that records what each
/// deployment waits for (`after`) stops only those; an older one (or an
/// abnormal end, recorded as the empty address) stops every later wave.
fn blocked_by(
    scheduled: &ScheduledDeployment,
    failed: &BTreeSet<String>,
    held: &BTreeSet<String>,
) -> Option<Blocked> {
    let waits_for = |set: &BTreeSet<String>| match &scheduled.after {
        _ if set.contains("") => !set.is_empty(),
        Some(after) => after.iter().any(|a| set.contains(a)),
        None => !set.is_empty(),
    };
    if waits_for(failed) {
        Some(Blocked::Failed)
    } else if waits_for(held) {
        Some(Blocked::Held)
    } else {
        None
    }
}

/// Run the plan. `recorders` holds the locked state of every environment the
/// plan touches.
pub async fn apply(
    config: Arc<Config>,
    plan: &Plan,
    recorders: BTreeMap<String, Arc<Recorder>>,
    options: ApplyOptions,
    progress: Arc<Progress>,
) -> ApplySummary {
    let started = Instant::now();
    let mut summary = ApplySummary::default();
    let limit = Arc::new(tokio::sync::Semaphore::new(options.parallelism.max(1)));
    // Deployments that failed, or stopped at an approval, and those not
    // started because of them: what waits for one of them does not start.
    let mut failed: BTreeSet<String> = BTreeSet::new();
    let mut held: BTreeSet<String> = BTreeSet::new();
    let ecs_started = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for wave in &plan.schedule.waves {
        if options.cancel.is_cancelled() {
            summary.interrupted = true;
            summary
                .not_started
                .extend(wave.deployments.iter().map(|d| d.address.clone()));
            continue;
        }
        let mut tasks = tokio::task::JoinSet::new();
        for scheduled in &wave.deployments {
            match blocked_by(scheduled, &failed, &held) {
                Some(Blocked::Failed) => {
                    summary.skipped.push(scheduled.address.clone());
                    failed.insert(scheduled.address.clone());
                    continue;
                }
                Some(Blocked::Held) => {
                    summary.held.push(scheduled.address.clone());
                    held.insert(scheduled.address.clone());
                    continue;
                }
                None => {}
            }
            let Some(change) = plan.deployment(&scheduled.address).cloned() else {
                continue;
            };
            let Some(recorder) = recorders.get(&change.environment).cloned() else {
                summary.failures.push(format!(
                    "{}: no state for environment {}",
                    change.address, change.environment
                ));
                summary.deployments_failed += 1;
                continue;
            };
            // The state of a promotion's source, read when this one starts.
            let promotion_source = change
                .promotion
                .as_ref()
                .map(|p| (p.clone(), recorders.get(&p.environment).cloned()));
            let scheduled = scheduled.clone();
            let config = config.clone();
            let options = options.clone();
            let progress = progress.clone();
            let limit = limit.clone();
            let ecs_started = ecs_started.clone();
            tasks.spawn(async move {
                let _permit = limit.acquire_owned().await;
                let run = DeploymentRun {
                    config: &config,
                    scheduled: &scheduled,
                    recorder: &recorder,
                    options: &options,
                    progress: &progress,
                    ecs_started: &ecs_started,
                };
                let outcome = run_deployment(run, &change, promotion_source).await;
                (change.address.clone(), outcome)
            });
        }
        while let Some(joined) = tasks.join_next().await {
            count_deployment(&mut summary, (&mut failed, &mut held), joined);
        }
    }
    summary.duration = started.elapsed();
    summary.ecs_deployments = ecs_started.load(std::sync::atomic::Ordering::Relaxed);
    for recorder in recorders.values() {
        if let Err(error) = recorder.finish(&options, plan, &summary) {
            summary
                .failures
                .push(format!("could not record the apply in history: {error}"));
        }
    }
    summary
}

/// Why one deployment of an apply did not run or did not finish. The
/// message is what apply prints and records.
#[derive(Debug, thiserror::Error)]
pub enum DeploymentError {
    /// A promotion whose source does not serve the version (the reason).
    #[error("{0}")]
    NotPromoted(String),
    /// The rollout of this version was rejected (how to go on).
    #[error("{0}")]
    Rejected(String),
    /// The rollout of this version was rolled back (how to go on).
    #[error("{0}")]
    RolledBack(String),
    /// State could not be written.
    #[error(transparent)]
    State(#[from] crate::state::StateError),
    /// The VM rollout could not go on.
    #[error(transparent)]
    Vm(#[from] vm::VmApplyError),
    /// The ECS rollout could not go on.
    #[error(transparent)]
    Ecs(#[from] ecs::EcsApplyError),
}

/// `slipway reject`: roll back the rollout of `address` that waited for the
/// approval just rejected, with the executor of the deployment's target (ECS
/// when the configuration runs it there, its VM hosts otherwise), which is
/// returned for the caller's closing words.
pub async fn reject_deployment(
    config: &Config,
    address: &str,
    recorder: &Recorder,
    options: &ApplyOptions,
    progress: &Progress,
) -> (TargetKind, Result<DeploymentOutcome, DeploymentError>) {
    let on_ecs = config
        .deployments
        .get(address)
        .is_some_and(|d| config.environment_of(d).is_some_and(|e| d.runs_on_ecs(e)));
    if on_ecs {
        let result = ecs::reject_deployment(config, address, recorder, options, progress).await;
        (TargetKind::Ecs, result.map_err(DeploymentError::from))
    } else {
        let result = vm::reject_deployment(config, address, recorder, options, progress).await;
        (TargetKind::Vm, result.map_err(DeploymentError::from))
    }
}

/// What one deployment's task shares with the apply.
struct DeploymentRun<'a> {
    config: &'a Arc<Config>,
    scheduled: &'a ScheduledDeployment,
    recorder: &'a Arc<Recorder>,
    options: &'a ApplyOptions,
    progress: &'a Arc<Progress>,
    /// How many ECS deployments started (the summary says so).
    ecs_started: &'a std::sync::atomic::AtomicUsize,
}

/// Run one deployment of the plan: nothing when apply was interrupted
/// before it started; what state says stops it (an approval still awaited,
/// a rejection, a rollback, a promotion's source not on the version), or
/// its removal, or its rollout on ECS or VM hosts, with its notifications.
async fn run_deployment(
    run: DeploymentRun<'_>,
    change: &DeploymentChange,
    promotion_source: Option<(PendingPromotion, Option<Arc<Recorder>>)>,
) -> Result<DeploymentOutcome, DeploymentError> {
    let DeploymentRun {
        config,
        scheduled,
        recorder,
        options,
        progress,
        ecs_started,
    } = run;
    if options.cancel.is_cancelled() {
        return Ok(DeploymentOutcome {
            interrupted: true,
            ..DeploymentOutcome::default()
        });
    }
    let saved = recorder
        .deployment(&change.address)
        .filter(|saved| change.version_after.as_ref() == Some(&saved.version));
    let waiting = saved.as_ref().and_then(|s| s.waiting_approval().cloned());
    let rejected = saved.as_ref().and_then(|s| s.rejected().cloned());
    let rolled_back = recorder
        .deployment(&change.address)
        .and_then(|s| s.rolled_back_from)
        .filter(|r| change.version_after.as_ref() == Some(&r.version));
    let unpromoted = promotion_source
        .as_ref()
        .and_then(|(promotion, source)| not_promoted(promotion, source.as_deref()));
    let notifier = match (&waiting, &rejected) {
        (None, None) if rolled_back.is_none() && unpromoted.is_none() => {
            notifications::started(config, change, options, progress).await
        }
        _ => None,
    };
    let outcome = match change.action {
        _ if unpromoted.is_some() => {
            Err(DeploymentError::NotPromoted(unpromoted.unwrap_or_default()))
        }
        _ if waiting.is_some() => Ok(still_waiting(&change.address, waiting.as_ref())),
        _ if rejected.is_some() => Err(DeploymentError::Rejected(
            rejected.as_ref().map_or_else(String::new, rejected_message),
        )),
        _ if rolled_back.is_some() => Err(DeploymentError::RolledBack(
            rolled_back
                .as_ref()
                .map_or_else(String::new, crate::state::rolled_back_message),
        )),
        Action::Destroy => recorder
            .forget(&change.address)
            .map(|()| DeploymentOutcome::default())
            .map_err(DeploymentError::from),
        _ if change.target == TargetKind::Ecs => {
            ecs_started.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            ecs::apply_deployment(config, change, scheduled, recorder, options, progress)
                .await
                .map_err(DeploymentError::from)
        }
        _ => vm::apply_deployment(config, change, scheduled, recorder, options, progress)
            .await
            .map_err(DeploymentError::from),
    };
    notifications::finished(config, notifier.as_ref(), &outcome, recorder, progress).await;
    outcome
}

/// Add how one deployment's task ended to `summary`; a deployment that
/// failed goes into `failed`, one interrupted or stopped at an approval into
/// `held` (what waits for it does not start).
fn count_deployment(
    summary: &mut ApplySummary,
    (failed, held): (&mut BTreeSet<String>, &mut BTreeSet<String>),
    joined: Result<(String, Result<DeploymentOutcome, DeploymentError>), tokio::task::JoinError>,
) {
    match joined {
        Ok((address, Ok(outcome))) => {
            summary.hosts_deployed += outcome.hosts_deployed;
            summary.hosts_failed += outcome.hosts_failed;
            summary.hosts_rolled_back += outcome.hosts_rolled_back;
            summary.hosts_not_rolled_back += outcome.hosts_not_rolled_back;
            summary.deployments_rolled_back += usize::from(outcome.rolled_back);
            if outcome.interrupted {
                summary.interrupted = true;
                summary.failures.extend(outcome.failures);
                held.insert(address);
            } else if let Some(waiting) = outcome.waiting_approval {
                summary.waiting.push(waiting);
                summary.failures.extend(outcome.failures);
                held.insert(address);
            } else if outcome.failures.is_empty() {
                summary.deployments_succeeded += 1;
            } else {
                summary.deployments_failed += 1;
                summary.paused += usize::from(outcome.paused);
                summary.failures.extend(outcome.failures);
                failed.insert(address);
            }
        }
        Ok((address, Err(error))) => {
            summary.deployments_failed += 1;
            summary.failures.push(format!("{address}: {error}"));
            failed.insert(address);
        }
        Err(error) => {
            summary.deployments_failed += 1;
            summary
                .failures
                .push(format!("a deployment task ended abnormally: {error}"));
            // Which one is unknown: nothing later starts.
            failed.insert(String::new());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{Backend, LocalBackend, State};

    /// The driver takes its cancellation token as data: cancelled before the
    /// apply starts, it starts no deployment, touches no host, and history
    /// records the apply as interrupted.
    #[test]
    fn a_token_cancelled_before_the_apply_starts_nothing_and_records_it_interrupted() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("app/bin")).expect("app dir");
        std::fs::write(dir.path().join("app/bin/start.sh"), "exit 0\n").expect("app file");
        let main = include_str!("../../examples/quickstart/main.hcl");
        let loaded = crate::config::load_sources(
            dir.path(),
            &[(dir.path().join("main.hcl"), main.as_bytes().to_vec())],
            &crate::config::InputSources::default(),
        );
        let config = loaded.config.expect("the quickstart configuration loads");
        let environment = crate::plan::planner::environment_state_name("local");
        let states: crate::plan::States = [(environment.clone(), None)].into();
        let plan = crate::plan::plan(&config, &states, &crate::plan::PlanOptions::default())
            .expect("a plan");
        assert!(plan.has_changes());

        let backend = Arc::new(LocalBackend::new(dir.path().join("state")));
        let recorder = Arc::new(Recorder::new(backend.clone(), State::new(&environment)));
        let options = ApplyOptions {
            parallelism: 4,
            apply_id: "cancelled-apply".into(),
            who: "test".into(),
            artifact_cache: dir.path().join("cache"),
            cancel: crate::signals::Cancel::new(),
        };
        assert!(options.cancel.cancel());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let summary = runtime.block_on(apply(
            Arc::new(config),
            &plan,
            [(environment.clone(), recorder)].into(),
            options,
            Arc::new(Progress::new(false)),
        ));

        assert!(summary.interrupted && !summary.succeeded(), "{summary:?}");
        assert_eq!(summary.not_started, ["deployment.hello"]);
        assert_eq!(
            (summary.hosts_deployed, summary.deployments_succeeded),
            (0, 0)
        );
        assert!(summary.failures.is_empty(), "{:?}", summary.failures);
        assert!(
            !dir.path().join(".slipway/hosts").exists(),
            "no host touched"
        );
        assert!(!dir.path().join("cache").exists(), "nothing packed");
        let state = backend
            .read(&environment)
            .expect("read")
            .expect("the apply's history is recorded");
        assert!(state.deployments.is_empty(), "{:?}", state.deployments);
        let last = state.history.last().expect("a history entry");
        assert_eq!(
            (last.apply_id.as_str(), last.result.as_str()),
            ("cancelled-apply", "interrupted")
        );
    }
}

#[cfg(test)]
mod end_tests {
    use super::{ApplyEnd, ApplySummary};
    use crate::state::HistoryResult;

    /// Each way an apply can end, as counts: the one end it is, and what
    /// history records for it.
    #[test]
    fn a_summary_has_one_end_and_history_records_it() {
        let base = ApplySummary::default;
        let cases: Vec<(&str, ApplySummary, ApplyEnd, HistoryResult)> = vec![
            (
                "nothing failed",
                base(),
                ApplyEnd::Succeeded,
                HistoryResult::Succeeded,
            ),
            (
                "stopped at an approval",
                ApplySummary {
                    waiting: vec!["d: waits".into()],
                    ..base()
                },
                ApplyEnd::WaitingApproval,
                HistoryResult::WaitingApproval,
            ),
            (
                "the one failure paused",
                ApplySummary {
                    deployments_failed: 1,
                    paused: 1,
                    ..base()
                },
                ApplyEnd::Paused,
                HistoryResult::Paused,
            ),
            (
                "one paused, one aborted",
                ApplySummary {
                    deployments_failed: 2,
                    paused: 1,
                    ..base()
                },
                ApplyEnd::Failed,
                HistoryResult::Failed,
            ),
            (
                "hosts put back",
                ApplySummary {
                    deployments_failed: 1,
                    hosts_rolled_back: 3,
                    ..base()
                },
                ApplyEnd::RolledBack,
                HistoryResult::RolledBack,
            ),
            (
                "a service put back, another waiting",
                ApplySummary {
                    deployments_failed: 1,
                    deployments_rolled_back: 1,
                    waiting: vec!["d: waits".into()],
                    ..base()
                },
                ApplyEnd::RolledBack,
                HistoryResult::RolledBack,
            ),
            (
                "a failure outside any deployment",
                ApplySummary {
                    failures: vec!["autoscaling not restored".into()],
                    ..base()
                },
                ApplyEnd::Failed,
                HistoryResult::Failed,
            ),
            (
                "interrupted after a failure",
                ApplySummary {
                    deployments_failed: 1,
                    interrupted: true,
                    ..base()
                },
                ApplyEnd::Interrupted,
                HistoryResult::Interrupted,
            ),
        ];
        for (case, summary, end, recorded) in cases {
            assert_eq!(summary.end(), end, "{case}");
            assert_eq!(HistoryResult::from(summary.end()), recorded, "{case}");
            assert_eq!(
                end.is_success(),
                summary.succeeded(),
                "{case}: success is the summary's"
            );
        }
    }
}
