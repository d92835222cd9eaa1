//! `plan -refresh`: read what hosts and ECS services really run (the release
//! each host's `current` points at, all hosts of a deployment at once under
//! apply's connection limit; the live service, its task definition and the
//! listener weights)
//! and fold it into the saved state before planning, so drift shows in the
//! plan.
//!
//! Reading is the only side effect, and it happens in [`observe`]; folding the
//! observations into state and plan ([`fold_into_states`], [`add_drift_reasons`])
//! is pure. A live service that cannot be read is a [`LiveReadError`], whose
//! message the observation keeps.

use std::collections::BTreeMap;
use std::time::Duration;

use super::host_output::HostOutput;
use crate::config::{Config, TransportKind};
use crate::plan::{
    AdoptedService, HostDrift, HostFound, LiveService, Plan, Reason, ReasonKind, States,
};
use crate::state::HostStatus;
use crate::transport::local::LocalTransport;
use crate::transport::ssh::{SshOptions, SshTransport};
use crate::transport::{CommandOutput, Transport};
use crate::vm::config_snapshot::{self, snapshot_name, ConfigSeen};
use crate::vm::steps::{self, HostContext, HostRelease};

/// What one host said about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostObservation {
    /// The release `current` points at (`None`: no `current`, nothing runs).
    Running(Option<String>),
    /// `current` points at the release state records, but the config files
    /// are not those of the pair state records (changed by hand, or written
    /// by an update that was cut off before it switched `current`).
    ConfigChanged(String),
    /// `current` points at the release state records, but the host has no
    /// config snapshot of the recorded pair and the record is not one a
    /// finished step wrote (in progress, failed): an update cut off before
    /// it saved the snapshot. Which config files the host has cannot be
    /// told, so the host is not taken to be on the recorded pair.
    ConfigUnknown(String),
    /// The host could not be reached or read.
    Unreachable(String),
}

/// What ECS said about a deployment's service.
#[derive(Debug, Clone, PartialEq)]
pub enum ServiceObservation {
    Running {
        service: String,
        task_definition_arn: String,
        /// In the JSON shape of state, sensitive values masked.
        task_definition: serde_json::Value,
        desired_count: u32,
        /// An Application Auto Scaling target governs the desired count, so
        /// a count other than the recorded one is autoscaling's, not drift.
        autoscaled: bool,
        /// Listener weights by target group, when the deployment has a listener.
        weights: BTreeMap<String, u32>,
    },
    /// ECS does not know the service (deleted, or never created).
    Missing { service: String },
    /// ECS could not be asked.
    Unreachable(String),
}

/// Everything `-refresh` read: host observations by deployment address, then
/// host; service observations by deployment address.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observations {
    pub hosts: BTreeMap<String, BTreeMap<String, HostObservation>>,
    pub services: BTreeMap<String, ServiceObservation>,
}

/// Read the release `current` points at on every host of every VM
/// deployment that state tracks.
pub async fn observe(config: &Config, states: &States) -> Observations {
    let mut observations = Observations {
        services: observe_services(config, states).await,
        ..Observations::default()
    };
    let starts = tokio::sync::Semaphore::new(8);
    for deployment in config.deployments.values() {
        let (Some(vm), Some(environment)) =
            (&deployment.service.vm, config.environment_of(deployment))
        else {
            continue;
        };
        let Some(hosts) = &environment.vm_hosts else {
            continue;
        };
        let state_name = crate::plan::planner::environment_state_name(&deployment.environment);
        let Some(saved) = states
            .get(&state_name)
            .and_then(Option::as_ref)
            .and_then(|s| s.deployments.get(&deployment.address))
        else {
            continue;
        };
        let ssh = if hosts.transport == TransportKind::Ssh {
            SshOptions::from_config(hosts, &config.root).ok()
        } else {
            None
        };
        // Every host at once, connections started under the same limit as
        // apply's.
        let rule = HostOutput::for_deployment(config, Some(saved));
        let reads = saved.hosts.iter().map(|(host, record)| {
            observe_host(
                (config, rule),
                deployment,
                environment,
                vm,
                hosts,
                (host, Some(record)),
                ssh.as_ref(),
                &starts,
            )
        });
        let found = super::join_all(reads.collect()).await;
        let seen: BTreeMap<String, HostObservation> =
            saved.hosts.keys().cloned().zip(found).collect();
        observations.hosts.insert(deployment.address.clone(), seen);
    }
    observations
}

/// What one host runs: the release its `current` resolves to (the release
/// marker only says what the last update wrote).
#[allow(clippy::too_many_arguments)]
async fn observe_host(
    (config, rule): (&Config, HostOutput),
    deployment: &crate::config::Deployment,
    environment: &crate::config::Environment,
    vm: &crate::config::VmSpec,
    hosts: &crate::config::VmHosts,
    (host, recorded): (&str, Option<&crate::state::HostState>),
    ssh: Option<&SshOptions>,
    starts: &tokio::sync::Semaphore,
) -> HostObservation {
    let transport = match ssh {
        Some(options) => SshTransport::connect(host, options, starts)
            .await
            .map(Transport::Ssh)
            .map_err(|e| e.to_string()),
        None => {
            let root = hosts
                .root
                .as_deref()
                .unwrap_or(super::vm::DEFAULT_LOCAL_ROOT);
            LocalTransport::confined(host, &config.root, root)
                .map(Transport::Local)
                .map_err(|e| e.to_string())
        }
    };
    let transport = match transport {
        Ok(transport) => transport,
        Err(error) => return HostObservation::Unreachable(error),
    };
    let ctx = HostContext {
        host: host.to_string(),
        host_index: 0,
        host_root: transport.root(),
        environment: environment.name.clone(),
        deployment: deployment.name.clone(),
        version: deployment.service.version.clone(),
        apply_id: String::new(),
        sudo: hosts.sudo,
    };
    let step = steps::read_host_release(vm, &ctx);
    let mut observed = match transport.run(&step.script, Duration::from_secs(30)).await {
        Ok(output) if output.success() => match HostRelease::parse(&output.stdout) {
            Ok(release) => HostObservation::Running(release.current),
            Err(error) => {
                HostObservation::Unreachable(format!("unreadable release marker: {error}"))
            }
        },
        Ok(output) => HostObservation::Unreachable(rule.failure(config, &output)),
        Err(error) => HostObservation::Unreachable(error.to_string()),
    };
    // On the recorded release: are the config files the recorded pair's?
    // (Compared with the snapshot saved when that pair was deployed. Without
    // one, a record a finished step wrote is taken at its word (a host
    // deployed before snapshots were saved); an unfinished update's record
    // is not: it may have stopped before it wrote the files.)
    if let (HostObservation::Running(Some(release)), Some(record)) = (&observed, recorded) {
        if *release == record.version && !vm.config_files.is_empty() {
            let name = snapshot_name(&record.version, record.config_digest.as_deref());
            let step = config_snapshot::compare(vm, &ctx, &name);
            let finished = record.status.is_settled();
            observed = match transport.run(&step.script, Duration::from_secs(30)).await {
                Ok(output) if output.success() => match ConfigSeen::parse(&output.stdout) {
                    Some(ConfigSeen::Differs) => HostObservation::ConfigChanged(release.clone()),
                    Some(ConfigSeen::Unknown) if !finished => {
                        HostObservation::ConfigUnknown(release.clone())
                    }
                    Some(_) => observed,
                    None => HostObservation::Unreachable(format!(
                        "unreadable config comparison: {}",
                        rule.lines(
                            config,
                            &CommandOutput {
                                stderr: String::new(),
                                ..output
                            }
                        )
                    )),
                },
                Ok(output) => HostObservation::Unreachable(rule.failure(config, &output)),
                Err(error) => HostObservation::Unreachable(error.to_string()),
            };
        }
    }
    transport.close().await;
    observed
}

/// Ask ECS (and the listener) about the service of every ECS deployment that
/// state tracks.
async fn observe_services(
    config: &Config,
    states: &States,
) -> BTreeMap<String, ServiceObservation> {
    let mut services = BTreeMap::new();
    for deployment in config.deployments.values() {
        let Some(environment) = config.environment_of(deployment) else {
            continue;
        };
        let Some(settings) = deployment.ecs_settings(environment) else {
            continue;
        };
        let state_name = crate::plan::planner::environment_state_name(&deployment.environment);
        let Some(recorded) = states
            .get(&state_name)
            .and_then(Option::as_ref)
            .and_then(|s| s.deployments.get(&deployment.address))
            .and_then(|d| d.ecs.as_ref())
        else {
            continue;
        };
        let sdk = crate::aws::sdk_config(&crate::aws::Target::new(
            settings.region.as_deref(),
            settings.endpoint.as_deref(),
        ))
        .await;
        let observation = observe_service(
            config,
            (
                &aws_sdk_ecs::Client::new(&sdk),
                &aws_sdk_elasticloadbalancingv2::Client::new(&sdk),
                &aws_sdk_applicationautoscaling::Client::new(&sdk),
            ),
            &recorded.cluster,
            &recorded.service_name,
            settings.listener_arn.as_deref(),
        )
        .await
        .unwrap_or_else(|e| ServiceObservation::Unreachable(e.to_string()));
        services.insert(deployment.address.clone(), observation);
    }
    services
}

/// Why a live ECS service, its task definition, listener weights or
/// autoscaling target could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LiveReadError {
    /// DescribeServices failed (the SDK's message).
    #[error("{message}")]
    DescribeService { service: String, message: String },
    /// DescribeTaskDefinition failed (the SDK's message).
    #[error("{message}")]
    DescribeTaskDefinition { arn: String, message: String },
    /// The listener's weights could not be read.
    #[error(transparent)]
    Listener(#[from] super::ecs::EcsApplyError),
    /// The autoscaling target could not be read.
    #[error(transparent)]
    Scaling(#[from] super::scaling::ScalingError),
}

async fn observe_service(
    config: &Config,
    (ecs, elb, scaling): (
        &aws_sdk_ecs::Client,
        &aws_sdk_elasticloadbalancingv2::Client,
        &aws_sdk_applicationautoscaling::Client,
    ),
    cluster: &str,
    service: &str,
    listener: Option<&str>,
) -> Result<ServiceObservation, LiveReadError> {
    let Some(live) = active_service(ecs, cluster, service).await? else {
        return Ok(ServiceObservation::Missing {
            service: service.to_string(),
        });
    };
    let task_definition_arn = live.task_definition().unwrap_or_default().to_string();
    let task_definition = live_task_definition(config, ecs, &task_definition_arn).await?;
    let weights = match listener {
        Some(listener) => live_weights(elb, listener).await?,
        None => BTreeMap::new(),
    };
    let autoscaled =
        super::scaling::read_target(scaling, &super::scaling::resource_id(cluster, service))
            .await?
            .is_some();
    Ok(ServiceObservation::Running {
        service: service.to_string(),
        task_definition_arn,
        task_definition,
        desired_count: live.desired_count().max(0) as u32,
        autoscaled,
        weights,
    })
}

/// `service` as ECS runs it, `None` when ECS does not know it or it is no
/// longer active; the one DescribeServices reader of `-refresh` and
/// [`read_live`].
async fn active_service(
    ecs: &aws_sdk_ecs::Client,
    cluster: &str,
    service: &str,
) -> Result<Option<aws_sdk_ecs::types::Service>, LiveReadError> {
    let described = super::ecs::describe_one_service(ecs, cluster, service)
        .await
        .map_err(|e| LiveReadError::DescribeService {
            service: service.to_string(),
            message: crate::aws::error_text(&e),
        })?;
    Ok(described.filter(|s| s.status() == Some("ACTIVE")))
}

/// The task definition `arn` in the JSON shape of state, sensitive values
/// masked (`null` when ECS describes none).
async fn live_task_definition(
    config: &Config,
    ecs: &aws_sdk_ecs::Client,
    arn: &str,
) -> Result<serde_json::Value, LiveReadError> {
    let definition = ecs
        .describe_task_definition()
        .task_definition(arn)
        .send()
        .await
        .map_err(|e| LiveReadError::DescribeTaskDefinition {
            arn: arn.to_string(),
            message: crate::aws::error_text(&e),
        })?;
    Ok(definition
        .task_definition()
        .map(super::ecs::live_definition_json)
        .map(|json| config.mask_json(json))
        .unwrap_or(serde_json::Value::Null))
}

/// The listener's weights by target group (a negative weight read as 0).
async fn live_weights(
    elb: &aws_sdk_elasticloadbalancingv2::Client,
    listener: &str,
) -> Result<BTreeMap<String, u32>, LiveReadError> {
    Ok(super::ecs::read_listener_weights(elb, listener)
        .await?
        .into_iter()
        .map(|(group, weight)| (group, weight.max(0) as u32))
        .collect())
}

/// What `plan` and `apply` read from AWS before planning, into `options`,
/// for every ECS deployment of the environments `options` names, in one pass
/// (one SDK configuration per deployment):
///
/// - `live_services`: when state has no service for it, the service of its
///   name as ECS runs it (adopted by the plan when it exists;
///   `LiveService::Unknown` when ECS could not be asked);
/// - `listener_weights`: when state records weights, the listener's live
///   weights (a change when someone moved them; left out when the listener
///   cannot be read: the plan trusts state, and apply reads it again before
///   every change);
/// - `live_capacity`: the serving service's desired count and autoscaling
///   target (the service state records, else the configured name; left out
///   when either cannot be read: the plan counts from the configuration, and
///   apply reads both again before changing anything).
pub fn read_live(config: &Config, states: &States, options: &mut crate::plan::PlanOptions) {
    options.live_services = BTreeMap::new();
    options.listener_weights = BTreeMap::new();
    options.live_capacity = BTreeMap::new();
    let wanted: Vec<(
        &crate::config::Deployment,
        crate::config::EcsCluster,
        Option<&crate::state::EcsState>,
    )> = config
        .deployments
        .values()
        .filter_map(|deployment| {
            let (included, record) = planned_record(deployment, states, options);
            let environment = config.environment_of(deployment)?;
            let is_ecs = environment.ecs_cluster.is_some() && deployment.runs_on_ecs(environment);
            let settings = deployment.ecs_settings(environment)?;
            (included && is_ecs)
                .then(|| (deployment, settings, record.and_then(|d| d.ecs.as_ref())))
        })
        .collect();
    if wanted.is_empty() {
        return;
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            options.live_services = wanted
                .iter()
                .filter(|(_, _, recorded)| recorded.is_none())
                .map(|(d, _, _)| (d.address.clone(), LiveService::Unknown(error.to_string())))
                .collect();
            return;
        }
    };
    runtime.block_on(async {
        for (deployment, settings, recorded) in wanted {
            let address = deployment.address.clone();
            let sdk = crate::aws::sdk_config(&crate::aws::Target::new(
                settings.region.as_deref(),
                settings.endpoint.as_deref(),
            ))
            .await;
            let ecs = aws_sdk_ecs::Client::new(&sdk);
            let elb = aws_sdk_elasticloadbalancingv2::Client::new(&sdk);
            // The serving service's count, when this pass has read it.
            let mut count_read = None;
            match recorded {
                None => match observe_unrecorded(config, &ecs, &elb, &settings).await {
                    Ok(Some(service)) => {
                        count_read = Some(Some(service.desired_count));
                        options
                            .live_services
                            .insert(address.clone(), LiveService::Exists(service));
                    }
                    Ok(None) => count_read = Some(None),
                    Err(error) => {
                        options
                            .live_services
                            .insert(address.clone(), LiveService::Unknown(error.to_string()));
                    }
                },
                Some(record) if !record.weights.is_empty() => {
                    if let Some(listener) = &settings.listener_arn {
                        if let Ok(weights) = live_weights(&elb, listener).await {
                            options.listener_weights.insert(address.clone(), weights);
                        }
                    }
                }
                Some(_) => {}
            }
            let Some(serving) = recorded
                .map(|e| e.service_name.clone())
                .or_else(|| settings.service_name.clone())
            else {
                continue;
            };
            let scaling = aws_sdk_applicationautoscaling::Client::new(&sdk);
            let resource = super::scaling::resource_id(&settings.cluster, &serving);
            let Ok(target) = super::scaling::read_target(&scaling, &resource).await else {
                continue;
            };
            let desired_count = match count_read {
                Some(count) => count,
                None => match active_service(&ecs, &settings.cluster, &serving).await {
                    Ok(live) => live.map(|s| s.desired_count().max(0) as u32),
                    Err(_) => continue,
                },
            };
            options.live_capacity.insert(
                address,
                crate::plan::LiveCapacity {
                    desired_count,
                    scaling: target.map(|(target, _)| target),
                },
            );
        }
    });
}

/// Whether `only` plans `deployment`'s environment, and the deployment's
/// record in that environment's state.
fn planned_record<'a>(
    deployment: &crate::config::Deployment,
    states: &'a States,
    only: &crate::plan::PlanOptions,
) -> (bool, Option<&'a crate::state::DeploymentState>) {
    let state_name = crate::plan::planner::environment_state_name(&deployment.environment);
    let record = states
        .get(&state_name)
        .and_then(Option::as_ref)
        .and_then(|s| s.deployments.get(&deployment.address));
    (only.includes(&state_name), record)
}

/// The deployment's service as ECS runs it, `None` when ECS has no active
/// service of that name.
async fn observe_unrecorded(
    config: &Config,
    ecs: &aws_sdk_ecs::Client,
    elb: &aws_sdk_elasticloadbalancingv2::Client,
    settings: &crate::config::EcsCluster,
) -> Result<Option<AdoptedService>, LiveReadError> {
    let service = settings.service_name.clone().unwrap_or_default();
    let Some(live) = active_service(ecs, &settings.cluster, &service).await? else {
        return Ok(None);
    };
    let task_definition_arn = live.task_definition().unwrap_or_default().to_string();
    let task_definition = live_task_definition(config, ecs, &task_definition_arn).await?;
    let target_group = live
        .load_balancers()
        .iter()
        .filter_map(|lb| lb.target_group_arn())
        .find(|group| settings.target_groups.iter().any(|g| g == group))
        .map(str::to_string);
    let weights = match &settings.listener_arn {
        Some(listener) => live_weights(elb, listener).await?,
        None => BTreeMap::new(),
    };
    Ok(Some(AdoptedService {
        cluster: settings.cluster.clone(),
        service,
        task_definition_arn,
        task_definition,
        desired_count: live.desired_count().max(0) as u32,
        running_count: live.running_count().max(0) as u32,
        target_group,
        weights,
    }))
}

/// Make state say what the hosts say: a host on another version than state
/// records is recorded with that version (so the plan schedules it again); an
/// unreachable host is recorded as failed.
pub fn fold_into_states(states: &mut States, observations: &Observations) {
    for state in states.values_mut().flatten() {
        for (address, deployment) in state.deployments.iter_mut() {
            match observations.services.get(address) {
                Some(ServiceObservation::Running {
                    task_definition,
                    desired_count,
                    task_definition_arn,
                    ..
                }) => {
                    if let Some(ecs) = &mut deployment.ecs {
                        ecs.task_definition = task_definition.clone();
                        ecs.desired_count = *desired_count;
                        ecs.task_definition_arn = Some(task_definition_arn.clone());
                    }
                }
                Some(ServiceObservation::Missing { .. }) => {
                    deployment.status = crate::state::DeploymentStatus::Failed;
                }
                _ => {}
            }
            let Some(seen) = observations.hosts.get(address) else {
                continue;
            };
            let in_flight = deployment
                .rollout_id
                .clone()
                .filter(|_| deployment.continues_rollout(&deployment.version));
            for (host, record) in deployment.hosts.iter_mut() {
                match seen.get(host) {
                    Some(HostObservation::Running(Some(version))) if *version != record.version => {
                        record.version = version.clone();
                    }
                    Some(HostObservation::Running(None)) => {
                        record.status = HostStatus::Pending;
                    }
                    // Its config must be written again: not yet done.
                    Some(HostObservation::ConfigChanged(_) | HostObservation::ConfigUnknown(_)) => {
                        record.previous = record.before_rollout(in_flight.as_deref());
                        record.status = HostStatus::Pending;
                    }
                    Some(HostObservation::Unreachable(_)) => {
                        // Failed, still knowing the pair it served well.
                        record.previous = record.before_rollout(in_flight.as_deref());
                        record.status = HostStatus::Failed;
                    }
                    _ => {}
                }
            }
        }
    }
}

/// Add a `drift` reason to each deployment whose hosts differ from what state
/// recorded (`recorded` is the state before folding).
pub fn add_drift_reasons(plan: &mut Plan, recorded: &States, observations: &Observations) {
    for change in &mut plan.deployments {
        let saved = recorded
            .values()
            .flatten()
            .find_map(|s| s.deployments.get(&change.address));
        if let Some(observation) = observations.services.get(&change.address) {
            let recorded_ecs = saved.and_then(|d| d.ecs.as_ref());
            change
                .reasons
                .extend(service_drift(observation, recorded_ecs));
        }
        let Some(seen) = observations.hosts.get(&change.address) else {
            continue;
        };
        for (host, observation) in seen {
            let expected = saved
                .and_then(|d| d.hosts.get(host))
                .map(|h| h.version.as_str())
                .unwrap_or("");
            let (summary, found) = match observation {
                HostObservation::Running(Some(version)) if version != expected => (
                    format!("drift: {host} runs {version}, state recorded {expected}"),
                    HostFound::Release {
                        version: version.clone(),
                    },
                ),
                HostObservation::Running(None) => (
                    format!(
                        "drift: {host} has no release installed (no `current`), state recorded {expected}"
                    ),
                    HostFound::NoRelease,
                ),
                HostObservation::Unreachable(error) => (
                    format!("drift: {host} is unreachable ({error})"),
                    HostFound::Unreachable,
                ),
                HostObservation::ConfigChanged(version) => (
                    format!(
                        "drift: {host} runs {version} with config files that are not the ones state recorded for it (changed on the host?)"
                    ),
                    HostFound::ConfigChanged {
                        version: version.clone(),
                    },
                ),
                HostObservation::ConfigUnknown(version) => {
                    let status = saved
                        .and_then(|d| d.hosts.get(host))
                        .and_then(|h| serde_json::to_value(h.status).ok())
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default();
                    (
                        format!(
                            "drift: {host} runs {version}, but which config files it has cannot be told: its update to the recorded pair did not finish (recorded {status}) and saved no snapshot of them"
                        ),
                        HostFound::ConfigUnknown {
                            version: version.clone(),
                        },
                    )
                }
                _ => continue,
            };
            plan.drift.push(HostDrift {
                deployment: change.address.clone(),
                host: host.clone(),
                found,
            });
            change.reasons.push(Reason {
                kind: ReasonKind::Drift,
                summary,
                diff: None,
            });
        }
    }
}

/// The host observations a plan was computed from (its `drift`), for apply
/// to fold into state before executing it: a saved plan is executed against
/// the hosts as `plan -refresh` found them.
pub fn observations_of(plan: &Plan) -> Observations {
    let mut observations = Observations::default();
    for drift in &plan.drift {
        let observation = match &drift.found {
            HostFound::Release { version } => HostObservation::Running(Some(version.clone())),
            HostFound::NoRelease => HostObservation::Running(None),
            HostFound::ConfigChanged { version } => HostObservation::ConfigChanged(version.clone()),
            HostFound::ConfigUnknown { version } => HostObservation::ConfigUnknown(version.clone()),
            HostFound::Unreachable => {
                HostObservation::Unreachable("unreachable when the plan was made".into())
            }
        };
        observations
            .hosts
            .entry(drift.deployment.clone())
            .or_default()
            .insert(drift.host.clone(), observation);
    }
    observations
}

/// How a service differs from its state record, as plan reasons.
fn service_drift(
    observation: &ServiceObservation,
    recorded: Option<&crate::state::EcsState>,
) -> Vec<Reason> {
    let drift = |summary: String| Reason {
        kind: ReasonKind::Drift,
        summary,
        diff: None,
    };
    let Some(recorded) = recorded else {
        return Vec::new();
    };
    match observation {
        ServiceObservation::Unreachable(error) => {
            vec![drift(format!(
                "drift: ECS could not be asked about {} ({error})",
                recorded.service_name
            ))]
        }
        ServiceObservation::Missing { service } => {
            vec![drift(format!(
                "drift: service {service} does not exist in cluster {}",
                recorded.cluster
            ))]
        }
        ServiceObservation::Running {
            service,
            task_definition_arn,
            task_definition,
            desired_count,
            autoscaled,
            weights,
        } => {
            let mut reasons = Vec::new();
            if *task_definition != recorded.task_definition {
                let images = |definition: &serde_json::Value| -> Vec<String> {
                    definition["containerDefinitions"]
                        .as_array()
                        .map(|containers| {
                            containers
                                .iter()
                                .map(|c| {
                                    format!(
                                        "{} = {}",
                                        c["name"].as_str().unwrap_or(""),
                                        c["image"].as_str().unwrap_or("")
                                    )
                                })
                                .collect()
                        })
                        .unwrap_or_default()
                };
                let fields = crate::plan::planner::changed_fields(
                    &recorded.task_definition,
                    task_definition,
                );
                reasons.push(Reason {
                    kind: ReasonKind::Drift,
                    summary: format!(
                        "drift: service {service} runs task definition {} (images {}), not the recorded one (images {}); changed: {}",
                        crate::ecs::short_arn(task_definition_arn),
                        images(task_definition).join(", "),
                        images(&recorded.task_definition).join(", "),
                        fields.join(", ")
                    ),
                    diff: crate::plan::planner::unified_diff(
                        &serde_json::to_string_pretty(&recorded.task_definition).unwrap_or_default(),
                        &serde_json::to_string_pretty(task_definition).unwrap_or_default(),
                        "task definition",
                    ),
                });
            }
            if *desired_count != recorded.desired_count && !autoscaled {
                reasons.push(drift(format!(
                    "drift: service {service} has desired count {desired_count}, state recorded {}",
                    recorded.desired_count
                )));
            }
            // Listener weights are read before every plan: a difference is
            // a `listener_weights` reason of the planner's, not drift.
            let _ = weights;
            reasons
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{DeploymentState, DeploymentStatus, HostState, State};

    fn states() -> States {
        let mut state = State::new("prod");
        let hosts = ["a", "b", "c", "d"]
            .iter()
            .map(|h| {
                (
                    h.to_string(),
                    HostState {
                        version: "2".into(),
                        artifact_sha256: None,
                        status: HostStatus::Deployed,
                        updated_at: "t".into(),
                        previous: None,
                        config_digest: None,
                        rollout: None,
                    },
                )
            })
            .collect();
        state.deployments.insert(
            "deployment.web".into(),
            DeploymentState {
                service: "service.web".into(),
                version: "2".into(),
                artifact_sha256: None,
                rollout: None,
                rollout_digest: None,
                rollout_id: None,
                status: DeploymentStatus::Deployed,
                verified: true,
                config_files: Default::default(),
                sensitive_digests: Default::default(),
                systemd_unit: None,
                hosts,
                ecs: None,
                approvals: Vec::new(),
                gates: Vec::new(),
                releases: Vec::new(),
                rolled_back_from: None,
                updated_at: "t".into(),
            },
        );
        BTreeMap::from([("prod".to_string(), Some(state))])
    }

    #[test]
    fn observations_fold_into_state() {
        let mut states = states();
        let hosts = BTreeMap::from([(
            "deployment.web".to_string(),
            BTreeMap::from([
                ("a".to_string(), HostObservation::Running(Some("2".into()))),
                ("b".to_string(), HostObservation::Running(Some("1".into()))),
                (
                    "c".to_string(),
                    HostObservation::Unreachable("refused".into()),
                ),
                ("d".to_string(), HostObservation::ConfigChanged("2".into())),
            ]),
        )]);
        let observations = Observations {
            hosts,
            ..Observations::default()
        };
        fold_into_states(&mut states, &observations);
        let hosts = &states["prod"].as_ref().unwrap().deployments["deployment.web"].hosts;
        assert_eq!(hosts["a"].version, "2");
        assert_eq!(hosts["b"].version, "1");
        assert_eq!(hosts["c"].status, HostStatus::Failed);
        // Config files changed on the host: it must be updated again.
        assert_eq!(
            (hosts["d"].version.as_str(), hosts["d"].status),
            ("2", HostStatus::Pending)
        );
    }

    /// The drift a plan records folds into state as the observations it
    /// was made from do.
    #[test]
    fn a_plans_drift_gives_back_its_observations() {
        let recorded = states();
        let hosts = BTreeMap::from([(
            "deployment.web".to_string(),
            BTreeMap::from([
                ("a".to_string(), HostObservation::Running(Some("2".into()))),
                ("b".to_string(), HostObservation::Running(Some("1".into()))),
                ("c".to_string(), HostObservation::Running(None)),
            ]),
        )]);
        let observations = Observations {
            hosts,
            ..Observations::default()
        };
        let mut plan = crate::plan::Plan {
            format_version: crate::plan::FORMAT_VERSION.into(),
            slipway_version: "test".into(),
            config_digest: String::new(),
            environments: Vec::new(),
            inputs: None,
            deployments: vec![crate::plan::DeploymentChange {
                promotion: None,
                capacity: None,
                address: "deployment.web".into(),
                name: "web".into(),
                service: "service.web".into(),
                environment: "prod".into(),
                rollout: None,
                target: crate::plan::TargetKind::Vm,
                action: crate::plan::Action::Update,
                version_before: Some("2".into()),
                version_after: Some("2".into()),
                reasons: Vec::new(),
                artifact: None,
                adopt: None,
            }],
            schedule: Default::default(),
            outputs: Vec::new(),
            summary: Default::default(),
            warnings: Vec::new(),
            drift: Vec::new(),
        };
        add_drift_reasons(&mut plan, &recorded, &observations);
        assert_eq!(plan.deployments[0].reasons.len(), 2);
        assert_eq!(
            plan.drift,
            vec![
                HostDrift {
                    deployment: "deployment.web".into(),
                    host: "b".into(),
                    found: HostFound::Release {
                        version: "1".into()
                    },
                },
                HostDrift {
                    deployment: "deployment.web".into(),
                    host: "c".into(),
                    found: HostFound::NoRelease,
                },
            ]
        );
        let mut folded = recorded.clone();
        fold_into_states(&mut folded, &observations);
        let mut from_plan = recorded.clone();
        fold_into_states(&mut from_plan, &observations_of(&plan));
        assert_eq!(from_plan, folded);

        // A host whose config cannot be told is drift, planned again, and
        // reads back from the plan as the same observation.
        let mut recorded = states();
        if let Some(state) = recorded.get_mut("prod").and_then(Option::as_mut) {
            let host = state
                .deployments
                .get_mut("deployment.web")
                .and_then(|d| d.hosts.get_mut("d"))
                .unwrap();
            host.status = HostStatus::InProgress;
        }
        let observations = Observations {
            hosts: BTreeMap::from([(
                "deployment.web".to_string(),
                BTreeMap::from([("d".to_string(), HostObservation::ConfigUnknown("2".into()))]),
            )]),
            ..Observations::default()
        };
        plan.drift.clear();
        plan.deployments[0].reasons.clear();
        add_drift_reasons(&mut plan, &recorded, &observations);
        assert_eq!(
            plan.deployments[0].reasons[0].summary,
            "drift: d runs 2, but which config files it has cannot be told: its update to the recorded pair did not finish (recorded in_progress) and saved no snapshot of them"
        );
        assert_eq!(
            plan.drift[0].found,
            HostFound::ConfigUnknown {
                version: "2".into()
            }
        );
        assert_eq!(observations_of(&plan), observations);
        fold_into_states(&mut recorded, &observations);
        let host = &recorded["prod"].as_ref().unwrap().deployments["deployment.web"].hosts["d"];
        assert_eq!(host.status, HostStatus::Pending);
    }
}
