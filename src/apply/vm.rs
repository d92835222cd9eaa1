//! Applying one VM deployment: its steps (batches of hosts) in order, the hosts
//! of a step in parallel, each host through the phases of
//! `docs/language.md` §11, state recorded after every host, and rollback of
//! every host this apply touched when a step fails and the rollout says so.
//!
//! Each host update and rollback is a journal entry (started, then finished).
//! A host whose update a killed apply started and never finished is first
//! re-checked: when its release marker names that apply and this version, the
//! update had finished and is only recorded; otherwise it runs again. An
//! interrupt stops the rollout between two steps, never inside one.

use std::collections::BTreeMap;
use std::time::Duration;

use super::alb::TargetGroup;
use super::events::{HostEvent, HostsEnd, RolloutEvent};
use super::host_output::HostOutput;
use super::on_failure::{self, AfterFailure};
use super::recorder::{HostChange, StepRecord};
use super::{gates, ApplyOptions, DeploymentOutcome, Progress, Recorder};
use crate::artifact::{self, PreparedArtifact};
use crate::config::{
    BatchSize, Config, Deployment, DurationText, Gate, HookWhen, TransportKind, VmHosts, VmSpec,
};
use crate::plan::planner::{desired_config_files, desired_systemd_unit};
use crate::plan::render::systemd_unit_text;
use crate::plan::{DeploymentChange, ScheduledDeployment, Step as ScheduledStep, StepKind};
use crate::state::{
    DeploymentStatus, HostStatus, JournalAction, JournalEntry, PreviousRelease, StepOutcome,
    StepResult,
};
use crate::transport::local::LocalTransport;
use crate::transport::ssh::{SshOptions, SshTransport};
use crate::transport::{CommandOutput, Transport, TransportError};
use crate::vm::config_snapshot;
use crate::vm::steps::{self, HostContext, Phase, ReleaseMarker, RemoteStep, RollbackTarget};

/// How long one remote step may take before the host counts as failed.
const STEP_TIMEOUT: Duration = Duration::from_secs(600);

/// Where the local transport keeps its hosts when `root` is not set.
pub const DEFAULT_LOCAL_ROOT: &str = ".slipway/hosts";

/// Why a host failed: the phase and what the host said.
#[derive(Debug, Clone)]
struct HostFailure {
    host: String,
    step: String,
    message: String,
    /// The failure may have changed what the host serves (it came at or
    /// after the stop of the running release); `false`: the host still
    /// serves what it served before the update began.
    changed: bool,
}

impl HostFailure {
    /// The same failure, known to have left what the host serves unchanged.
    fn unchanged(self) -> HostFailure {
        HostFailure {
            changed: false,
            ..self
        }
    }
}

impl HostFailure {
    /// The failure as the event progress reports.
    fn event(&self) -> HostEvent {
        HostEvent::HostFailed {
            host: self.host.clone(),
            phase: self.step.clone(),
            message: self.message.clone(),
        }
    }
}

impl std::fmt::Display for HostFailure {
    /// As its event reads: `HOST: PHASE failed: MESSAGE`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.event().fmt(f)
    }
}

/// How one host of a batch went: not reached, or its update's result (with
/// the connection it opened for it, to keep for the rest of the apply).
enum BatchHost {
    Unreachable(TransportError),
    Ran(Option<Transport>, Result<(), HostFailure>),
}

/// Everything a host update needs, shared by the hosts of a deployment.
struct Job<'a> {
    config: &'a Config,
    deployment: &'a Deployment,
    vm: &'a VmSpec,
    hosts: &'a VmHosts,
    artifact: Option<&'a PreparedArtifact>,
    unit_text: Option<String>,
    options: &'a ApplyOptions,
    progress: &'a Progress,
    recorder: &'a Recorder,
    /// The target group hosts leave before they stop and rejoin after checks.
    target_group: Option<TargetGroup>,
    /// The configuration half of the release pair this deployment installs.
    config_digest: String,
    /// What of a host's output messages may show (decided before this apply
    /// records anything).
    host_output: HostOutput,
    /// The certificates of `slipway { ca_file }`, which a health check's GET
    /// on a host trusts besides the host's own (validation read them
    /// already).
    ca_pem: Option<String>,
}

impl<'a> Job<'a> {
    async fn new(
        config: &'a Config,
        deployment: &'a Deployment,
        (vm, hosts): (&'a VmSpec, &'a VmHosts),
        artifact: Option<&'a PreparedArtifact>,
        options: &'a ApplyOptions,
        progress: &'a Progress,
        recorder: &'a Recorder,
    ) -> Job<'a> {
        Job {
            config,
            deployment,
            vm,
            hosts,
            artifact,
            unit_text: vm
                .systemd_unit
                .as_ref()
                .map(|unit| systemd_unit_text(vm, unit, &unit.name)),
            options,
            progress,
            recorder,
            target_group: match &hosts.load_balancer {
                Some(settings) => Some(TargetGroup::connect(settings).await),
                None => None,
            },
            config_digest: crate::state::model::config_digest(
                &desired_config_files(config, deployment),
                desired_systemd_unit(config, deployment).as_deref(),
            ),
            host_output: HostOutput::for_deployment(
                config,
                recorder.deployment(&deployment.address).as_ref(),
            ),
            ca_pem: config
                .ca_file
                .as_ref()
                .and_then(|file| std::fs::read_to_string(file).ok()),
        }
    }

    /// The service's health checks on a host, each with all its attempts.
    fn health_checks(&self, ctx: &HostContext) -> Vec<RemoteStep> {
        self.vm
            .health
            .iter()
            .map(|check| steps::health_check(check, self.vm, ctx, self.ca_pem.as_deref()))
            .collect()
    }

    /// `failure` with the attempts a failed health check made added to its
    /// message.
    fn with_attempts(&self, mut failure: HostFailure) -> HostFailure {
        let check = failure
            .step
            .strip_prefix("health.")
            .and_then(|name| self.vm.health.iter().find(|c| c.name == name));
        if let Some(check) = check {
            let attempts = steps::health_attempts(check);
            failure.message = format!("{} after {attempts} attempt(s)", failure.message);
        }
        failure
    }
}

/// Why a VM deployment, its rejection or `slipway rollback` of it could not
/// go on. The message is what apply prints and records.
#[derive(Debug, thiserror::Error)]
pub enum VmApplyError {
    /// The deployment is not in the configuration.
    #[error("{address} is not in the configuration")]
    UnknownDeployment { address: String },
    /// The configuration lacks what a VM deployment needs (`missing`: the
    /// environment, the service's vm block, the environment's vm_hosts).
    #[error("{missing}")]
    NotConfigured { missing: &'static str },
    /// `reject` of a deployment state does not know.
    #[error("{address} is not in state")]
    NotInState { address: String },
    /// The SSH options could not be made (a path, a host, a config value).
    #[error(transparent)]
    SshSetup(#[from] crate::transport::ssh::SshSetupError),
    /// The artifact could not be prepared; `masked`: the reason with every
    /// sensitive value masked.
    #[error("{masked}")]
    Artifact { masked: String },
    /// State could not be read or written.
    #[error(transparent)]
    State(#[from] crate::state::StateError),
    /// `slipway rollback` changed nothing: some hosts cannot go back to
    /// `version` (`refusals`: each host's reason).
    #[error("nothing was changed: not every host can go back to {version}:\n  {}", refusals.join("\n  "))]
    RollbackRefused {
        version: String,
        refusals: Vec<String>,
    },
}

/// Why a verification gate of a VM step did not pass.
#[derive(Debug, thiserror::Error)]
enum VmGateError {
    /// A gate judged on the runner failed or could not be judged.
    #[error(transparent)]
    OnRunner(#[from] gates::GateError),
    /// A host could not be reached to run a command gate.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// A command gate failed on a host (`shown`: what of its output may be
    /// shown).
    #[error("gate \"{gate}\" failed on {host}: {shown}")]
    FailedOnHost {
        gate: String,
        host: String,
        shown: String,
    },
}

/// The deployment at `address`, its service's `vm` block and its environment's hosts.
fn vm_parts<'a>(
    config: &'a Config,
    address: &str,
) -> Result<(&'a Deployment, &'a VmSpec, &'a VmHosts), VmApplyError> {
    let missing = |missing| VmApplyError::NotConfigured { missing };
    let deployment =
        config
            .deployments
            .get(address)
            .ok_or_else(|| VmApplyError::UnknownDeployment {
                address: address.to_string(),
            })?;
    let environment = config
        .environment_of(deployment)
        .ok_or(missing("the environment is missing"))?;
    let vm = deployment
        .service
        .vm
        .as_ref()
        .ok_or(missing("the service has no vm block"))?;
    let hosts = environment
        .vm_hosts
        .as_ref()
        .ok_or(missing("the environment has no vm_hosts"))?;
    Ok((deployment, vm, hosts))
}

/// The job of a command that moves hosts between releases they keep
/// (`reject`, `rollback`): no artifact to send; with the SSH options when
/// the hosts are reached over SSH.
async fn job_without_artifact<'a>(
    config: &'a Config,
    address: &str,
    options: &'a ApplyOptions,
    progress: &'a Progress,
    recorder: &'a Recorder,
) -> Result<(Job<'a>, Option<SshOptions>), VmApplyError> {
    let (deployment, vm, hosts) = vm_parts(config, address)?;
    let ssh_options = if hosts.transport == TransportKind::Ssh {
        Some(SshOptions::from_config(hosts, &config.root)?)
    } else {
        None
    };
    let job = Job::new(
        config,
        deployment,
        (vm, hosts),
        None,
        options,
        progress,
        recorder,
    )
    .await;
    Ok((job, ssh_options))
}

/// `slipway reject`: every host a rollout stopped at an approval has moved
/// to its version goes back to the release it served before (a host that had
/// none stops the service), and state records it.
pub async fn reject_deployment(
    config: &Config,
    address: &str,
    recorder: &Recorder,
    options: &ApplyOptions,
    progress: &Progress,
) -> Result<DeploymentOutcome, VmApplyError> {
    let saved = recorder
        .deployment(address)
        .ok_or_else(|| VmApplyError::NotInState {
            address: address.to_string(),
        })?;
    let (job, ssh_options) =
        job_without_artifact(config, address, options, progress, recorder).await?;
    let hosts = job.hosts;
    let starts = tokio::sync::Semaphore::new(8);
    let mut outcome = DeploymentOutcome::default();
    progress.report(
        address,
        HostEvent::Rejected {
            version: saved.version.clone(),
        },
    );
    let mut transports = BTreeMap::new();
    let status = roll_back_rollout(
        &job,
        &mut transports,
        ssh_options.as_ref(),
        &starts,
        0,
        &mut outcome,
    )
    .await;
    for transport in transports.into_values() {
        transport.close().await;
    }
    recorder.finish_deployment(address, status, false, &hosts.hosts)?;
    progress.done(address);
    Ok(outcome)
}

/// Run one VM deployment's rollout as the plan scheduled it: host batches,
/// with bake, gates and approvals after each, and what `on_failure` says
/// when a step fails.
pub async fn apply_deployment(
    config: &Config,
    change: &DeploymentChange,
    scheduled: &ScheduledDeployment,
    recorder: &Recorder,
    options: &ApplyOptions,
    progress: &Progress,
) -> Result<DeploymentOutcome, VmApplyError> {
    let (deployment, vm, hosts) = vm_parts(config, &change.address)?;
    let address = deployment.address.as_str();
    let artifact = prepare_artifact(config, change, deployment, options, progress).await?;
    let job = Job::new(
        config,
        deployment,
        (vm, hosts),
        artifact.as_ref(),
        options,
        progress,
        recorder,
    )
    .await;

    let baseline_version = gates::baseline_version(recorder, address, &deployment.service.version);
    recorder.start_deployment(config, deployment, &options.apply_id)?;
    progress.report(
        address,
        RolloutEvent::Started {
            action: change.action,
            version: deployment.service.version.clone(),
            strategy: scheduled.strategy,
        },
    );

    let mut reach = HostReach {
        transports: BTreeMap::new(),
        starts: tokio::sync::Semaphore::new(8),
        ssh_options: if hosts.transport == TransportKind::Ssh {
            Some(SshOptions::from_config(hosts, &config.root)?)
        } else {
            None
        },
    };
    let mut outcome = DeploymentOutcome::default();
    // A resumed rollout keeps its step numbers: the last one is the total.
    let total_steps = scheduled.steps.last().map_or(0, |s| s.index);
    let mut failed_step = None;
    let mut waiting = false;
    // A killed apply of this version was rolling back: finish its rollback
    // rather than going on with the rollout.
    let killed_rollback = killed_rollback_step(recorder, address, &deployment.service.version);
    if let Some((step, _)) = &killed_rollback {
        progress.report(
            address,
            RolloutEvent::FinishingInterruptedRollback {
                apply_id: None,
                step: *step,
            },
        );
        outcome.failures.push(format!(
            "{address}: step {step} failed in an interrupted apply that was rolling back; this apply finished the rollback"
        ));
        failed_step = Some(*step);
    }

    for step in scheduled.steps.iter().filter(|_| killed_rollback.is_none()) {
        let StepKind::HostBatch { hosts: batch } = &step.kind else {
            continue;
        };
        if options.cancel.is_cancelled() {
            outcome.interrupted = true;
            break;
        }
        progress.status(
            address,
            &format!("step {}/{total_steps}: {}", step.index, batch.join(", ")),
        );
        let failures_in_step = run_batch(&job, &mut reach, step.index, batch, &mut outcome).await;
        let rollout = config.rollout_of(deployment);
        let allowed = allowed_failures(rollout.and_then(|r| r.max_failures.as_ref()), batch.len());
        if failures_in_step > allowed {
            failed_step = Some(step.index);
            break;
        }
        if !outcome.failures.is_empty() && failures_in_step > 0 {
            progress.report(
                address,
                HostEvent::FailuresWithinLimit {
                    step: step.index,
                    failed: failures_in_step,
                    allowed,
                },
            );
        }
        let checks = BatchChecks {
            baseline_version: baseline_version.as_deref(),
            total_steps,
        };
        match finish_batch(&job, &reach, step, batch, checks, &mut outcome).await? {
            BatchEnd::Continue => {}
            BatchEnd::Failed => {
                failed_step = Some(step.index);
                break;
            }
            BatchEnd::WaitingApproval => {
                waiting = true;
                break;
            }
        }
    }

    let result = match failed_step {
        Some(step) => after_failed_step(&job, &mut reach, scheduled, step, &mut outcome).await,
        None if waiting || outcome.interrupted || !outcome.failures.is_empty() => {
            DeploymentStatus::Partial
        }
        None => DeploymentStatus::Deployed,
    };
    let verified = result == DeploymentStatus::Deployed;
    recorder.finish_deployment(address, result.clone(), verified, &hosts.hosts)?;
    for transport in reach.transports.into_values() {
        transport.close().await;
    }
    progress.done(address);
    progress.report(
        address,
        HostEvent::HostsEnded {
            ended: deployment_ended(&result, &outcome, waiting, &deployment.service.version),
        },
    );
    Ok(outcome)
}

/// The deployment's artifact, fetched (or found in the cache) and checked
/// against the digest the plan pinned; `None` for a service without one.
async fn prepare_artifact(
    config: &Config,
    change: &DeploymentChange,
    deployment: &Deployment,
    options: &ApplyOptions,
    progress: &Progress,
) -> Result<Option<PreparedArtifact>, VmApplyError> {
    let Some(spec) = &deployment.service.artifact else {
        return Ok(None);
    };
    progress.status(&deployment.address, "preparing the artifact");
    let expected = change
        .artifact
        .as_ref()
        .map(|pin| pin.sha256.clone())
        .or_else(|| spec.sha256.clone());
    artifact::prepare(config, spec, expected.as_deref(), &options.artifact_cache)
        .await
        .map(Some)
        .map_err(|e| VmApplyError::Artifact {
            masked: config.mask(&e.to_string()),
        })
}

/// How a rollout reaches its hosts: the connections it opened (kept for
/// later steps and a rollback), at most 8 logins starting at once, and the
/// SSH options (none with the local transport).
struct HostReach {
    transports: BTreeMap<String, Transport>,
    starts: tokio::sync::Semaphore,
    ssh_options: Option<SshOptions>,
}

/// Update the hosts of one batch (step `step`) at once, each as soon as its
/// own connection is open, and count into `outcome`. Returns how many hosts
/// of the batch failed (an unreachable one included).
async fn run_batch(
    job: &Job<'_>,
    reach: &mut HostReach,
    step: usize,
    batch: &[String],
    outcome: &mut DeploymentOutcome,
) -> usize {
    let address = job.deployment.address.as_str();
    // Each host of the batch connects (at most `starts` connections start
    // at once) and goes on with its update as soon as its own connection is
    // open: no host waits for the batch's slowest login.
    let connected = &reach.transports;
    let (ssh_options, starts) = (reach.ssh_options.as_ref(), &reach.starts);
    let results = super::join_all(
        batch
            .iter()
            .map(|host| async move {
                match connected.get(host) {
                    Some(transport) => {
                        BatchHost::Ran(None, update_host(job, host, step, transport).await)
                    }
                    None => match connect(job, host, ssh_options, starts).await {
                        Ok(transport) => {
                            let result = update_host(job, host, step, &transport).await;
                            BatchHost::Ran(Some(transport), result)
                        }
                        Err(message) => BatchHost::Unreachable(message),
                    },
                }
            })
            .collect(),
    )
    .await;
    let mut failures_in_step = 0;
    for (host, result) in batch.iter().zip(results) {
        let result = match result {
            BatchHost::Ran(transport, result) => {
                if let Some(transport) = transport {
                    reach.transports.insert(host.clone(), transport);
                }
                result
            }
            BatchHost::Unreachable(message) => {
                // Not reached, so not moved: its record keeps its pair.
                let written = job
                    .recorder
                    .set_host(address, host, None, HostChange::Unreachable);
                let failure = HostFailure {
                    host: host.clone(),
                    step: "connect".into(),
                    message: message.to_string(),
                    changed: false,
                };
                let line = with_record_failure(format!("{address}: {failure}"), written);
                outcome.failures.push(line);
                outcome.hosts_failed += 1;
                failures_in_step += 1;
                continue;
            }
        };
        match result {
            Ok(()) => outcome.hosts_deployed += 1,
            Err(failure) => {
                job.progress.report(address, failure.event());
                outcome.failures.push(format!("{address}: {failure}"));
                outcome.hosts_failed += 1;
                failures_in_step += 1;
            }
        }
    }
    failures_in_step
}

/// What [`finish_batch`] needs besides the batch: the previous version's
/// metrics label for gates with a baseline, and the rollout's last step
/// number for progress.
#[derive(Clone, Copy)]
struct BatchChecks<'a> {
    baseline_version: Option<&'a str>,
    total_steps: usize,
}

/// How a batch that updated its hosts within `max_failures` ends.
enum BatchEnd {
    Continue,
    /// A verification gate failed: the step failed.
    Failed,
    /// The rollout stops at an approval after this step.
    WaitingApproval,
}

/// After a batch updated its hosts: its bake, its verification gates, and
/// the approval that may follow the step.
async fn finish_batch(
    job: &Job<'_>,
    reach: &HostReach,
    step: &ScheduledStep,
    batch: &[String],
    checks: BatchChecks<'_>,
    outcome: &mut DeploymentOutcome,
) -> Result<BatchEnd, VmApplyError> {
    let (config, deployment, progress) = (job.config, job.deployment, job.progress);
    let address = deployment.address.as_str();
    let total_steps = checks.total_steps;
    if let Some(bake) = step.bake.as_ref().map(DurationText::get) {
        if !bake.is_zero() {
            let what = format!("step {}/{total_steps}: bake", step.index);
            progress.wait(address, &what, bake).await;
        }
    }
    if let Some(rollout) = config.rollout_of(deployment) {
        let gate_ctx = gates::GateContext {
            config,
            deployment,
            baseline_version: checks.baseline_version,
            step: step.index,
            hosts: batch,
            has_hosts: true,
            recorder: job.recorder,
            progress,
        };
        if let Err(message) = judge_gates(job, &rollout.verify, &gate_ctx, &reach.transports).await
        {
            progress.report(
                address,
                HostEvent::StepFailed {
                    step: step.index,
                    message: message.to_string(),
                },
            );
            outcome
                .failures
                .push(format!("{address}: step {}: {message}", step.index));
            return Ok(BatchEnd::Failed);
        }
    }
    progress.report(
        address,
        HostEvent::StepDone {
            step: step.index,
            total: total_steps,
            hosts: batch.to_vec(),
        },
    );
    if let Some(waiting_for) = super::wait_for_approval(
        config,
        deployment,
        step,
        job.recorder,
        progress,
        &job.options.apply_id,
    )? {
        outcome.waiting_approval = Some(waiting_for);
        return Ok(BatchEnd::WaitingApproval);
    }
    Ok(BatchEnd::Continue)
}

/// Carry out what `on_failure` makes of a rollout whose step `step` failed
/// ([`on_failure::after_failed_step`]): the status the deployment ends with.
async fn after_failed_step(
    job: &Job<'_>,
    reach: &mut HostReach,
    scheduled: &ScheduledDeployment,
    step: usize,
    outcome: &mut DeploymentOutcome,
) -> DeploymentStatus {
    match on_failure::after_failed_step(scheduled.on_failure) {
        AfterFailure::RollBack => {
            let status = roll_back_rollout(
                job,
                &mut reach.transports,
                reach.ssh_options.as_ref(),
                &reach.starts,
                step,
                outcome,
            )
            .await;
            // Every host the rollout moved is back or named as not
            // rolled back: none stays counted as deployed.
            outcome.hosts_deployed = 0;
            status
        }
        AfterFailure::Stop { status, paused } => {
            if paused {
                job.progress
                    .report(&job.deployment.address, HostEvent::Paused);
                outcome.paused = true;
            }
            status
        }
    }
}

/// How a deployment's rollout to `version` ended.
fn deployment_ended(
    result: &DeploymentStatus,
    outcome: &DeploymentOutcome,
    waiting: bool,
    version: &str,
) -> HostsEnd {
    let version = version.to_string();
    let hosts = outcome.hosts_deployed;
    match result {
        DeploymentStatus::Deployed => HostsEnd::Deployed { version, hosts },
        DeploymentStatus::RolledBack => HostsEnd::RolledBack {
            hosts: outcome.hosts_rolled_back,
        },
        DeploymentStatus::Partial if outcome.interrupted => {
            HostsEnd::Interrupted { version, hosts }
        }
        DeploymentStatus::Partial if waiting => HostsEnd::WaitingForApproval { version, hosts },
        DeploymentStatus::Partial => HostsEnd::Partial {
            version,
            hosts,
            failed: outcome.hosts_failed,
        },
        _ if outcome.hosts_not_rolled_back > 0 => HostsEnd::NotRolledBack {
            rolled_back: outcome.hosts_rolled_back,
            not_rolled_back: outcome.hosts_not_rolled_back,
        },
        _ => HostsEnd::Failed {
            failed: outcome.hosts_failed,
        },
    }
}

fn allowed_failures(max: Option<&BatchSize>, batch: usize) -> usize {
    match max {
        None => 0,
        Some(BatchSize::Count(n)) => *n as usize,
        Some(BatchSize::Share(share)) => share.of(batch),
    }
}

fn local_transport(job: &Job, host: &str) -> Result<LocalTransport, TransportError> {
    let root = job.hosts.root.as_deref().unwrap_or(DEFAULT_LOCAL_ROOT);
    LocalTransport::confined(host, &job.config.root, root)
}

async fn connect(
    job: &Job<'_>,
    host: &str,
    ssh: Option<&SshOptions>,
    starts: &tokio::sync::Semaphore,
) -> Result<Transport, TransportError> {
    match ssh {
        Some(options) => SshTransport::connect(host, options, starts)
            .await
            .map(Transport::Ssh),
        None => local_transport(job, host).map(Transport::Local),
    }
}

fn context(job: &Job, host: &str, transport: &Transport) -> HostContext {
    HostContext {
        host: host.to_string(),
        host_index: job.hosts.hosts.iter().position(|h| h == host).unwrap_or(0),
        host_root: transport.root(),
        environment: job
            .deployment
            .environment
            .trim_start_matches("environment.")
            .to_string(),
        deployment: job.deployment.name.clone(),
        version: job.deployment.service.version.clone(),
        apply_id: job.options.apply_id.clone(),
        sudo: job.hosts.sudo,
    }
}

/// The steps `build` makes for the host, run in one session ([`run_all`]).
/// Returns the context they ran with and what they printed.
async fn run_for_host(
    job: &Job<'_>,
    host: &str,
    transport: &Transport,
    build: impl Fn(&HostContext) -> Vec<RemoteStep>,
) -> Result<(HostContext, String), HostFailure> {
    let ctx = context(job, host, transport);
    let stdout = run_all(job, transport, &build(&ctx)).await?;
    Ok((ctx, stdout))
}

/// Run `steps` in order in one session ([`steps::chain`]), within the sum of
/// their time limits; a failure names the step that failed. Returns what the
/// session printed on standard output.
async fn run_all(
    job: &Job<'_>,
    transport: &Transport,
    steps: &[RemoteStep],
) -> Result<String, HostFailure> {
    let Some(chained) = steps::chain(steps) else {
        return Ok(String::new());
    };
    let limit = steps
        .iter()
        .map(|step| step.time_limit.unwrap_or(STEP_TIMEOUT))
        .sum();
    run_within(job, transport, &chained, limit)
        .await
        .map(|output| output.stdout)
}

async fn run_within(
    job: &Job<'_>,
    transport: &Transport,
    step: &RemoteStep,
    limit: Duration,
) -> Result<CommandOutput, HostFailure> {
    let failure = |step: &str, message: String| HostFailure {
        host: transport.host().to_string(),
        step: step.to_string(),
        message,
        changed: true,
    };
    let mut output = transport.run(&step.script, limit).await.map_err(|e| {
        // A chain whose connection went names the step that was running.
        let running = match &e {
            TransportError::Run { stderr, .. } => steps::started_step(stderr),
            _ => None,
        };
        failure(
            running.as_deref().unwrap_or(&step.name),
            job.config.mask(&e.to_string()),
        )
    })?;
    if output.success() {
        return Ok(output);
    }
    let mut failed = step.name.clone();
    if let Some((name, rest)) = steps::failed_step(&output.stderr) {
        failed = name;
        output.stderr = rest;
    }
    // A health check that ran out of attempts says how many it made (not
    // one whose connection went: that one did not make them all).
    Err(job.with_attempts(failure(
        &failed,
        job.host_output.failure(job.config, &output),
    )))
}

async fn update_host(
    job: &Job<'_>,
    host: &str,
    step: usize,
    transport: &Transport,
) -> Result<(), HostFailure> {
    let address = &job.deployment.address;
    let version = &job.deployment.service.version;
    let sha = job.artifact.map(|a| a.sha256.clone());
    let state_error = |e: crate::state::StateError| HostFailure {
        host: host.to_string(),
        step: "record state".into(),
        message: e.to_string(),
        changed: true,
    };
    let record = |action| StepRecord {
        apply_id: &job.options.apply_id,
        deployment: address,
        step,
        host: Some(host),
        action,
        version,
    };
    // What killed applies left open on the host is settled first: at most
    // one step per host is ever uncertain.
    let settled = settle_killed_steps(job, host, &record(JournalAction::Recheck), transport)
        .await
        .map_err(state_error)?;
    if let Some(killed_apply) = settled {
        job.progress.report(
            address,
            HostEvent::HostAlreadyUpdated {
                host: host.to_string(),
                version: version.to_string(),
                apply_id: killed_apply.to_string(),
            },
        );
        return Ok(());
    }
    // What the host serves before this update, as far as state knows.
    let serving = job
        .recorder
        .host(address, host)
        .filter(|r| {
            matches!(
                r.status,
                HostStatus::Deployed | HostStatus::RolledBack | HostStatus::Failed
            )
        })
        .map(|r| r.pair());
    let seq = job
        .recorder
        .begin_host_step(&record(JournalAction::Deploy), sha.as_deref())
        .map_err(state_error)?;
    let result = update_host_steps(job, host, transport).await;
    let (change, outcome) = match &result {
        Ok(()) => (
            HostChange::Moved(HostStatus::Deployed),
            StepResult::from(StepOutcome::Deployed),
        ),
        // It still serves what it did: the record says so.
        Err(failure) if !failure.changed => (
            HostChange::FailedUnchanged(serving),
            StepResult::noted(StepOutcome::Failed, "unchanged"),
        ),
        Err(_) => (
            HostChange::Moved(HostStatus::Failed),
            StepResult::from(StepOutcome::Failed),
        ),
    };
    job.recorder
        .end_host_step(seq, outcome, (address, host), sha.as_deref(), change)
        .map_err(state_error)?;
    if result.is_ok() {
        job.progress.report(
            address,
            HostEvent::HostUpdated {
                host: host.to_string(),
                version: version.to_string(),
            },
        );
    }
    result
}

/// The failed step after which a killed apply (no history entry) was rolling
/// `address` back from `version`, if it was.
fn killed_rollback_step(
    recorder: &Recorder,
    address: &str,
    version: &str,
) -> Option<(usize, String)> {
    recorder.read(|state| {
        let killed = state.interrupted_applies();
        state
            .journal
            .iter()
            .filter(|e| e.deployment == address && e.action == JournalAction::Rollback)
            .filter(|e| killed.contains(&e.apply_id))
            .find(|e| {
                state.journal.iter().any(|d| {
                    d.apply_id == e.apply_id
                        && d.deployment == address
                        && d.action == JournalAction::Deploy
                        && d.version == version
                })
            })
            .map(|e| (e.step, e.apply_id.clone()))
    })
}

/// Settle the steps killed applies started on `host` and never finished,
/// before this apply journals a step of its own there (`recheck` is that
/// step's record, with the action `recheck`), so that a host never has more
/// than one uncertain step:
///
/// - an update is re-checked on the host ([`finished_by`]) and closed with
///   what its release marker says; a finished one records the host deployed
///   on the pair that update installed (it is what the host serves, and what
///   a new rollout keeps as the pair to go back to);
/// - any other step (a rollback: its marker is rewritten before its service
///   starts, so the host cannot tell whether it finished) is closed as
///   superseded: the step this apply runs next decides what the host serves.
///
/// Returns the killed apply whose update had put the host on exactly the
/// pair this apply deploys (version, artifact, config): nothing to do there
/// but record it. `Err`: state could not be written.
async fn settle_killed_steps(
    job: &Job<'_>,
    host: &str,
    recheck: &StepRecord<'_>,
    transport: &Transport,
) -> Result<Option<String>, crate::state::StateError> {
    let address = job.deployment.address.as_str();
    let this_apply = job.options.apply_id.as_str();
    let mut on_this_pair = None;
    for open in job.recorder.open_host_steps(address, host, this_apply) {
        if open.action != JournalAction::Deploy {
            let verdict = StepResult::noted(
                StepOutcome::Superseded,
                format!("not re-checked, {this_apply} runs its own step on the host"),
            );
            job.recorder
                .update(|state| state.finish_journal_entry(open.seq, verdict))?;
            job.progress.report(
                address,
                HostEvent::HostTakenOver {
                    host: host.to_string(),
                    action: open.action.to_string(),
                    version: open.version.clone(),
                    apply_id: open.apply_id.clone(),
                },
            );
            continue;
        }
        // The artifact the killed update installed: state recorded it with
        // the host's move.
        let record = job.recorder.host(address, host);
        let installed = record.as_ref().filter(|r| r.version == open.version);
        let sha256 = installed.and_then(|r| r.artifact_sha256.clone());
        let done = finished_by(job, transport, &open, sha256.as_deref()).await;
        let this_pair = done
            && installed.is_some_and(|r| {
                r.version == job.deployment.service.version
                    && r.config_digest.as_deref() == Some(job.config_digest.as_str())
                    && r.artifact_sha256.as_deref() == job.artifact.map(|a| a.sha256.as_str())
            });
        let (result, verdict) = match (done, this_pair) {
            (true, true) => (StepOutcome::AlreadyDeployed, StepOutcome::Deployed),
            (true, false) => (StepOutcome::Done, StepOutcome::Deployed),
            (false, _) => (StepOutcome::NotDone, StepOutcome::NotDone),
        };
        let verdict = StepResult::noted(
            verdict,
            format!("release marker; re-checked by {this_apply}"),
        );
        job.recorder
            .record_recheck(recheck, result.into(), (open.seq, verdict), |state| {
                if !done {
                    return;
                }
                if let Some(record) = state
                    .deployments
                    .get_mut(address)
                    .and_then(|d| d.hosts.get_mut(host))
                    .filter(|r| r.version == open.version)
                    .filter(|r| matches!(r.status, HostStatus::InProgress | HostStatus::Failed))
                {
                    record.status = HostStatus::Deployed;
                    record.updated_at = crate::state::lock::now_rfc3339();
                }
            })?;
        if this_pair {
            on_this_pair = Some(open.apply_id.clone());
        } else {
            job.progress.report(
                address,
                HostEvent::HostRechecked {
                    host: host.to_string(),
                    version: open.version.clone(),
                    apply_id: open.apply_id.clone(),
                    finished: done,
                },
            );
        }
    }
    Ok(on_this_pair)
}

/// Whether the update `uncertain` (started by a killed apply) finished on the
/// host: its release marker, written as an update's last step, names that
/// apply, its version and (when given) its artifact.
async fn finished_by(
    job: &Job<'_>,
    transport: &Transport,
    uncertain: &JournalEntry,
    sha256: Option<&str>,
) -> bool {
    let ctx = context(job, transport.host(), transport);
    let step = steps::read_release_marker(job.vm, &ctx);
    match transport.run(&step.script, STEP_TIMEOUT).await {
        Ok(output) if output.success() => match ReleaseMarker::parse(&output.stdout) {
            Ok(Some(marker)) => {
                marker.apply_id == uncertain.apply_id
                    && marker.version == uncertain.version
                    && sha256.is_none_or(|sha| marker.sha256 == sha)
            }
            _ => false,
        },
        _ => false,
    }
}

/// The first session of a host update: the connection, the layout,
/// prechecks, `before_stop` hooks, then whether the artifact is on the host
/// or, with `download`, the host's own download of it.
fn host_checks(
    job: &Job<'_>,
    ctx: &HostContext,
    download: Option<&artifact::HostDownload>,
) -> Vec<RemoteStep> {
    let vm = job.vm;
    let mut checks = vec![steps::check_connection(ctx), steps::check_layout(vm, ctx)];
    checks.extend(steps::prechecks(vm, ctx));
    checks.extend(steps::hooks(vm, ctx, Phase::BeforeStop));
    if let Some(artifact) = job.artifact {
        checks.push(match download {
            Some(download) => {
                steps::pull_artifact(vm, ctx, &artifact.sha256, download, job.ca_pem.as_deref())
            }
            None => steps::artifact_status(vm, ctx, &artifact.sha256),
        });
    }
    checks
}

/// What one host needs to download the artifact itself (`delivery =
/// "pull"`; for s3, a URL presigned now); `None` when the runner sends it.
async fn host_download(
    job: &Job<'_>,
) -> Result<Option<artifact::HostDownload>, artifact::ArtifactError> {
    let (Some(prepared), Some(spec)) = (job.artifact, &job.deployment.service.artifact) else {
        return Ok(None);
    };
    let Some(pull) = &prepared.host_pull else {
        return Ok(None);
    };
    pull.download_for_host(&spec.source).await.map(Some)
}

async fn update_host_steps(
    job: &Job<'_>,
    host: &str,
    transport: &Transport,
) -> Result<(), HostFailure> {
    let ctx = context(job, host, transport);
    let invalid = |message: String| HostFailure {
        host: host.to_string(),
        step: "prepare".into(),
        message,
        changed: false,
    };
    ctx.validate().map_err(|e| invalid(e.to_string()))?;
    let vm = job.vm;
    let progress = |what: &str| {
        job.progress
            .status(&job.deployment.address, &format!("{host}: {what}"))
    };

    // Steps that need nothing from here in between run as one session
    // (run_all). Without a load balancer to deregister from and rejoin, a
    // host update is at most three: the checks (ending with whether the
    // artifact is there), the upload when it is not, and everything from
    // the switch to the release marker.
    if let Some(artifact) = job.artifact {
        steps::check_sha256(&artifact.sha256).map_err(|e| invalid(e.to_string()))?;
    }
    // With `delivery = "pull"` the host downloads the artifact at the end of
    // its checks, while it still serves: no transfer session, and nothing
    // sent from here.
    let download = host_download(job)
        .await
        .map_err(|e| invalid(job.config.mask(&e.to_string())))?;
    progress(if download.is_some() {
        "connecting, checking and downloading the artifact"
    } else {
        "connecting and checking"
    });
    let checks = |ctx: &HostContext| host_checks(job, ctx, download.as_ref());
    // Up to the stop of the running release, a failure leaves what the
    // host serves as it was.
    let (ctx, checked) = run_for_host(job, host, transport, checks)
        .await
        .map_err(HostFailure::unchanged)?;
    if let Some(group) = &job.target_group {
        progress("leaving the load balancer");
        group.deregister(host).await.map_err(|message| {
            load_balancer_failure(host, "load balancer deregister", message.to_string()).unchanged()
        })?;
    }
    let mut switch = steps::hooks(vm, &ctx, Phase::Deregister);
    if let Some(artifact) = job.artifact {
        // A pulled artifact was checked by the download itself, which keeps
        // only the pinned bytes.
        if download.is_none() && !steps::artifact_present(&checked) {
            // Deregister hooks run before the transfer, as they always did.
            run_all(job, transport, &std::mem::take(&mut switch))
                .await
                .map_err(HostFailure::unchanged)?;
            progress("transferring the artifact");
            let remote = steps::artifact_upload_path(vm, &ctx, &artifact.sha256);
            transport
                .upload(&artifact.path, &remote)
                .await
                .map_err(|e| HostFailure {
                    host: host.to_string(),
                    step: "transfer".into(),
                    message: e.to_string(),
                    changed: false,
                })?;
            switch.push(steps::verify_artifact(vm, &ctx, &artifact.sha256));
        }
        switch.push(steps::install_release(vm, &ctx, &artifact.sha256));
    }
    switch.extend(steps::stop(vm, &ctx));
    switch.extend(steps::config_files(vm, &ctx));
    switch.push(config_snapshot::save(
        vm,
        &ctx,
        &config_snapshot::snapshot_name(&ctx.version, Some(&job.config_digest)),
        job.unit_text.as_deref(),
    ));
    if let (Some(unit), Some(text)) = (&vm.systemd_unit, &job.unit_text) {
        switch.push(steps::install_systemd_unit(
            vm,
            unit,
            &ctx,
            text,
            transport.runs_systemd(),
        ));
    }
    switch.push(steps::switch_current(vm, &ctx));
    switch.extend(steps::start(vm, &ctx));
    switch.extend(steps::hooks(vm, &ctx, Phase::AfterStart));
    switch.extend(job.health_checks(&ctx));
    switch.extend(steps::smoke(vm, &ctx));
    let mut finish = steps::hooks(vm, &ctx, Phase::Register);
    if let Some(artifact) = job.artifact {
        let now = crate::state::lock::now_rfc3339();
        finish.push(steps::write_release_marker(
            vm,
            &ctx,
            &artifact.sha256,
            &now,
        ));
    }
    // The release a rollback of this rollout would put back on the host (the
    // pair state says it served before the rollout moved it) stays installed.
    // After a rebuild of its version that directory holds another build:
    // the archive of the one a rollback puts back stays too.
    let rollback_to = job.recorder.read(|state| {
        let saved = state.deployments.get(&job.deployment.address)?;
        let record = saved.hosts.get(host)?;
        record.before_rollout(saved.rollout_id.as_deref())
    });
    finish.push(steps::prune_releases(
        vm,
        &ctx,
        rollback_to.as_ref().map(|pair| pair.version.as_str()),
        rollback_to
            .as_ref()
            .and_then(|pair| pair.artifact_sha256.as_deref()),
    ));
    if job.target_group.is_none() {
        switch.append(&mut finish);
    }
    progress(&format!("switching to {}", ctx.version));
    run_all(job, transport, &switch).await.map_err(|failure| {
        // Running the deregister hooks, verifying and unpacking the release
        // come before the stop.
        if failure.step == "artifact.verify"
            || failure.step == "install"
            || is_deregister_hook(vm, &failure.step)
        {
            failure.unchanged()
        } else {
            failure
        }
    })?;
    if let Some(group) = &job.target_group {
        progress("joining the load balancer");
        group.register(host).await.map_err(|message| {
            load_balancer_failure(host, "load balancer register", message.to_string())
        })?;
        run_all(job, transport, &finish).await?;
    }
    Ok(())
}

/// Whether `step` (`hook.NAME`) names one of the service's deregister hooks.
fn is_deregister_hook(vm: &VmSpec, step: &str) -> bool {
    vm.hooks
        .iter()
        .any(|hook| hook.when == HookWhen::Deregister && step == format!("hook.{}", hook.name))
}

/// The rollout's gates after a step: http from here, commands on the step's
/// hosts or here.
async fn judge_gates(
    job: &Job<'_>,
    verify: &[Gate],
    gate_ctx: &gates::GateContext<'_>,
    transports: &BTreeMap<String, Transport>,
) -> Result<(), VmGateError> {
    for gate in verify {
        if let Some(result) = gates::judge_on_runner(gate, gate_ctx).await {
            result?;
            continue;
        }
        if let Some(command) = &gate.command {
            for host in gate_ctx.hosts {
                let Some(transport) = transports.get(host) else {
                    continue;
                };
                let ctx = context(job, host, transport);
                let step = steps::gate_command(&gate.name, &command.command, job.vm, &ctx);
                let output = transport.run(&step.script, STEP_TIMEOUT).await?;
                if !output.success() {
                    let shown = job.host_output.lines(job.config, &output);
                    let why = format!("fail on {host}: {shown}");
                    gates::record(gate_ctx, gate, false, &why, Vec::new());
                    return Err(VmGateError::FailedOnHost {
                        gate: gate.name.clone(),
                        host: host.clone(),
                        shown,
                    });
                }
            }
            gates::record(gate_ctx, gate, true, "pass", Vec::new());
        }
    }
    Ok(())
}

fn load_balancer_failure(host: &str, step: &str, message: String) -> HostFailure {
    HostFailure {
        host: host.to_string(),
        step: step.to_string(),
        message,
        changed: true,
    }
}

/// Roll back the rollout in flight: every host it moved and has not put back
/// ([`crate::state::DeploymentState::moved_hosts`], whichever apply of the
/// rollout moved it) goes back to the release pair it served before the
/// rollout, one after the other. Hosts no longer in the environment and hosts
/// the rollout did not move are left alone. A host that cannot be reached, or
/// whose rollback fails, is named in `outcome` and recorded as
/// [`HostStatus::RollbackFailed`], never as rolled back. `step` is the failed
/// step (0 for `reject`). Returns the deployment's status: rolled back when
/// every moved host is back, failed otherwise (including when the rollout
/// had moved no host).
async fn roll_back_rollout(
    job: &Job<'_>,
    transports: &mut BTreeMap<String, Transport>,
    ssh_options: Option<&SshOptions>,
    starts: &tokio::sync::Semaphore,
    step: usize,
    outcome: &mut DeploymentOutcome,
) -> DeploymentStatus {
    let address = job.deployment.address.as_str();
    let moved: Vec<(String, Option<PreviousRelease>)> = job
        .recorder
        .deployment(address)
        .map(|saved| {
            saved
                .moved_hosts()
                .into_iter()
                .filter(|(host, _)| job.hosts.hosts.contains(host))
                .map(|(host, previous)| (host.clone(), previous.cloned()))
                .collect()
        })
        .unwrap_or_default();
    let failed = if step == 0 {
        "rejected".to_string()
    } else {
        format!("step {step} failed")
    };
    if moved.is_empty() {
        job.progress.report(
            address,
            HostEvent::NothingToRollBack {
                reason: failed.to_string(),
            },
        );
        // A rejected rollout that moved nothing is rolled back; a failed
        // step with nothing to put back is a failure.
        return if step == 0 {
            DeploymentStatus::RolledBack
        } else {
            DeploymentStatus::Failed
        };
    }
    job.progress.report(
        address,
        HostEvent::RollingBackHosts {
            reason: failed.to_string(),
            hosts: moved.iter().map(|(host, _)| host.clone()).collect(),
        },
    );
    let version = &job.deployment.service.version;
    for (host, target) in &moved {
        if !transports.contains_key(host) {
            match connect(job, host, ssh_options, starts).await {
                Ok(transport) => {
                    transports.insert(host.clone(), transport);
                }
                Err(message) => {
                    let line = format!(
                        "rollback of {host}: cannot connect ({message}); NOT rolled back, it may still run {version}"
                    );
                    let line = with_record_failure(
                        line,
                        job.recorder
                            .set_host(address, host, None, HostChange::RollbackFailed),
                    );
                    not_rolled_back(job.progress, address, host, line, outcome);
                    continue;
                }
            }
        }
        let transport = &transports[host];
        let record = StepRecord {
            apply_id: &job.options.apply_id,
            deployment: address,
            step,
            host: Some(host),
            action: JournalAction::Rollback,
            version: target.as_ref().map_or("(none)", |t| t.version.as_str()),
        };
        // What killed applies left open on the host is settled first.
        let recheck = StepRecord {
            action: JournalAction::Recheck,
            ..record.clone()
        };
        let _ = settle_killed_steps(job, host, &recheck, transport).await;
        let started = job.recorder.begin_host_rollback(&record);
        let result = roll_back_host(
            job,
            host,
            transport,
            target.as_ref(),
            HostChange::RolledBack,
        )
        .await;
        let journal = match &result {
            Ok(_) => StepOutcome::RolledBack,
            Err(_) => StepOutcome::Failed,
        };
        let journaled = started.and_then(|seq| job.recorder.end_journal_step(seq, journal));
        match result {
            Ok(rolled_back) => {
                outcome.hosts_rolled_back += 1;
                if let Some(line) = rolled_back.report(host, journaled) {
                    job.progress.report(
                        address,
                        HostEvent::RollbackProblem {
                            host: host.to_string(),
                            rolled_back: true,
                            message: line.clone(),
                        },
                    );
                    outcome.failures.push(format!("{address}: {line}"));
                }
            }
            Err(failure) => {
                let written = journaled.and_then(|()| {
                    job.recorder
                        .set_host(address, host, None, HostChange::RollbackFailed)
                });
                let line =
                    with_record_failure(format!("rollback of {failure}; NOT rolled back"), written);
                not_rolled_back(job.progress, address, host, line, outcome);
            }
        }
    }
    if outcome.hosts_not_rolled_back == 0 {
        DeploymentStatus::RolledBack
    } else {
        DeploymentStatus::Failed
    }
}

/// Put one host back on `target` (see [`steps::rollback`]) and record it
/// (`record_as`); then check its health and re-register it. `Ok(Some(why))`:
/// back on its pair, but its health check or re-registration failed.
async fn roll_back_host(
    job: &Job<'_>,
    host: &str,
    transport: &Transport,
    target: Option<&PreviousRelease>,
    record_as: HostChange,
) -> Result<RolledBack, HostFailure> {
    let address = &job.deployment.address;
    let mut ctx = context(job, host, transport);
    if let Some(target) = target {
        // The restored release's commands see its own version.
        ctx.version = target.version.clone();
    }
    job.progress
        .status(address, &format!("{host}: rolling back"));
    let steps_target = target.map(|t| RollbackTarget {
        version: t.version.clone(),
        sha256: t.artifact_sha256.clone(),
        config_snapshot: config_snapshot::snapshot_name(&t.version, t.config_digest.as_deref()),
    });
    if steps_target.is_some() {
        ctx.validate().map_err(|e| HostFailure {
            host: host.to_string(),
            step: "rollback".into(),
            message: e.to_string(),
            changed: false,
        })?;
    }
    let now = crate::state::lock::now_rfc3339();
    run_all(
        job,
        transport,
        &steps::rollback(
            job.vm,
            &ctx,
            steps_target.as_ref(),
            &now,
            transport.runs_systemd(),
        ),
    )
    .await?;
    // The host is back: a state that cannot record it is said, and the
    // rollback goes on (putting production back comes first).
    let unrecorded = job.recorder.set_host(address, host, None, record_as).err();
    let Some(target) = target else {
        job.progress.report(
            address,
            HostEvent::HostStopped {
                host: host.to_string(),
            },
        );
        return Ok(RolledBack {
            problem: None,
            unrecorded,
        });
    };
    job.progress.report(
        address,
        HostEvent::HostRolledBack {
            host: host.to_string(),
            version: target.version.clone(),
        },
    );
    let problem = if let Err(failure) = run_all(job, transport, &job.health_checks(&ctx)).await {
        Some(format!(
            "{host}: rolled back to {}, but {} failed: {}",
            target.version, failure.step, failure.message
        ))
    } else if let Some(Err(message)) = match &job.target_group {
        Some(group) => Some(group.register(host).await),
        None => None,
    } {
        Some(format!(
            "{host}: rolled back to {}, but joining the load balancer failed: {message}",
            target.version
        ))
    } else {
        None
    };
    Ok(RolledBack {
        problem,
        unrecorded,
    })
}

/// A host [`roll_back_host`] put back on its release.
struct RolledBack {
    /// Its health check or re-registration failed afterwards.
    problem: Option<String>,
    /// State could not record it.
    unrecorded: Option<crate::state::StateError>,
}

impl RolledBack {
    /// What to report of the host (each problem once), given whether state
    /// recorded the start and end of its rollback (`journaled`).
    fn report(self, host: &str, journaled: Result<(), crate::state::StateError>) -> Option<String> {
        let unrecorded = journaled
            .err()
            .or(self.unrecorded)
            .map(|e| record_failure(host, &e));
        match (self.problem, unrecorded) {
            (Some(problem), Some(unrecorded)) => Some(format!("{problem}; {unrecorded}")),
            (problem, unrecorded) => problem.or(unrecorded),
        }
    }
}

/// A host a rollback could not put back (`line` says why): reported, listed
/// among the failures and counted.
fn not_rolled_back(
    progress: &Progress,
    address: &str,
    host: &str,
    line: String,
    outcome: &mut DeploymentOutcome,
) {
    progress.report(
        address,
        HostEvent::RollbackProblem {
            host: host.to_string(),
            rolled_back: false,
            message: line.clone(),
        },
    );
    outcome.failures.push(format!("{address}: {line}"));
    outcome.hosts_not_rolled_back += 1;
}

/// What to say when state could not record the rollback of `host` (which
/// goes on regardless): state may not tell what the host runs until a
/// refresh reads it.
fn record_failure(host: &str, error: &crate::state::StateError) -> String {
    format!(
        "{host}: state could not record its rollback ({error}): it may not say what the host runs; once state can be written, `slipway plan -refresh` shows the difference and `slipway apply` puts it right"
    )
}

/// `line`, with what `written` says when state could not record it.
fn with_record_failure(line: String, written: Result<(), crate::state::StateError>) -> String {
    match written {
        Ok(()) => line,
        Err(e) => format!("{line} (and state could not record it: {e})"),
    }
}

/// `slipway rollback` of a VM deployment (see [`crate::plan::rollback`]):
/// every host the plan switches is first asked whether it keeps the release
/// and its configuration, and nothing changes unless all of them do (and all
/// can be reached). Then state records the rollback as started and the hosts
/// are switched, `options.parallelism` at a time, each taken out of its
/// target group first, checked and put back; once `options.cancel` is
/// cancelled (an interrupt) no other host starts. Returns what happened to
/// each host; the caller records the end.
pub async fn roll_back_to_release(
    config: &Config,
    plan: &crate::plan::rollback::RollbackPlan,
    recorder: &Recorder,
    options: &ApplyOptions,
    progress: &Progress,
) -> Result<DeploymentOutcome, VmApplyError> {
    let address = plan.address.as_str();
    let (job, ssh_options) =
        job_without_artifact(config, address, options, progress, recorder).await?;
    let vm = job.vm;
    let pair = plan.pair();
    let target = RollbackTarget {
        version: pair.version.clone(),
        sha256: pair.artifact_sha256.clone(),
        config_snapshot: config_snapshot::snapshot_name(
            &pair.version,
            pair.config_digest.as_deref(),
        ),
    };
    let switching: Vec<&str> = plan
        .hosts_to_switch()
        .iter()
        .map(|h| h.host.as_str())
        .collect();
    let starts = tokio::sync::Semaphore::new(8);
    progress.status(
        address,
        &format!(
            "asking {} host(s) whether they keep release {}",
            switching.len(),
            pair.version
        ),
    );
    let connections = super::join_all(
        switching
            .iter()
            .map(|host| connect(&job, host, ssh_options.as_ref(), &starts))
            .collect(),
    )
    .await;
    let mut transports = BTreeMap::new();
    let mut refusals = Vec::new();
    for (host, connection) in switching.iter().zip(connections) {
        match connection {
            Ok(transport) => {
                transports.insert(host.to_string(), transport);
            }
            Err(message) => refusals.push(format!("{host}: cannot connect ({message})")),
        }
    }
    let checks = super::join_all(
        transports
            .iter()
            .map(|(host, transport)| {
                let job = &job;
                let target = &target;
                let version = pair.version.clone();
                async move {
                    let mut ctx = context(job, host, transport);
                    ctx.version = version.clone();
                    ctx.validate().map_err(|error| format!("{host}: {error}"))?;
                    let check = |ctx: &HostContext| {
                        let ctx = HostContext {
                            version: version.clone(),
                            ..ctx.clone()
                        };
                        vec![steps::rollback_check(vm, &ctx, target)]
                    };
                    run_for_host(job, host, transport, check)
                        .await
                        .map(|_| ())
                        .map_err(|failure| failure.to_string())
                }
            })
            .collect(),
    )
    .await;
    refusals.extend(checks.into_iter().filter_map(Result::err));
    if !refusals.is_empty() {
        for transport in transports.into_values() {
            transport.close().await;
        }
        progress.done(address);
        return Err(VmApplyError::RollbackRefused {
            version: pair.version.clone(),
            refusals,
        });
    }
    super::rollback::record_start(recorder, plan, options)?;
    progress.report(
        address,
        HostEvent::RollingBackToRelease {
            hosts: switching.len(),
            version: pair.version.clone(),
            at_a_time: options.parallelism.max(1),
        },
    );
    let limit = tokio::sync::Semaphore::new(options.parallelism.max(1));
    let results = super::join_all(
        transports
            .iter()
            .map(|(host, transport)| switch_host(&job, host, transport, &pair, &limit))
            .collect(),
    )
    .await;
    let mut outcome = DeploymentOutcome::default();
    for (host, result) in transports.keys().zip(results) {
        match result {
            Ok(None) => outcome.hosts_rolled_back += 1,
            Ok(Some(unhealthy)) => {
                outcome.hosts_rolled_back += 1;
                outcome.failures.push(format!("{address}: {unhealthy}"));
            }
            Err(failure) if !failure.changed => {
                outcome.interrupted = true;
                outcome
                    .failures
                    .push(format!("{address}: {host}: {}", failure.message));
            }
            Err(failure) => {
                let line = with_record_failure(
                    format!("rollback of {failure}; NOT rolled back"),
                    recorder.set_host(address, host, None, HostChange::RollbackFailed),
                );
                not_rolled_back(progress, address, host, line, &mut outcome);
            }
        }
    }
    for transport in transports.into_values() {
        transport.close().await;
    }
    progress.done(address);
    Ok(outcome)
}

/// One host of `slipway rollback`: what killed applies left open on it
/// settled, journaled, out of its target group, switched to `pair` (recorded
/// as restored), checked and back in.
/// `Err` with `changed: false`: the apply's token was cancelled (an
/// interrupt) before it started.
async fn switch_host(
    job: &Job<'_>,
    host: &str,
    transport: &Transport,
    pair: &PreviousRelease,
    limit: &tokio::sync::Semaphore,
) -> Result<Option<String>, HostFailure> {
    let _permit = limit.acquire().await;
    if job.options.cancel.is_cancelled() {
        return Err(HostFailure {
            host: host.to_string(),
            step: "rollback".into(),
            message: "interrupted before its turn: not rolled back".into(),
            changed: false,
        });
    }
    let address = job.deployment.address.as_str();
    let record = StepRecord {
        apply_id: &job.options.apply_id,
        deployment: address,
        step: 1,
        host: Some(host),
        action: JournalAction::Rollback,
        version: &pair.version,
    };
    // What killed applies (or rollbacks) left open on the host is settled
    // first: at most one uncertain step per host.
    let recheck = StepRecord {
        action: JournalAction::Recheck,
        ..record.clone()
    };
    let _ = settle_killed_steps(job, host, &recheck, transport).await;
    let started = job.recorder.begin_host_rollback(&record);
    let deregistered = match &job.target_group {
        Some(group) => group.deregister(host).await.map_err(|message| {
            load_balancer_failure(host, "load balancer deregister", message.to_string())
        }),
        None => Ok(()),
    };
    let result = match deregistered {
        Ok(()) => {
            roll_back_host(
                job,
                host,
                transport,
                Some(pair),
                HostChange::Restored(pair.clone()),
            )
            .await
        }
        Err(failure) => Err(failure),
    };
    let journal = if result.is_ok() {
        StepOutcome::RolledBack
    } else {
        StepOutcome::Failed
    };
    let journaled = started.and_then(|seq| job.recorder.end_journal_step(seq, journal));
    match result {
        Ok(rolled_back) => Ok(rolled_back.report(host, journaled)),
        Err(mut failure) => {
            if let Err(e) = journaled {
                failure.message =
                    format!("{} (and state could not record it: {e})", failure.message);
            }
            Err(failure)
        }
    }
}
