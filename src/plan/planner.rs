//! The planner: configuration + saved state → [`Plan`]. Pure.
//!
//! It compares each deployment's desired form with what state recorded, decides
//! an action with its reasons, and lays out the schedule apply will follow
//! (waves, batches of hosts or traffic steps, gates, approvals, rollback). It
//! does no I/O: callers read the state and pass it in.

use std::collections::{BTreeMap, BTreeSet};

use sha2::{Digest, Sha256};
use similar::TextDiff;

use super::model::*;
use super::render::{systemd_unit_text, task_definition};
use crate::config::{BatchSize, Config, Deployment, Environment, Rollout};
use crate::config::{Direction, Percent};
use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::graph::DeploymentGraph;
use crate::state::model::{
    DeploymentState, DeploymentStatus, HistoryOperation, HistoryResult, HostStatus, JournalAction,
    State, StepOutcome,
};

/// Saved state by environment name (`None`: nothing saved yet).
pub type States = BTreeMap<String, Option<State>>;

/// The file name (without extension) of an environment's state: its name, or
/// `MODULE_NAME` for an environment declared in a module.
pub fn environment_state_name(environment_address: &str) -> String {
    let without_kind = environment_address
        .replace(".environment.", ".")
        .replace("environment.", "");
    without_kind
        .trim_start_matches("module.")
        .replace(".module.", "_")
        .replace('.', "_")
}

/// Environments whose state the plan needs: every one used by a deployment.
pub fn environments_needed(config: &Config) -> BTreeSet<String> {
    config
        .deployments
        .values()
        .map(|d| environment_state_name(&d.environment))
        .chain(
            config
                .environments
                .keys()
                .map(|e| environment_state_name(e)),
        )
        .collect()
}

/// The environments an apply locks, sorted: every one the configuration
/// needs or that has state (`with_state`, as the backend lists them), among
/// those `options` includes. An environment that only has state is locked
/// too: the plan may remove what it records.
pub fn environments_to_lock(
    config: &Config,
    with_state: impl IntoIterator<Item = String>,
    options: &PlanOptions,
) -> Vec<String> {
    let names: BTreeSet<String> = environments_needed(config)
        .into_iter()
        .chain(with_state)
        .filter(|name| options.includes(name))
        .collect();
    names.into_iter().collect()
}

/// What to plan.
#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    /// Only deployments in these environments (state names); all when `None`.
    pub environments: Option<BTreeSet<String>>,
    /// What ECS runs for ECS deployments that state has no service for, by
    /// deployment address (read by the caller: `apply::refresh::read_live`).
    /// A service found here is adopted; one missing is created.
    pub live_services: BTreeMap<String, LiveService>,
    /// The live weights of the listener of every ECS deployment whose state
    /// records weights, by deployment address (read by the caller, as
    /// `live_services`). Weights that differ from the record are a change.
    pub listener_weights: BTreeMap<String, BTreeMap<String, u32>>,
    /// The desired count and autoscaling target of the serving service of
    /// ECS deployments, by deployment address (read by the caller:
    /// `apply::refresh::read_live`). Without an entry the plan counts
    /// from the configuration and state; apply reads them again.
    pub live_capacity: BTreeMap<String, LiveCapacity>,
}

impl PlanOptions {
    /// Whether the environment with this state name is planned.
    pub fn includes(&self, state_name: &str) -> bool {
        self.environments
            .as_ref()
            .is_none_or(|only| only.contains(state_name))
    }
}

/// Compute the plan. Fails with diagnostics when state forbids it (promotion
/// of a version the source environment has not verified).
pub fn plan(config: &Config, states: &States, options: &PlanOptions) -> Result<Plan, Diagnostics> {
    let mut diagnostics = Diagnostics::default();
    let mut changes: BTreeMap<String, DeploymentChange> = BTreeMap::new();
    let mut targets: BTreeMap<String, Vec<String>> = BTreeMap::new();
    // Deployments whose rollout of this version stopped part-way: it goes on.
    let mut continuing: BTreeSet<String> = BTreeSet::new();
    let mut warnings = Vec::new();
    let digests = RolloutDigests::default();
    // What a VM rollback would put back, when state says more than "the
    // previous version" (see `vm_rollback`).
    let mut rollbacks: BTreeMap<String, String> = BTreeMap::new();
    // The ECS service that serves each deployment now (state's, or the one
    // the plan adopts): a canary ends by updating it in place.
    let mut serving: BTreeMap<String, String> = BTreeMap::new();
    // Deployments that change and may need a promotion check.
    let mut promoting = Vec::new();

    for deployment in config.deployments.values() {
        let state_name = environment_state_name(&deployment.environment);
        if !options.includes(&state_name) {
            continue;
        }
        let saved = states
            .get(&state_name)
            .and_then(Option::as_ref)
            .and_then(|s| s.deployments.get(&deployment.address));
        let Some(environment) = config.environment_of(deployment) else {
            continue;
        };
        let live = options.live_services.get(&deployment.address);
        let capacity = deployment.runs_on_ecs(environment).then(|| {
            ecs_capacity(
                config,
                deployment,
                environment,
                saved,
                live,
                options.live_capacity.get(&deployment.address),
            )
        });
        let (mut change, hosts) = plan_deployment(
            config,
            deployment,
            environment,
            saved,
            (live, capacity.as_ref()),
            &digests,
        );
        let state = states.get(&state_name).and_then(Option::as_ref);
        recorded_ecs_reasons(
            &mut change,
            saved,
            state,
            options.listener_weights.get(&deployment.address),
        );
        carry_capacity(&mut change, capacity);
        if let Some(refusal) = adoption_refusal(config, deployment, &change) {
            warnings.push(format!("{refusal}; apply refuses this plan until then"));
        }
        warnings.extend(deployment_warnings(
            deployment,
            environment,
            (saved, state),
            live,
        ));
        if matches!(change.action, Action::Create | Action::Update) {
            promoting.push(deployment);
        }
        let unfinished = saved.is_some_and(|saved| {
            saved.version == deployment.service.version
                && matches!(
                    saved.status,
                    DeploymentStatus::Partial | DeploymentStatus::InProgress
                )
        });
        if unfinished {
            continuing.insert(deployment.address.clone());
        }
        if let (Some(saved), TargetKind::Vm) = (saved, change.target) {
            if let Some(text) = vm_rollback(saved, &deployment.service.version, environment, &hosts)
            {
                rollbacks.insert(deployment.address.clone(), text);
            }
        }
        if let Some(service) = saved
            .and_then(|s| s.ecs.as_ref())
            .map(|e| e.service_name.clone())
            .or_else(|| change.adopt.as_ref().map(|a| a.service.clone()))
        {
            serving.insert(deployment.address.clone(), service);
        }
        targets.insert(deployment.address.clone(), hosts);
        changes.insert(deployment.address.clone(), change);
    }
    for (state_name, state) in states {
        let Some(state) = state else { continue };
        if !options.includes(state_name) {
            continue;
        }
        warnings.extend(interrupted_apply_warnings(state_name, state));
        warnings.extend(
            state
                .scaling_suspended
                .iter()
                .filter(|(address, _)| !config.deployments.contains_key(*address))
                .map(|(address, left)| suspended_scaling_left_warning(address, left)),
        );
        for (address, saved) in &state.deployments {
            if config.deployments.contains_key(address) {
                continue;
            }
            changes.insert(address.clone(), removed_change(address, saved, state_name));
        }
    }
    for deployment in promoting {
        let pending = check_promotion(config, deployment, states, &changes, &mut diagnostics);
        if let Some(change) = changes.get_mut(&deployment.address) {
            change.promotion = pending;
        }
    }
    if diagnostics.has_errors() {
        return Err(diagnostics);
    }

    let schedule = schedule(
        config,
        &changes,
        &targets,
        &continuing,
        (&rollbacks, &serving),
    );
    let ordered = in_schedule_order(&schedule, changes);
    let outputs = output_values(config);
    Ok(Plan {
        format_version: FORMAT_VERSION.to_string(),
        slipway_version: env!("CARGO_PKG_VERSION").to_string(),
        config_digest: config.digest.clone(),
        environments: environment_bases(config, states, options),
        inputs: Some(super::saved::plan_inputs(config, options)),
        summary: summarize(&ordered),
        deployments: ordered,
        schedule,
        outputs,
        warnings,
        drift: Vec::new(),
    })
}

/// A creating or updating ECS change carries its capacity (the
/// deployment's [`ecs_capacity`]), with the plan's sentence for it.
fn carry_capacity(change: &mut DeploymentChange, capacity: Option<PlannedCapacity>) {
    let Some(capacity) =
        capacity.filter(|_| matches!(change.action, Action::Create | Action::Update))
    else {
        return;
    };
    change.reasons.push(Reason {
        kind: ReasonKind::Capacity,
        summary: super::capacity::describe(&capacity),
        diff: None,
    });
    change.capacity = Some(capacity);
}

/// What state says about an ECS deployment that is a change however the
/// configuration stands: listener weights that differ from the recorded
/// ones (`live_weights`, as read), autoscaling an interrupted apply left
/// suspended (`state` is the deployment's environment's state).
fn recorded_ecs_reasons(
    change: &mut DeploymentChange,
    saved: Option<&DeploymentState>,
    state: Option<&State>,
    live_weights: Option<&BTreeMap<String, u32>>,
) {
    if let (Some(ecs), Some(weights)) = (saved.and_then(|s| s.ecs.as_ref()), live_weights) {
        if let Some(reason) = listener_weights_reason(ecs, weights) {
            change.reasons.push(reason);
            if change.action == Action::NoOp {
                change.action = Action::Update;
            }
        }
    }
    if let Some(left) = state.and_then(|s| s.scaling_suspended.get(&change.address)) {
        change.reasons.push(Reason {
            kind: ReasonKind::Capacity,
            summary: format!(
                "autoscaling of {} was left suspended by an interrupted apply: apply restores it",
                left.resource_id
            ),
            diff: None,
        });
        if change.action == Action::NoOp {
            change.action = Action::Update;
        }
    }
}

/// What the plan says about a deployment beside its change: an ECS service
/// that could not be looked up (`live`), and from its record (`saved`, in
/// `state`) an approval it waits for, a rejected or rolled back version
/// configured again, an apply that did not finish.
/// Why apply cannot start the rollout of `change` beside the service it
/// adopts: a canary or blue/green runs its new version behind the other
/// target group, so the adopted service must be registered with the first
/// of the deployment's target groups. Checked by apply before it changes
/// anything, and shown by plan as a warning.
pub fn adoption_refusal(
    config: &Config,
    deployment: &Deployment,
    change: &DeploymentChange,
) -> Option<String> {
    let adopted = change.adopt.as_ref()?;
    let rollout = config.rollout_of(deployment)?;
    let first_group = config
        .environment_of(deployment)
        .and_then(|e| deployment.ecs_settings(e))
        .and_then(|s| s.target_groups.first().cloned());
    let outside = adopted.target_group.is_none() || adopted.target_group != first_group;
    (rollout.strategy.moves_by_steps() && outside).then(|| {
        format!(
            "{}: service {} exists but is not registered with the first of the deployment's target groups, so a {} rollout cannot start beside it; register it there, or adopt it with a rolling rollout first",
            deployment.address, adopted.service, rollout.strategy
        )
    })
}

fn deployment_warnings(
    deployment: &Deployment,
    environment: &Environment,
    (saved, state): (Option<&DeploymentState>, Option<&State>),
    live: Option<&LiveService>,
) -> Vec<String> {
    let mut warnings = Vec::new();
    if let Some(LiveService::Unknown(error)) = live {
        warnings.push(format!(
            "{}: ECS could not be asked whether service {} already exists ({error}); apply reads it again and changes no service it did not create or adopt in the plan",
            deployment.address,
            deployment
                .ecs_settings(environment)
                .and_then(|c| c.service_name)
                .unwrap_or_default()
        ));
    }
    let Some(saved) = saved else {
        return warnings;
    };
    if let Some(waiting) = saved
        .waiting_approval()
        .filter(|w| w.version == deployment.service.version)
    {
        warnings.push(format!(
            "{} (asked {})",
            crate::state::approval_instructions(
                &deployment.address,
                &waiting.name,
                waiting.after_step
            ),
            waiting.requested_at
        ));
    }
    if let Some(rejected) = saved
        .rejected()
        .filter(|r| r.version == deployment.service.version)
    {
        warnings.push(format!(
            "{}: {}",
            deployment.address,
            crate::state::rejected_message(rejected)
        ));
    }
    if let Some(rolled_back) = saved
        .rolled_back_from
        .as_ref()
        .filter(|r| r.version == deployment.service.version)
    {
        warnings.push(format!(
            "{}: {}",
            deployment.address,
            crate::state::rolled_back_message(rolled_back)
        ));
    }
    let journaled =
        state.is_some_and(|s| s.journal.iter().any(|e| e.deployment == deployment.address));
    if saved.status == DeploymentStatus::InProgress && !journaled {
        warnings.push(format!(
            "{}: an earlier apply did not finish (state says in progress); the plan treats unfinished hosts as pending",
            deployment.address
        ));
    }
    warnings
}

/// The change of a deployment state records and the configuration no
/// longer has: slipway stops tracking it.
fn removed_change(address: &str, saved: &DeploymentState, state_name: &str) -> DeploymentChange {
    DeploymentChange {
        promotion: None,
        address: address.to_string(),
        name: address.rsplit('.').next().unwrap_or(address).to_string(),
        service: saved.service.clone(),
        environment: state_name.to_string(),
        rollout: saved.rollout.clone(),
        target: if saved.ecs.is_some() { TargetKind::Ecs } else { TargetKind::Vm },
        action: Action::Destroy,
        version_before: Some(saved.version.clone()),
        version_after: None,
        adopt: None,
        capacity: None,
        artifact: None,
        reasons: vec![Reason {
            kind: ReasonKind::RemovedFromConfig,
            summary: "no longer in the configuration: slipway stops tracking it (hosts and services are left running)".into(),
            diff: None,
        }],
    }
}

/// The changes in the order the schedule runs them, then the others.
fn in_schedule_order(
    schedule: &Schedule,
    mut changes: BTreeMap<String, DeploymentChange>,
) -> Vec<DeploymentChange> {
    let mut ordered: Vec<DeploymentChange> = Vec::new();
    for wave in &schedule.waves {
        for scheduled in &wave.deployments {
            if let Some(change) = changes.remove(&scheduled.address) {
                ordered.push(change);
            }
        }
    }
    ordered.extend(changes.into_values());
    ordered
}

/// How many changes of each action the plan has.
fn summarize(changes: &[DeploymentChange]) -> Summary {
    let mut summary = Summary::default();
    for change in changes {
        match change.action {
            Action::Create => summary.create += 1,
            Action::Update => summary.update += 1,
            Action::NoOp => summary.no_op += 1,
            Action::Destroy => summary.destroy += 1,
        }
    }
    summary
}

/// The state (serial, lineage) of every environment the plan covers, which
/// a saved plan is checked against.
fn environment_bases(
    config: &Config,
    states: &States,
    options: &PlanOptions,
) -> Vec<EnvironmentBasis> {
    environments_needed(config)
        .into_iter()
        .chain(states.keys().cloned())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .filter(|name| options.includes(name))
        .map(|name| {
            let state = states.get(&name).and_then(Option::as_ref);
            EnvironmentBasis {
                state_serial: state.map(|s| s.serial),
                state_lineage: state.map(|s| s.lineage.clone()),
                name,
            }
        })
        .collect()
}

/// Autoscaling an interrupted apply left suspended for a deployment that is
/// no longer in the configuration: no apply of it will restore it, so the
/// plan says how to.
fn suspended_scaling_left_warning(address: &str, left: &crate::state::ScalingSuspension) -> String {
    let flag = |on: bool| if on { "true" } else { "false" };
    format!(
        "{address}: autoscaling of {} was left suspended by an interrupted apply, and {address} is no longer in the configuration, so no apply restores it; restore it with `aws application-autoscaling register-scalable-target --service-namespace ecs --scalable-dimension ecs:service:DesiredCount --resource-id {} --suspended-state DynamicScalingInSuspended={},DynamicScalingOutSuspended={},ScheduledScalingSuspended={}`, then `slipway state rm {address}`",
        left.resource_id,
        left.resource_id,
        flag(left.before.dynamic_scaling_in),
        flag(left.before.dynamic_scaling_out),
        flag(left.before.scheduled_scaling),
    )
}

/// What plan says about applies of `state` that did not end in order: one
/// killed (its journal has no history entry: which steps are known done,
/// which one is uncertain, what apply will do) or one stopped by an interrupt
/// (its history entry says "interrupted").
pub fn interrupted_apply_warnings(environment: &str, state: &crate::state::State) -> Vec<String> {
    let mut warnings: Vec<String> = state
        .interrupted_applies()
        .into_iter()
        .map(|apply_id| killed_apply_warning(environment, state, &apply_id))
        .collect();
    if let Some(last) = state.history.last().filter(|h| {
        h.operation == HistoryOperation::Apply
            && h.result == HistoryResult::Interrupted
            && h.finished_at.is_some()
    }) {
        let unfinished: Vec<&String> = state
            .deployments
            .iter()
            .filter(|(_, d)| {
                matches!(
                    d.status,
                    DeploymentStatus::Partial | DeploymentStatus::InProgress
                ) && d.waiting_approval().is_none()
            })
            .map(|(address, _)| address)
            .collect();
        if !unfinished.is_empty() {
            warnings.push(format!(
                "environment {environment}: apply {} was interrupted at {} after recording its steps in flight; `slipway apply` continues the rollout of {}",
                last.apply_id,
                last.finished_at.as_deref().unwrap_or(""),
                unfinished
                    .iter()
                    .map(|a| a.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    warnings
}

/// What plan says about the killed apply `apply_id` of `state`: the steps
/// known done, re-checked, taken over and uncertain, and what the next apply
/// does about them.
fn killed_apply_warning(environment: &str, state: &crate::state::State, apply_id: &str) -> String {
    let entries: Vec<&crate::state::JournalEntry> = state
        .journal
        .iter()
        .filter(|e| e.apply_id == apply_id)
        .collect();
    let started = entries.first().map_or("", |e| e.started_at.as_str());
    let not_done = |e: &&&crate::state::JournalEntry| e.ended_as(StepOutcome::NotDone);
    let rechecked: Vec<String> = entries
        .iter()
        .filter(not_done)
        .map(|e| e.describe())
        .collect();
    // Closed by a later apply that could not tell whether it happened.
    let superseded = |e: &&&crate::state::JournalEntry| e.ended_as(StepOutcome::Superseded);
    let taken_over: Vec<String> = entries
        .iter()
        .filter(superseded)
        .map(|e| e.describe())
        .collect();
    let done: Vec<String> = entries
        .iter()
        .filter(|e| e.finished_at.is_some() && !not_done(e) && !superseded(e))
        .map(|e| {
            let result = e
                .result
                .as_ref()
                .map_or_else(|| StepOutcome::Done.to_string(), ToString::to_string);
            format!("{} ({result})", e.describe())
        })
        .collect();
    let uncertain: Vec<&&crate::state::JournalEntry> =
        entries.iter().filter(|e| e.finished_at.is_none()).collect();
    // One line per step, so that a long rollout stays readable.
    let list =
        |items: &[String]| -> String { items.iter().map(|i| format!("\n  - {i}")).collect() };
    let mut text = format!(
        "environment {environment}: apply {apply_id} (started {started}) was interrupted and did not record its end."
    );
    if done.is_empty() {
        text.push_str("\nNo step is known done.");
    } else {
        text.push_str(&format!("\nKnown done:{}", list(&done)));
    }
    if !rechecked.is_empty() {
        text.push_str(&format!(
            "\nFound not done when a later apply re-checked them:{}",
            list(&rechecked)
        ));
    }
    if !taken_over.is_empty() {
        text.push_str(&format!(
            "\nNot known done, taken over by a later apply that ran its own step on the host:{}",
            list(&taken_over)
        ));
    }
    if uncertain.is_empty() {
        text.push_str("\nNo step is uncertain.");
    } else {
        let described: Vec<String> = uncertain
            .iter()
            .map(|e| format!("{} (started {})", e.describe(), e.started_at))
            .collect();
        text.push_str(&format!(
            "\nUncertain (started, may or may not have happened):{}",
            list(&described)
        ));
    }
    text.push('\n');
    // A deployment whose last step in that apply is a rollback was being
    // rolled back when the apply was killed.
    let rolling_back: Vec<&&crate::state::JournalEntry> = entries
        .iter()
        .filter(|e| {
            e.action == JournalAction::Rollback
                && !entries.iter().any(|later| {
                    later.deployment == e.deployment
                        && later.seq > e.seq
                        && later.action != JournalAction::Rollback
                })
        })
        .collect();
    if !rolling_back.is_empty() {
        let mut what = Vec::new();
        if rolling_back.iter().any(|e| e.host.is_some()) {
            what.push(
                "every host it moved and did not put back returns to the release it served before",
            );
        }
        if rolling_back.iter().any(|e| e.host.is_none()) {
            what.push("all traffic goes back to the ECS service that served before and the new service is removed");
        }
        let apply_does = if rolling_back.iter().all(|e| e.finished_at.is_some()) {
            "That apply had rolled back after a failed step: `slipway apply` (once that apply's lock is released with `slipway force-unlock`, or taken over because its process is gone from this machine) records the rollback's end".to_string()
        } else {
            format!(
                "That apply was rolling back after a failed step: `slipway apply` (once that apply's lock is released with `slipway force-unlock`, or taken over because its process is gone from this machine) finishes the rollback: {}",
                what.join("; ")
            )
        };
        text.push_str(&format!("{apply_does}, and nothing new is deployed"));
        return text;
    }
    let checks: Vec<String> = uncertain
        .iter()
        .map(|e| match (&e.host, e.action) {
            (Some(host), JournalAction::Deploy) => format!("reads {host}'s release marker: if it names apply {apply_id} and {}, the update had finished and is only recorded, otherwise {host} is updated again", e.version),
            (Some(host), _) => format!("counts {host} as not done"),
            (None, JournalAction::Traffic) => match e.traffic_percent() {
                Some(percent) => format!(
                    "reads the listener of {}: if it sends {percent}% to {} as step {} meant to, the shift had happened and is only recorded; if it still has the weights state recorded, step {} runs again",
                    e.deployment,
                    e.version_moved_to(),
                    e.step,
                    e.step
                ),
                None => format!("reads the listener of {} as it is now", e.deployment),
            },
            (None, _) => format!("reads {} as it runs now (live services and listener weights)", e.deployment),
        })
        .collect();
    text.push_str("`slipway apply` (once that apply's lock is released with `slipway force-unlock`, or taken over because its process is gone from this machine) ");
    if !checks.is_empty() {
        text.push_str(&format!("first:{}\nthen ", list(&checks)));
    }
    text.push_str("continues the same rollout with the steps that remain; a step known done is not run again.");
    text
}

/// `promote_from`: the version must be deployed and verified upstream. When
/// state says so, `None`. When the upstream deployment is in this plan and
/// moves to the version first, the promotion is left to apply (`Some`: the
/// pipeline in one apply). Otherwise an error.
fn check_promotion(
    config: &Config,
    deployment: &Deployment,
    states: &States,
    changes: &BTreeMap<String, DeploymentChange>,
    diagnostics: &mut Diagnostics,
) -> Option<PendingPromotion> {
    let source = deployment.promote_from.as_ref()?;
    let source_deployment = config.deployments.get(&source.address)?;
    let version = &deployment.service.version;
    let source_state_name = environment_state_name(&source_deployment.environment);
    let recorded = states
        .get(&source_state_name)
        .and_then(Option::as_ref)
        .and_then(|s| s.deployments.get(&source.address));
    let problem = match recorded {
        None => Some(format!("{} has never been applied", source.address)),
        Some(saved) if saved.version != *version => Some(format!(
            "{} has {} recorded, not {version}",
            source.address, saved.version
        )),
        Some(saved) if saved.status != DeploymentStatus::Deployed => Some(
            format!(
                "{} is not fully deployed with {version} (state says {:?})",
                source.address, saved.status
            )
            .to_lowercase(),
        ),
        Some(saved) if !saved.verified => Some(format!(
            "{version} on {} did not pass verification",
            source.address
        )),
        Some(_) => None,
    };
    let problem = problem?;
    let moves_first = changes.get(&source.address).is_some_and(|c| {
        matches!(c.action, Action::Create | Action::Update)
            && c.version_after.as_deref() == Some(version.as_str())
    });
    if moves_first {
        return Some(PendingPromotion {
            from: source.address.clone(),
            environment: source_state_name,
            version: version.clone(),
        });
    }
    let in_plan = changes.contains_key(&source.address);
    let together = if in_plan {
        String::new()
    } else {
        format!(
            ", or plan both together (add -environment {}): apply then promotes when it verifies",
            environment_state_name(&source_deployment.environment)
        )
    };
    diagnostics.push(
        Diagnostic::error(
            "promotion",
            format!("{} cannot get version {version}: {problem}", deployment.address),
        )
        .at(source.span)
        .label("versions must pass here first")
        .help(format!(
            "apply {} with {version} first (its state must record it as deployed and verified){together}",
            source.address
        )),
    );
    None
}

fn sha(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// Digest of a rollout policy, so plan can tell when it changed.
pub fn rollout_digest(rollout: Option<&Rollout>) -> String {
    let json = rollout
        .map(|r| serde_json::to_string(r).unwrap_or_default())
        .unwrap_or_else(|| "all_at_once".into());
    sha(&json)
}

/// A unified diff of two texts with headers, or `None` when equal.
pub fn unified_diff(before: &str, after: &str, label: &str) -> Option<String> {
    if before == after {
        return None;
    }
    let diff = TextDiff::from_lines(before, after);
    Some(
        diff.unified_diff()
            .context_radius(3)
            .header(&format!("{label} (saved)"), &format!("{label} (planned)"))
            .to_string(),
    )
}

/// Masked config files by destination, as they will be stored.
pub fn desired_config_files(config: &Config, deployment: &Deployment) -> BTreeMap<String, String> {
    deployment
        .service
        .vm
        .iter()
        .flat_map(|vm| vm.config_files.iter())
        .map(|f| (f.destination.clone(), config.mask(&f.content)))
        .collect()
}

pub fn desired_systemd_unit(config: &Config, deployment: &Deployment) -> Option<String> {
    let vm = deployment.service.vm.as_ref()?;
    let unit = vm.systemd_unit.as_ref()?;
    Some(config.mask(&systemd_unit_text(vm, unit, &unit.name)))
}

pub fn desired_task_definition(
    config: &Config,
    deployment: &Deployment,
) -> Option<serde_json::Value> {
    let ecs = deployment.service.ecs.as_ref()?;
    let definition = task_definition(ecs);
    Some(config.mask_json(definition))
}

/// Rollout digests, computed once per rollout rather than per deployment.
#[derive(Default)]
struct RolloutDigests {
    by_rollout: std::cell::RefCell<BTreeMap<Option<String>, std::rc::Rc<str>>>,
}

impl RolloutDigests {
    fn rollout(&self, config: &Config, deployment: &Deployment) -> std::rc::Rc<str> {
        self.by_rollout
            .borrow_mut()
            .entry(deployment.rollout.clone())
            .or_insert_with(|| rollout_digest(config.rollout_of(deployment)).into())
            .clone()
    }
}

/// The artifact `deployment` sends to hosts, pinned to its digest (the
/// configured sha256, a local artifact's, or what plan resolved).
fn artifact_pin(config: &Config, deployment: &Deployment) -> Option<ArtifactPin> {
    let artifact = deployment.service.artifact.as_ref()?;
    Some(ArtifactPin {
        source: config.mask(&crate::artifact::display_source(&artifact.source)),
        sha256: artifact.sha256.as_ref()?.to_ascii_lowercase(),
        resolved_by_plan: artifact.pinned_by_plan,
        image_digest: artifact.image_digest.clone(),
        delivery: artifact.delivery(),
    })
}

/// How many tasks an ECS deployment runs ([`super::capacity`]), computed once
/// per deployment: the planner's count for its desired-count reasons and the
/// capacity a creating or updating plan carries. The new version replaces a
/// service that serves (state records one, or the plan adopts the live one)
/// in place, or beside it for a rollout that moves by steps.
fn ecs_capacity(
    config: &Config,
    deployment: &Deployment,
    environment: &Environment,
    saved: Option<&DeploymentState>,
    live: Option<&LiveService>,
    live_capacity: Option<&LiveCapacity>,
) -> PlannedCapacity {
    let serves =
        saved.is_some_and(|s| s.ecs.is_some()) || matches!(live, Some(LiveService::Exists(_)));
    let moves_by_steps = config
        .rollout_of(deployment)
        .is_some_and(|r| r.strategy.moves_by_steps());
    let replacement = match (serves, moves_by_steps) {
        (false, _) => super::capacity::Replacement::Nothing,
        (true, false) => super::capacity::Replacement::InPlace,
        (true, true) => super::capacity::Replacement::SideBySide,
    };
    super::capacity::planned_capacity(
        desired_count(deployment, environment),
        live_capacity,
        replacement,
    )
}

/// `capacity` is the deployment's [`ecs_capacity`], `None` for a VM
/// deployment.
fn plan_deployment(
    config: &Config,
    deployment: &Deployment,
    environment: &Environment,
    saved: Option<&DeploymentState>,
    (live, capacity): (Option<&LiveService>, Option<&PlannedCapacity>),
    digests: &RolloutDigests,
) -> (DeploymentChange, Vec<String>) {
    let is_ecs = deployment.runs_on_ecs(environment);
    let hosts: Vec<String> = if is_ecs {
        Vec::new()
    } else {
        environment
            .vm_hosts
            .as_ref()
            .map(|v| v.hosts.clone())
            .unwrap_or_default()
    };
    let version = deployment.service.version.clone();
    let mut change = new_change(config, deployment, environment, saved, is_ecs);
    let adopted = match live {
        Some(LiveService::Exists(service)) if is_ecs && saved.is_none_or(|s| s.ecs.is_none()) => {
            Some(service)
        }
        _ => None,
    };
    if let Some(service) = adopted {
        change
            .reasons
            .extend(adoption_reasons(config, deployment, service, capacity));
        change.adopt = Some(service.clone());
        return (change, hosts);
    }
    let Some(saved) = saved else {
        change.reasons.push(new_deployment_reason(
            config,
            deployment,
            environment,
            is_ecs,
            &hosts,
        ));
        return (change, hosts);
    };

    let mut found = Reasons::default();
    artifact_reasons(&mut found, deployment, saved);
    config_reasons(&mut found, config, deployment, saved);
    if is_ecs {
        ecs_reasons(&mut found, config, deployment, saved, capacity);
    } else {
        host_reasons(&mut found, config, deployment, saved, &hosts);
    }
    if saved.rollout_digest.as_deref() != Some(&*digests.rollout(config, deployment)) {
        found.push(
            ReasonKind::RolloutPolicy,
            "rollout policy changed".into(),
            None,
            false,
        );
    }
    let whole = found.whole;
    change.reasons = found.list;
    let nothing_on_targets = change
        .reasons
        .iter()
        .all(|r| r.kind == ReasonKind::RolloutPolicy);
    if nothing_on_targets
        && saved.version == version
        && matches!(
            saved.status,
            DeploymentStatus::Partial | DeploymentStatus::InProgress
        )
    {
        let why = match saved.waiting_approval() {
            Some(waiting) => format!("waits for approval \"{}\"", waiting.name),
            None => "stopped before its end".to_string(),
        };
        change.reasons.push(Reason {
            kind: ReasonKind::RolloutUnfinished,
            summary: format!(
                "every target is on {version}, but the rollout {why}; apply records its end"
            ),
            diff: None,
        });
    }
    let rollout_only = change
        .reasons
        .iter()
        .all(|r| r.kind == ReasonKind::RolloutPolicy);
    change.action = if change.reasons.is_empty() || rollout_only {
        // A changed policy alone changes nothing on the targets; it is shown
        // as a reason and recorded at the next apply.
        if rollout_only && !change.reasons.is_empty() {
            Action::Update
        } else {
            Action::NoOp
        }
    } else {
        Action::Update
    };
    let targets = if whole || is_ecs {
        hosts
    } else {
        let digest = desired_config_digest(config, deployment);
        let sha256 = desired_sha256(deployment);
        hosts
            .into_iter()
            .filter(|h| {
                saved
                    .hosts
                    .get(h)
                    .is_none_or(|s| !on_pair(s, &version, &digest, sha256))
            })
            .collect()
    };
    (change, targets)
}

/// The change of a deployment before its reasons are known: a create, until
/// the reasons say otherwise.
fn new_change(
    config: &Config,
    deployment: &Deployment,
    environment: &Environment,
    saved: Option<&DeploymentState>,
    is_ecs: bool,
) -> DeploymentChange {
    DeploymentChange {
        promotion: None,
        address: deployment.address.clone(),
        name: deployment.name.clone(),
        service: deployment.service.address.clone(),
        environment: environment.name.clone(),
        rollout: deployment.rollout.clone(),
        target: if is_ecs {
            TargetKind::Ecs
        } else {
            TargetKind::Vm
        },
        action: Action::Create,
        version_before: saved.map(|s| s.version.clone()),
        version_after: Some(deployment.service.version.clone()),
        artifact: if is_ecs {
            None
        } else {
            artifact_pin(config, deployment)
        },
        reasons: Vec::new(),
        adopt: None,
        capacity: None,
    }
}

/// The reason of a deployment state has no record of: what it creates.
fn new_deployment_reason(
    config: &Config,
    deployment: &Deployment,
    environment: &Environment,
    is_ecs: bool,
    hosts: &[String],
) -> Reason {
    let version = &deployment.service.version;
    let what = if is_ecs {
        format!(
            "ECS service {}",
            deployment
                .ecs_settings(environment)
                .and_then(|c| c.service_name)
                .unwrap_or_default()
        )
    } else {
        format!(
            "{} host{}",
            hosts.len(),
            if hosts.len() == 1 { "" } else { "s" }
        )
    };
    let steps = config
        .rollout_of(deployment)
        .filter(|r| is_ecs && r.strategy.moves_by_steps());
    let how = match steps {
        Some(rollout) => format!(
            "; nothing serves yet, so the {} steps do not apply: the new service takes all traffic at once, then the rollout's bake and gates are judged before it is recorded verified (its approvals are not asked; a failure removes the service)",
            rollout.strategy
        ),
        None => String::new(),
    };
    Reason {
        kind: ReasonKind::NewDeployment,
        summary: format!("new deployment: {version} to {what}{how}"),
        diff: None,
    }
}

/// The reasons found for a recorded deployment, in the order found, and
/// whether one of them affects every target (not only the pending hosts).
#[derive(Default)]
struct Reasons {
    list: Vec<Reason>,
    whole: bool,
}

impl Reasons {
    fn push(&mut self, kind: ReasonKind, summary: String, diff: Option<String>, affects_all: bool) {
        self.whole |= affects_all;
        self.list.push(Reason {
            kind,
            summary,
            diff,
        });
    }
}

/// A new version, or the same version with another artifact digest.
fn artifact_reasons(found: &mut Reasons, deployment: &Deployment, saved: &DeploymentState) {
    let version = &deployment.service.version;
    if saved.version != *version {
        found.push(
            ReasonKind::ArtifactVersion,
            format!("version {} → {version}", saved.version),
            None,
            true,
        );
    }
    let digest = deployment
        .service
        .artifact
        .as_ref()
        .and_then(|a| a.sha256.clone());
    if saved.artifact_sha256 != digest && saved.version == *version {
        found.push(
            ReasonKind::ArtifactDigest,
            format!(
                "artifact digest {} → {}",
                saved.artifact_sha256.as_deref().unwrap_or("(none)"),
                digest.as_deref().unwrap_or("(none)")
            ),
            None,
            true,
        );
    }
}

/// Config files added, removed or changed (a sensitive value's digest
/// included), and the systemd unit.
fn config_reasons(
    found: &mut Reasons,
    config: &Config,
    deployment: &Deployment,
    saved: &DeploymentState,
) {
    let files = desired_config_files(config, deployment);
    let destinations: BTreeSet<&String> = files.keys().chain(saved.config_files.keys()).collect();
    for destination in destinations {
        let before = saved.config_files.get(destination);
        let after = files.get(destination);
        let summary = match (before, after) {
            (None, Some(_)) => format!("config file {destination} added"),
            (Some(_), None) => format!("config file {destination} removed"),
            (Some(b), Some(a)) if b != a => format!("config file {destination} changed"),
            _ => continue,
        };
        let diff = unified_diff(
            before.map_or("", String::as_str),
            after.map_or("", String::as_str),
            destination,
        );
        found.push(ReasonKind::ConfigFile, summary, diff, true);
    }
    // A file whose masked text is unchanged may still hold a changed secret:
    // its digest in state tells (see config::secret_digest).
    for (destination, content) in crate::config::secret_digest::sensitive_files(config, deployment)
    {
        let masked_equal = saved.config_files.get(destination) == files.get(destination);
        let stored = saved.sensitive_digests.get(destination);
        if masked_equal
            && stored.and_then(|d| crate::config::secret_digest::matches(d, content)) == Some(false)
        {
            found.push(
                ReasonKind::ConfigFile,
                format!("config file {destination} changed (sensitive value changed)"),
                None,
                true,
            );
        }
    }
    let unit = desired_systemd_unit(config, deployment);
    if unit != saved.systemd_unit {
        let name = deployment
            .service
            .vm
            .as_ref()
            .and_then(|v| v.systemd_unit.as_ref())
            .map_or("systemd unit", |u| u.name.as_str());
        let diff = unified_diff(
            saved.systemd_unit.as_deref().unwrap_or(""),
            unit.as_deref().unwrap_or(""),
            name,
        );
        found.push(
            ReasonKind::SystemdUnit,
            format!("systemd unit {name} changed"),
            diff,
            true,
        );
    }
}

/// The task definition and the desired count of a recorded ECS service
/// (`capacity`: the deployment's [`ecs_capacity`]).
fn ecs_reasons(
    found: &mut Reasons,
    config: &Config,
    deployment: &Deployment,
    saved: &DeploymentState,
    capacity: Option<&PlannedCapacity>,
) {
    if let (Some(desired), Some(ecs_state)) =
        (desired_task_definition(config, deployment), &saved.ecs)
    {
        if desired != ecs_state.task_definition {
            let before =
                serde_json::to_string_pretty(&ecs_state.task_definition).unwrap_or_default();
            let after = serde_json::to_string_pretty(&desired).unwrap_or_default();
            let fields = changed_fields(&ecs_state.task_definition, &desired);
            found.push(
                ReasonKind::TaskDefinition,
                format!("task definition changed: {}", fields.join(", ")),
                unified_diff(&(before + "\n"), &(after + "\n"), "task definition"),
                true,
            );
        }
        if let Some(capacity) = capacity {
            // The count ECS has now (state's when it was not read).
            let before = capacity.live.unwrap_or(ecs_state.desired_count);
            let count = capacity.tasks;
            if count != before {
                found.push(
                    ReasonKind::DesiredCount,
                    format!("desired count {before} → {count}"),
                    None,
                    false,
                );
            }
        }
    }
}

/// Hosts added to or removed from the environment, and hosts not yet on the
/// version's release pair.
fn host_reasons(
    found: &mut Reasons,
    config: &Config,
    deployment: &Deployment,
    saved: &DeploymentState,
    hosts: &[String],
) {
    let version = &deployment.service.version;
    let desired: BTreeSet<&String> = hosts.iter().collect();
    let recorded: BTreeSet<&String> = saved.hosts.keys().collect();
    let added: Vec<&str> = desired.difference(&recorded).map(|h| h.as_str()).collect();
    let removed: Vec<&str> = recorded.difference(&desired).map(|h| h.as_str()).collect();
    if !added.is_empty() {
        found.push(
            ReasonKind::HostsAdded,
            format!("hosts added: {}", added.join(", ")),
            None,
            false,
        );
    }
    if !removed.is_empty() {
        found.push(
            ReasonKind::HostsRemoved,
            format!(
                "hosts removed (slipway stops tracking them): {}",
                removed.join(", ")
            ),
            None,
            false,
        );
    }
    let digest = desired_config_digest(config, deployment);
    let sha256 = desired_sha256(deployment);
    let pending: Vec<&str> = hosts
        .iter()
        .filter(|h| {
            saved
                .hosts
                .get(*h)
                .is_some_and(|s| !on_pair(s, version, &digest, sha256))
        })
        .map(String::as_str)
        .collect();
    if !pending.is_empty() && saved.version == *version {
        found.push(
            ReasonKind::HostsPending,
            format!(
                "{} of {} hosts not yet on {version}: {}",
                pending.len(),
                hosts.len(),
                pending.join(", ")
            ),
            None,
            false,
        );
    }
}

/// A reason when the listener's `live` weights are not the ones state
/// recorded for `ecs` (every recorded target group at its weight, any other
/// at 0): someone changed them, and apply sets them back.
fn listener_weights_reason(
    ecs: &crate::state::EcsState,
    live: &BTreeMap<String, u32>,
) -> Option<Reason> {
    if ecs.weights.is_empty() {
        return None;
    }
    // A rollout killed while it brought the serving service to the new
    // version: all traffic on either side is a point that rollout passes.
    if let Some(canary) = ecs.canary.as_ref().filter(|c| c.promoted) {
        let all_on = |group: &str| {
            live.iter()
                .all(|(g, w)| if g == group { *w == 100 } else { *w == 0 })
        };
        if all_on(&canary.target_group) || ecs.target_group.as_deref().is_some_and(all_on) {
            return None;
        }
    }
    let recorded_match = ecs
        .weights
        .iter()
        .all(|(group, weight)| live.get(group).copied().unwrap_or(0) == *weight);
    let others_zero = live
        .iter()
        .filter(|(group, _)| !ecs.weights.contains_key(*group))
        .all(|(_, weight)| *weight == 0);
    if recorded_match && others_zero {
        return None;
    }
    let show = |weights: &BTreeMap<String, u32>| -> String {
        weights
            .iter()
            .map(|(group, weight)| format!("{} {weight}", target_group_name(group)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    Some(Reason {
        kind: ReasonKind::ListenerWeights,
        summary: format!(
            "listener weights changed outside slipway: {}, state recorded {}; apply sets them back to the recorded weights first",
            show(live),
            show(&ecs.weights)
        ),
        diff: None,
    })
}

/// The name in a target group's ARN (`...:targetgroup/NAME/ID`), else the ARN.
fn target_group_name(arn: &str) -> &str {
    arn.split_once(":targetgroup/")
        .and_then(|(_, rest)| rest.split('/').next())
        .unwrap_or(arn)
}

/// The last part of an ARN (`family:revision` of a task definition).
fn short_arn(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// The reasons of a deployment that adopts `service`: what it runs now (and
/// so what a failed deployment puts back), then what changes on it.
fn adoption_reasons(
    config: &Config,
    deployment: &Deployment,
    service: &AdoptedService,
    capacity: Option<&PlannedCapacity>,
) -> Vec<Reason> {
    let strategy = config
        .rollout_of(deployment)
        .map_or(crate::config::Strategy::AllAtOnce, |r| r.strategy);
    let after = if strategy.moves_by_steps() {
        format!(
            "; the new version starts beside it in a temporary service, {}, and takes its traffic step by step; at the end {} is updated to it in place, takes all traffic back and keeps its name, and {} is removed",
            canary_service_name(&service.service, &service.service),
            service.service,
            canary_service_name(&service.service, &service.service),
        )
    } else {
        String::new()
    };
    let mut reasons = vec![Reason {
        kind: ReasonKind::AdoptService,
        summary: format!(
            "adopt existing service {}: task definition {}, {} task{} (not in state; on failure it goes back to {} with {} task{}){after}",
            service.service,
            short_arn(&service.task_definition_arn),
            service.desired_count,
            if service.desired_count == 1 { "" } else { "s" },
            short_arn(&service.task_definition_arn),
            service.desired_count,
            if service.desired_count == 1 { "" } else { "s" },
        ),
        diff: None,
    }];
    if let Some(desired) = desired_task_definition(config, deployment) {
        if desired != service.task_definition {
            let before = serde_json::to_string_pretty(&service.task_definition).unwrap_or_default();
            let after = serde_json::to_string_pretty(&desired).unwrap_or_default();
            reasons.push(Reason {
                kind: ReasonKind::TaskDefinition,
                summary: format!(
                    "task definition changed: {}",
                    changed_fields(&service.task_definition, &desired).join(", ")
                ),
                diff: unified_diff(&(before + "\n"), &(after + "\n"), "task definition"),
            });
        }
    }
    if let Some(count) = capacity.map(|c| c.tasks) {
        if count != service.desired_count && !strategy.moves_by_steps() {
            reasons.push(Reason {
                kind: ReasonKind::DesiredCount,
                summary: format!("desired count {} → {count}", service.desired_count),
                diff: None,
            });
        }
    }
    reasons
}

/// The config half of the release pair the configuration asks for (as state
/// records it: [`crate::state::config_digest`]).
fn desired_config_digest(config: &Config, deployment: &Deployment) -> String {
    crate::state::config_digest(
        &desired_config_files(config, deployment),
        desired_systemd_unit(config, deployment).as_deref(),
    )
}

/// Whether a host's record says it is deployed on the pair (`version` built
/// as the artifact `sha256`, config `digest`). A record without a config
/// digest (written before pairs were recorded) is judged by its version. An
/// update of the config alone that stopped part-way leaves hosts on the
/// version with the config before: those are not on the pair. Likewise an
/// update to a rebuilt artifact of the same version (another sha256) that
/// stopped part-way leaves hosts on the earlier build: those are not on it
/// either (a record without an artifact digest is judged without it).
fn on_pair(
    record: &crate::state::HostState,
    version: &str,
    digest: &str,
    sha256: Option<&str>,
) -> bool {
    record.status == HostStatus::Deployed
        && record.version == version
        && record.config_digest.as_deref().is_none_or(|d| d == digest)
        && record
            .artifact_sha256
            .as_deref()
            .zip(sha256)
            .is_none_or(|(recorded, desired)| recorded == desired)
}

/// The sha256 of the artifact the configuration deploys, when it is known
/// (pinned, or a local source's packed form).
fn desired_sha256(deployment: &Deployment) -> Option<&str> {
    deployment
        .service
        .artifact
        .as_ref()
        .and_then(|a| a.sha256.as_deref())
}

pub fn changed_fields(before: &serde_json::Value, after: &serde_json::Value) -> Vec<String> {
    fn walk(
        path: &str,
        before: &serde_json::Value,
        after: &serde_json::Value,
        out: &mut Vec<String>,
    ) {
        match (before, after) {
            (serde_json::Value::Object(b), serde_json::Value::Object(a)) => {
                let keys: BTreeSet<&String> = b.keys().chain(a.keys()).collect();
                for key in keys {
                    let null = serde_json::Value::Null;
                    let child = if path.is_empty() {
                        key.clone()
                    } else {
                        format!("{path}.{key}")
                    };
                    walk(
                        &child,
                        b.get(key).unwrap_or(&null),
                        a.get(key).unwrap_or(&null),
                        out,
                    );
                }
            }
            (serde_json::Value::Array(b), serde_json::Value::Array(a)) if b.len() == a.len() => {
                for (index, (x, y)) in b.iter().zip(a).enumerate() {
                    walk(&format!("{path}[{index}]"), x, y, out);
                }
            }
            (b, a) if b != a => out.push(path.to_string()),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk("", before, after, &mut out);
    out
}

pub fn desired_count(deployment: &Deployment, environment: &Environment) -> u32 {
    deployment
        .ecs_settings(environment)
        .and_then(|c| c.desired_count)
        .unwrap_or(1)
}

/// The configuration's outputs as a plan carries them: a sensitive one
/// without its value.
pub fn output_values(config: &Config) -> Vec<OutputValue> {
    config
        .outputs
        .iter()
        .map(|o| OutputValue {
            name: o.name.clone(),
            value: if o.sensitive {
                serde_json::Value::Null
            } else {
                o.value.clone()
            },
            sensitive: o.sensitive,
        })
        .collect()
}

/// Split `hosts` (the hosts to update) into batches the way Ansible's
/// `serial` does: each entry is a count or a share of all the environment's
/// hosts (`environment_hosts` of them; rounded down, at least one), whether
/// or not they all need the update; the last entry repeats.
pub fn rolling_batches(
    hosts: &[String],
    sizes: &[BatchSize],
    environment_hosts: usize,
) -> Vec<Vec<String>> {
    let total = hosts.len();
    let of = environment_hosts.max(total);
    let size_of = |size: &BatchSize| -> usize {
        match size {
            BatchSize::Count(n) => (*n as usize).max(1),
            BatchSize::Share(share) => share.of(of).max(1),
        }
    };
    let default = [BatchSize::Count(1)];
    let sizes = if sizes.is_empty() {
        &default[..]
    } else {
        sizes
    };
    let mut batches = Vec::new();
    let mut start = 0;
    let mut index = 0;
    while start < total {
        let size = size_of(&sizes[index.min(sizes.len() - 1)]);
        let end = (start + size).min(total);
        batches.push(hosts[start..end].to_vec());
        start = end;
        index += 1;
    }
    batches
}

/// Canary steps over hosts: step `i` brings the cumulative share of hosts to
/// `steps[i]`, rounding up; steps that would add no host are merged forward.
pub fn canary_batches(hosts: &[String], steps: &[Percent]) -> Vec<Vec<String>> {
    let total = hosts.len();
    let mut batches = Vec::new();
    let mut done = 0;
    for step in steps {
        let percent = step.get() as usize;
        let upto = (total * percent).div_ceil(100).min(total);
        if upto > done {
            batches.push(hosts[done..upto].to_vec());
            done = upto;
        }
    }
    if done < total {
        batches.push(hosts[done..].to_vec());
    }
    batches
}

fn schedule(
    config: &Config,
    changes: &BTreeMap<String, DeploymentChange>,
    targets: &BTreeMap<String, Vec<String>>,
    continuing: &BTreeSet<String>,
    (rollbacks, serving): (&BTreeMap<String, String>, &BTreeMap<String, String>),
) -> Schedule {
    let graph = DeploymentGraph::build(config);
    let mut waves: Vec<Vec<String>> = graph
        .waves()
        .into_iter()
        .map(|wave| {
            wave.into_iter()
                .filter(|a| changes.get(a).is_some_and(|c| c.action != Action::NoOp))
                .collect::<Vec<_>>()
        })
        .filter(|wave| !wave.is_empty())
        .collect();
    let destroys: Vec<String> = changes
        .values()
        .filter(|c| c.action == Action::Destroy)
        .map(|c| c.address.clone())
        .collect();
    if !destroys.is_empty() {
        waves.push(destroys);
    }
    Schedule {
        waves: waves
            .iter()
            .enumerate()
            .map(|(index, addresses)| Wave {
                index: index + 1,
                deployments: addresses
                    .iter()
                    .map(|address| {
                        let mut scheduled = scheduled(
                            config,
                            &changes[address],
                            targets.get(address).map_or(&[][..], Vec::as_slice),
                            continuing.contains(address),
                            serving.get(address).map(String::as_str),
                        );
                        scheduled.after = Some(
                            graph
                                .upstream(address)
                                .into_iter()
                                .filter(|a| waves.iter().flatten().any(|s| s == a))
                                .collect(),
                        );
                        if scheduled.on_failure == OnFailure::Rollback {
                            if let Some(text) = rollbacks.get(address) {
                                scheduled.rollback = text.clone();
                            }
                        }
                        scheduled
                    })
                    .collect(),
            })
            .collect(),
    }
}

/// How `change` will run. `continues`: its rollout of this version stopped
/// part-way (at an approval, or paused on a failure) and goes on with the
/// hosts that remain, in the steps they belong to; otherwise the hosts to
/// change make a rollout of their own.
fn scheduled(
    config: &Config,
    change: &DeploymentChange,
    hosts: &[String],
    continues: bool,
    serving: Option<&str>,
) -> ScheduledDeployment {
    let deployment = config.deployments.get(&change.address);
    let rollout = deployment.and_then(|d| config.rollout_of(d));
    let environment = deployment.and_then(|d| config.environment_of(d));
    let strategy = rollout.map_or(Strategy::AllAtOnce, |r| r.strategy);
    let on_failure = rollout.map_or(OnFailure::Rollback, |r| r.on_failure);
    let (Some(deployment), Some(environment)) = (deployment, environment) else {
        return ScheduledDeployment {
            address: change.address.clone(),
            action: change.action,
            strategy: ScheduledStrategy::Remove,
            steps: vec![Step {
                index: 1,
                kind: StepKind::Remove,
                bake: None,
                gates: Vec::new(),
                approval: None,
            }],
            on_failure: OnFailure::Abort,
            rollback: "nothing to roll back: only the record in state is removed".into(),
            needs_approval_before_start: false,
            after: None,
            ends_with: None,
        };
    };
    let kinds = step_kinds(change, deployment, environment, rollout, hosts, continues);
    let health_gates = health_gates(deployment);
    let rollout_gates: Vec<Gate> = rollout
        .map(|r| {
            let has_hosts = change.target == TargetKind::Vm;
            r.verify
                .iter()
                .map(|g| describe_gate(g, has_hosts))
                .collect()
        })
        .unwrap_or_default();
    // Setting the listener back changes nothing that gates would judge.
    let restore_only = change.target == TargetKind::Ecs && only_listener_weights(change);
    let steps = kinds
        .into_iter()
        .map(|(index, kind)| Step {
            index,
            kind,
            bake: rollout
                .and_then(|r| r.bake.clone())
                .filter(|_| !restore_only),
            gates: health_gates
                .iter()
                .chain(rollout_gates.iter())
                .filter(|_| !restore_only)
                .cloned()
                .collect(),
            approval: rollout
                .filter(|_| !(change.target == TargetKind::Ecs && first_service(change)))
                .filter(|_| !restore_only)
                .and_then(|r| {
                    r.approvals
                        .iter()
                        .find(|a| a.after_step as usize == index)
                        .map(|a| a.name.clone())
                }),
        })
        .collect();
    ScheduledDeployment {
        address: change.address.clone(),
        action: change.action,
        strategy: strategy.into(),
        steps,
        rollback: describe_rollback(change, &on_failure, strategy),
        on_failure,
        needs_approval_before_start: environment.protected,
        after: None,
        ends_with: rollout_end(deployment, environment, change, strategy, serving),
    }
}

/// The steps of `change` by number: host batches of a VM rollout (only the
/// hosts that remain; `continues` keeps the batches of the whole
/// environment), traffic shares of a canary or blue/green, or one service
/// update.
fn step_kinds(
    change: &DeploymentChange,
    deployment: &Deployment,
    environment: &Environment,
    rollout: Option<&Rollout>,
    hosts: &[String],
    continues: bool,
) -> Vec<(usize, StepKind)> {
    match change.target {
        TargetKind::Vm => {
            let all: Vec<String> = match &environment.vm_hosts {
                Some(vm_hosts) if continues => vm_hosts.hosts.clone(),
                _ => hosts.to_vec(),
            };
            let environment_hosts = environment.vm_hosts.as_ref().map_or(0, |v| v.hosts.len());
            let batches = match rollout {
                Some(r) if r.strategy == Strategy::Rolling => {
                    rolling_batches(&all, &r.batches, environment_hosts)
                }
                Some(r) if r.strategy == Strategy::Canary => canary_batches(&all, &r.steps),
                _ => vec![all.clone()],
            };
            let remaining: BTreeSet<&String> = hosts.iter().collect();
            batches
                .into_iter()
                .filter(|b| !b.is_empty())
                .enumerate()
                .map(|(i, batch)| {
                    let hosts: Vec<String> = batch
                        .into_iter()
                        .filter(|h| remaining.contains(h))
                        .collect();
                    (i + 1, StepKind::HostBatch { hosts })
                })
                .filter(
                    |(_, kind)| !matches!(kind, StepKind::HostBatch { hosts } if hosts.is_empty()),
                )
                .collect()
        }
        TargetKind::Ecs if only_listener_weights(change) => {
            vec![(1, StepKind::TrafficShift { percent: 100 })]
        }
        TargetKind::Ecs => match rollout {
            // Nothing serves yet: there is no traffic to move step by step.
            Some(r) if r.strategy.moves_by_steps() && first_service(change) => {
                vec![(1, StepKind::TrafficShift { percent: 100 })]
            }
            Some(r) if r.strategy.moves_by_steps() => {
                let steps = if r.steps.is_empty() {
                    vec![Percent::ALL]
                } else {
                    r.steps.clone()
                };
                steps
                    .iter()
                    .enumerate()
                    .map(|(i, share)| {
                        let percent = share.get();
                        (i + 1, StepKind::TrafficShift { percent })
                    })
                    .collect()
            }
            _ => vec![(
                1,
                StepKind::ServiceUpdate {
                    desired_count: change
                        .capacity
                        .as_ref()
                        .map_or_else(|| desired_count(deployment, environment), |c| c.tasks),
                },
            )],
        },
    }
}

/// The VM service's health checks, as the plan lists them.
fn health_gates(deployment: &Deployment) -> Vec<Gate> {
    deployment
        .service
        .vm
        .iter()
        .flat_map(|vm| vm.health.iter())
        .map(|h| Gate {
            name: h.name.clone(),
            kind: "health".into(),
            detail: match (&h.url, &h.command) {
                (Some(url), _) => format!(
                    "GET {url} on each host expects {}",
                    h.expect_status.unwrap_or(200)
                ),
                (_, Some(command)) => format!("`{command}` on each host"),
                _ => String::new(),
            },
        })
        .collect()
}

/// The ECS service of a traffic slot for a first rollout, when nothing
/// serves yet: slot 0 is the configured service name, slot 1 the same name
/// with `-green`.
pub fn slot_service_name(base: &str, slot: usize) -> String {
    if slot == 0 {
        base.to_string()
    } else {
        format!("{base}-green")
    }
}

/// The temporary service a canary or blue/green rollout runs the new
/// version in, beside `serving` (which keeps its name for good): the
/// configured name with `-green`, or the configured name itself when the
/// serving service is the `-green` one (a service an earlier slipway
/// alternated names on).
pub fn canary_service_name(configured: &str, serving: &str) -> String {
    let green = slot_service_name(configured, 1);
    if serving == green {
        configured.to_string()
    } else {
        green
    }
}

/// How an ECS canary or blue/green that moves traffic ends: the serving
/// service updated in place beside the temporary one (see
/// [`RolloutEnd::UpdateInPlace`]). `None` for everything else: a rolling
/// update, a first rollout (its new service is the one that serves), a
/// listener set back alone.
fn rollout_end(
    deployment: &Deployment,
    environment: &Environment,
    change: &DeploymentChange,
    strategy: Strategy,
    serving: Option<&str>,
) -> Option<RolloutEnd> {
    let serving = serving?;
    if change.target != TargetKind::Ecs
        || !strategy.moves_by_steps()
        || first_service(change)
        || only_listener_weights(change)
    {
        return None;
    }
    let configured = deployment
        .ecs_settings(environment)
        .and_then(|c| c.service_name)?;
    Some(RolloutEnd::UpdateInPlace {
        service: serving.to_string(),
        temporary: canary_service_name(&configured, serving),
    })
}

/// An ECS deployment whose only change is a listener to set back (a changed
/// rollout policy and what the rollout runs with aside): apply sets the
/// weights and nothing else.
fn only_listener_weights(change: &DeploymentChange) -> bool {
    change
        .reasons
        .iter()
        .any(|r| r.kind == ReasonKind::ListenerWeights)
        && change.reasons.iter().all(|r| {
            matches!(
                r.kind,
                ReasonKind::ListenerWeights | ReasonKind::RolloutPolicy | ReasonKind::Capacity
            )
        })
}

/// An ECS deployment that creates its service: nothing served before it
/// (no record in state, nothing adopted).
fn first_service(change: &DeploymentChange) -> bool {
    change.target == TargetKind::Ecs
        && change.adopt.is_none()
        && change
            .reasons
            .iter()
            .any(|r| r.kind == ReasonKind::NewDeployment)
}

fn describe_gate(gate: &crate::config::Gate, has_hosts: bool) -> Gate {
    let mut detail = String::new();
    let kind = if let Some(p) = &gate.prometheus {
        detail.push_str(&format!(
            "query `{}` at {}",
            p.query,
            crate::metrics::redact_address(&p.address)
        ));
        "prometheus"
    } else if let Some(h) = &gate.http {
        detail.push_str(&format!(
            "GET {} expects {}",
            h.url,
            h.expect_status.unwrap_or(200)
        ));
        if let Some(body) = &h.body_contains {
            detail.push_str(&format!(", body contains \"{body}\""));
        }
        "http"
    } else if let Some(c) = &gate.command {
        detail.push_str(&format!("`{}` on {}", c.command, c.runs_on(has_hosts)));
        "command"
    } else if let Some(c) = &gate.cloudwatch {
        match &c.alarm_name {
            Some(alarm) => detail.push_str(&format!("alarm {alarm} not in ALARM")),
            None => detail.push_str(&format!(
                "metric {}/{} {}",
                c.namespace.as_deref().unwrap_or(""),
                c.metric_name.as_deref().unwrap_or(""),
                c.statistic.as_deref().unwrap_or("")
            )),
        }
        "cloudwatch"
    } else {
        "unknown"
    };
    if let Some(min) = gate.min {
        detail.push_str(&format!(", min {min}"));
    }
    if let Some(max) = gate.max {
        detail.push_str(&format!(", max {max}"));
    }
    if let Some(baseline) = &gate.baseline {
        let tolerance = gate.tolerance.unwrap_or(1.0);
        if gate.direction == Some(Direction::LowerIsWorse) {
            detail.push_str(&format!(
                ", compared with {baseline} ÷{tolerance} (lower is worse)"
            ));
        } else {
            detail.push_str(&format!(", compared with {baseline} ×{tolerance}"));
        }
    }
    if let Some(count) = gate.count {
        detail.push_str(&format!(
            ", {count} evaluations every {}",
            gate.interval.as_ref().map_or("1m", |i| i.as_str())
        ));
    }
    if let Some(limit) = gate.failure_limit {
        detail.push_str(&format!(
            ", fails at {limit} failed evaluation{}",
            if limit == 1 { "" } else { "s" }
        ));
    }
    if kind == "prometheus" || kind == "cloudwatch" {
        detail.push_str(&format!(", no data: {}", gate.no_data));
    }
    Gate {
        name: gate.name.clone(),
        kind: kind.into(),
        detail,
    }
}

/// The rollback sentence of a VM deployment from state, when it says more
/// than "back to the previous version": the rollout goes on (hosts an
/// earlier apply moved are put back too), or the hosts this apply moves
/// served different releases. Each host goes back to the pair it served
/// before the rollout ([`crate::state::HostState::before_rollout`]).
/// `None`: the general sentence fits.
fn vm_rollback(
    saved: &DeploymentState,
    version: &str,
    environment: &Environment,
    targets: &[String],
) -> Option<String> {
    let in_environment: Vec<String> = environment
        .vm_hosts
        .as_ref()
        .map(|v| v.hosts.clone())
        .unwrap_or_default();
    let continues = saved.continues_rollout(version);
    let rollout = saved.rollout_id.as_deref().filter(|_| continues);
    let mut back: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut moved_so_far = Vec::new();
    if continues {
        for (host, previous) in saved.moved_hosts() {
            if in_environment.contains(host) && !targets.contains(host) {
                moved_so_far.push(host.clone());
                back.entry(previous.map_or_else(String::new, |p| p.version.clone()))
                    .or_default()
                    .push(host.clone());
            }
        }
    }
    for host in targets {
        let before = saved
            .hosts
            .get(host)
            .and_then(|record| record.before_rollout(rollout));
        back.entry(before.map_or_else(String::new, |p| p.version))
            .or_default()
            .push(host.clone());
    }
    if moved_so_far.is_empty()
        && back.len() == 1
        && back.keys().next().is_some_and(|v| *v == saved.version)
    {
        return None;
    }
    let groups: Vec<String> = back
        .iter()
        .map(|(version, hosts)| {
            let hosts: Vec<&str> = hosts.iter().map(|h| h.as_str()).collect();
            if version.is_empty() {
                format!("stopped (nothing there before): {}", hosts.join(", "))
            } else {
                format!("{version}: {}", hosts.join(", "))
            }
        })
        .collect();
    let earlier = if moved_so_far.is_empty() {
        String::new()
    } else {
        format!(
            " ({} moved by an earlier apply of this rollout)",
            moved_so_far.join(", ")
        )
    };
    Some(format!(
        "on failure, put every host this rollout moved back on the release and config it served before — {}{earlier} — restart, check health and re-register; hosts it did not move are left alone",
        groups.join("; ")
    ))
}

fn describe_rollback(
    change: &DeploymentChange,
    on_failure: &OnFailure,
    strategy: Strategy,
) -> String {
    match on_failure {
        OnFailure::Pause => "on failure, stop and keep every host as it is; continue with `slipway apply` once the cause is fixed, or apply the previous version to roll back".into(),
        OnFailure::Abort => "on failure, stop without rolling back".into(),
        OnFailure::Rollback => match (change.target, &change.version_before) {
            (TargetKind::Vm, Some(_)) if change.reasons.iter().any(|r| r.kind == ReasonKind::HostsPending) => {
                "on failure, switch every host of this apply back to the release it ran before (recorded on the host), restart, check health and re-register".into()
            }
            (TargetKind::Vm, Some(previous)) => format!(
                "on failure, switch every host of this apply back to {previous} (previous release), restart, check health and re-register"
            ),
            (TargetKind::Vm, None) => "on failure, stop the new release on the hosts it reached (there is no previous release)".into(),
            // An unfinished canary (paused at an approval, or killed): state
            // already names the new version; the old service still serves.
            (TargetKind::Ecs, Some(previous)) if change.version_after.as_ref() == Some(previous) => {
                "on failure, send 100% of traffic back to the service that served before this rollout and remove the new tasks".into()
            }
            (TargetKind::Ecs, Some(previous)) => format!(
                "on failure, send 100% of traffic back to {previous} and remove the new tasks (rolling: restore the previous task definition)"
            ),
            (TargetKind::Ecs, None) => match &change.adopt {
                Some(adopted) if strategy.moves_by_steps() => format!(
                    "on failure, put {} back as it was before this apply: all traffic back to it (task definition {}, {} task(s), set back if the final in-place update had begun) and the new service removed",
                    adopted.service,
                    short_arn(&adopted.task_definition_arn),
                    adopted.desired_count
                ),
                Some(adopted) => format!(
                    "on failure, put {} back as it was before this apply: task definition {}, {} task(s)",
                    adopted.service,
                    short_arn(&adopted.task_definition_arn),
                    adopted.desired_count
                ),
                None => "on failure, remove the new service (there is no previous version)".into(),
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The quickstart with a second, protected environment `prod` (its own
    /// deployment of the same service), loaded from a temporary directory.
    fn quickstart_with_prod() -> (tempfile::TempDir, Config) {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("app/bin")).expect("app dir");
        std::fs::write(dir.path().join("app/bin/start.sh"), "exit 0\n").expect("app file");
        let main = format!(
            "{}{}",
            include_str!("../../examples/quickstart/main.hcl"),
            r#"
environment "prod" {
  protected = true
  variables = { GREETING = "Hello" }

  vm_hosts {
    transport = "local"
    root      = ".slipway/prod-hosts"
    hosts     = ["prod-1"]
  }
}

deployment "hello-prod" {
  service     = service.hello
  environment = environment.prod
  rollout     = rollout.rolling
}
"#
        );
        let loaded = crate::config::load_sources(
            dir.path(),
            &[(dir.path().join("main.hcl"), main.into_bytes())],
            &crate::config::InputSources::default(),
        );
        let config = loaded.config.expect("the configuration loads");
        (dir, config)
    }

    #[test]
    fn an_apply_locks_the_environments_it_needs_or_that_have_state_among_those_included() {
        let (_dir, config) = quickstart_with_prod();
        let with_state = ["retired".to_string(), "local".to_string()];
        let all = PlanOptions::default();
        assert_eq!(
            environments_to_lock(&config, with_state.clone(), &all),
            ["local", "prod", "retired"]
        );
        let only_prod = PlanOptions {
            environments: Some(["prod".to_string()].into()),
            ..PlanOptions::default()
        };
        assert_eq!(
            environments_to_lock(&config, with_state, &only_prod),
            ["prod"]
        );
    }

    #[test]
    fn a_plan_names_the_protected_environments_it_changes() {
        let (_dir, config) = quickstart_with_prod();
        let states: States = [("local".to_string(), None), ("prod".to_string(), None)].into();
        let both = plan(&config, &states, &PlanOptions::default()).expect("a plan");
        assert_eq!(
            both.protected_environments(),
            ["prod".to_string()].into(),
            "local is not protected"
        );
        let local_only = PlanOptions {
            environments: Some(["local".to_string()].into()),
            ..PlanOptions::default()
        };
        let local = plan(&config, &states, &local_only).expect("a plan");
        assert!(local.protected_environments().is_empty());
    }

    #[test]
    fn autoscaling_left_suspended_for_a_removed_deployment_is_told_how_to_restore() {
        let left = crate::state::ScalingSuspension {
            resource_id: "service/prod/api".into(),
            min_capacity: 2,
            max_capacity: 8,
            before: crate::state::SuspendedScaling {
                scheduled_scaling: true,
                ..Default::default()
            },
        };
        assert_eq!(
            suspended_scaling_left_warning("deployment.api", &left),
            "deployment.api: autoscaling of service/prod/api was left suspended by an interrupted apply, and deployment.api is no longer in the configuration, so no apply restores it; restore it with `aws application-autoscaling register-scalable-target --service-namespace ecs --scalable-dimension ecs:service:DesiredCount --resource-id service/prod/api --suspended-state DynamicScalingInSuspended=false,DynamicScalingOutSuspended=false,ScheduledScalingSuspended=true`, then `slipway state rm deployment.api`"
        );
    }

    #[test]
    fn a_killed_apply_is_described_with_its_done_and_uncertain_steps() {
        let mut state = crate::state::State::new("prod");
        let entry = |seq: u64, host: &str, finished: bool| crate::state::JournalEntry {
            apply_id: "a1".into(),
            seq,
            deployment: "deployment.web".into(),
            step: seq as usize,
            host: Some(host.into()),
            action: JournalAction::Deploy,
            version: "2.0.0".into(),
            started_at: "2026-01-01T00:00:00Z".into(),
            finished_at: finished.then(|| "2026-01-01T00:00:05Z".to_string()),
            result: finished.then(|| "deployed".into()),
        };
        state.journal = vec![entry(1, "h1", true), entry(2, "h2", false)];
        let warnings = interrupted_apply_warnings("prod", &state);
        assert_eq!(warnings.len(), 1);
        let text = &warnings[0];
        assert!(
            text.contains("apply a1 (started 2026-01-01T00:00:00Z) was interrupted"),
            "{text}"
        );
        assert!(
            text.contains(
                "\nKnown done:\n  - deployment.web step 1 on h1: deploy 2.0.0 (deployed)\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "\nUncertain (started, may or may not have happened):\n  - deployment.web step 2 on h2"
            ),
            "{text}"
        );
        assert!(text.contains("reads h2's release marker"), "{text}");
        assert!(
            text.contains("a step known done is not run again"),
            "{text}"
        );
        state.journal[1].finished_at = Some("2026-01-01T00:00:09Z".into());
        state.journal[1].result = Some("not done (release marker), re-checked by a2".into());
        let text = &interrupted_apply_warnings("prod", &state)[0];
        assert!(
            text.contains(
                "Found not done when a later apply re-checked them:\n  - deployment.web step 2 on h2"
            ),
            "{text}"
        );
        assert!(text.contains("No step is uncertain"), "{text}");
        // A step a later apply closed without being able to tell whether it
        // happened is not known done.
        state.journal[1].action = JournalAction::Rollback;
        state.journal[1].result =
            Some("superseded: not re-checked, a2 runs its own step on the host".into());
        let text = &interrupted_apply_warnings("prod", &state)[0];
        assert!(
            text.contains(
                "Not known done, taken over by a later apply that ran its own step on the host:\n  - deployment.web step 2 on h2: rollback 2.0.0\n"
            ),
            "{text}"
        );
        assert!(!text.contains("(superseded"), "{text}");
        state.journal[1].action = JournalAction::Deploy;
        // Many hosts make many lines, not one long one.
        state.journal = (1..=40)
            .map(|n| entry(n, &format!("host-{n}.example.com"), true))
            .collect();
        let text = &interrupted_apply_warnings("prod", &state)[0];
        assert!(text.lines().count() > 40, "{text}");
        assert!(text.lines().all(|l| l.len() < 400), "{text}");
        state.settle_journal();
        assert!(interrupted_apply_warnings("prod", &state).is_empty());
    }

    fn traffic_entry(
        seq: u64,
        action: JournalAction,
        version: &str,
        finished: bool,
    ) -> crate::state::JournalEntry {
        crate::state::JournalEntry {
            apply_id: "a1".into(),
            seq,
            deployment: "deployment.api".into(),
            step: seq as usize,
            host: None,
            action,
            version: version.into(),
            started_at: "2026-01-01T00:00:00Z".into(),
            finished_at: finished.then(|| "2026-01-01T00:00:05Z".to_string()),
            result: finished.then(|| "done".into()),
        }
    }

    #[test]
    fn a_killed_canary_is_described_with_its_shifts_and_the_listener_check() {
        let mut state = crate::state::State::new("prod");
        state.journal = vec![
            traffic_entry(1, JournalAction::Traffic, "2.0.0 10%", true),
            traffic_entry(2, JournalAction::Traffic, "2.0.0 25%", false),
        ];
        let text = &interrupted_apply_warnings("prod", &state)[0];
        assert!(
            text.contains("Known done:\n  - deployment.api step 1: traffic 2.0.0 10% (done)"),
            "{text}"
        );
        assert!(
            text.contains("Uncertain (started, may or may not have happened):\n  - deployment.api step 2: traffic 2.0.0 25%"),
            "{text}"
        );
        assert!(
            text.contains("first:\n  - reads the listener of deployment.api: if it sends 25% to 2.0.0 as step 2 meant to, the shift had happened and is only recorded; if it still has the weights state recorded, step 2 runs again"),
            "{text}"
        );
        assert!(text.contains("continues the same rollout"), "{text}");
    }

    #[test]
    fn a_killed_canary_rollback_is_described_as_a_rollback_to_finish() {
        let mut state = crate::state::State::new("prod");
        state.journal = vec![
            traffic_entry(1, JournalAction::Traffic, "2.0.0 10%", true),
            traffic_entry(2, JournalAction::Rollback, "1.0.0", false),
        ];
        let text = &interrupted_apply_warnings("prod", &state)[0];
        assert!(
            text.contains("was rolling back after a failed step"),
            "{text}"
        );
        assert!(
            text.contains("finishes the rollback: all traffic goes back to the ECS service that served before and the new service is removed, and nothing new is deployed"),
            "{text}"
        );
        assert!(!text.contains("every host"), "{text}");

        state.journal[1].finished_at = Some("2026-01-01T00:00:06Z".into());
        let text = &interrupted_apply_warnings("prod", &state)[0];
        assert!(
            text.contains("That apply had rolled back after a failed step: `slipway apply`")
                && text.contains("records the rollback's end, and nothing new is deployed"),
            "{text}"
        );

        // A rollback followed by steps of the same deployment (a later apply
        // finished it, then went on with another version) is over.
        state
            .journal
            .push(traffic_entry(3, JournalAction::Traffic, "3.0.0 10%", false));
        let text = &interrupted_apply_warnings("prod", &state)[0];
        assert!(!text.contains("was rolling back"), "{text}");
        assert!(
            text.contains("reads the listener of deployment.api"),
            "{text}"
        );
    }

    fn hosts(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("h{i}")).collect()
    }

    #[test]
    fn rolling_batches_follow_serial_semantics() {
        let sizes = vec![
            BatchSize::Count(1),
            BatchSize::Share(Percent::parse("25%").unwrap()),
            BatchSize::Share(Percent::ALL),
        ];
        let batches = rolling_batches(&hosts(10), &sizes, 10);
        let lengths: Vec<usize> = batches.iter().map(Vec::len).collect();
        assert_eq!(lengths, vec![1, 2, 7]);
        let repeating = rolling_batches(&hosts(5), &[BatchSize::Count(2)], 5);
        assert_eq!(
            repeating.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![2, 2, 1]
        );
        let halves = rolling_batches(
            &hosts(5),
            &[
                BatchSize::Count(1),
                BatchSize::Share(Percent::parse("50%").unwrap()),
            ],
            5,
        );
        assert_eq!(
            halves.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![1, 2, 2]
        );
        assert!(rolling_batches(&[], &sizes, 10).is_empty());
    }

    #[test]
    fn percentages_are_of_all_the_environments_hosts_not_of_those_to_update() {
        let sizes = [
            BatchSize::Count(1),
            BatchSize::Share(Percent::parse("50%").unwrap()),
        ];
        // 3 drifted hosts of 12: 1, then 50% of 12 (6) — the 2 that remain.
        let drifted = rolling_batches(&hosts(3), &sizes, 12);
        assert_eq!(drifted.iter().map(Vec::len).collect::<Vec<_>>(), vec![1, 2]);
        // 8 of 10: 1, then 5 at a time.
        let most = rolling_batches(&hosts(8), &sizes, 10);
        assert_eq!(most.iter().map(Vec::len).collect::<Vec<_>>(), vec![1, 5, 2]);
        // A count is a count.
        let counted = rolling_batches(&hosts(3), &[BatchSize::Count(1)], 12);
        assert_eq!(counted.len(), 3);
    }

    #[test]
    fn canary_batches_round_up_and_skip_empty_steps() {
        let steps: Vec<Percent> = ["10%", "25%", "50%", "100%"]
            .iter()
            .map(|s| Percent::parse(s).unwrap())
            .collect();
        let batches = canary_batches(&hosts(10), &steps);
        assert_eq!(
            batches.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![1, 2, 2, 5]
        );
        let small = canary_batches(&hosts(2), &steps);
        assert_eq!(small.iter().map(Vec::len).collect::<Vec<_>>(), vec![1, 1]);
    }

    #[test]
    fn state_names_of_module_environments_are_file_safe() {
        assert_eq!(environment_state_name("environment.prod"), "prod");
        assert_eq!(
            environment_state_name("module.net.environment.prod"),
            "net_prod"
        );
    }

    #[test]
    fn diffs_only_when_texts_differ() {
        assert!(unified_diff("a\n", "a\n", "f").is_none());
        let diff = unified_diff("a\nb\n", "a\nc\n", "/etc/f").unwrap();
        assert!(
            diff.contains("-b") && diff.contains("+c") && diff.contains("/etc/f"),
            "{diff}"
        );
    }
}
