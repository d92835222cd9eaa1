//! `slipway apply`: load the configuration (or a saved plan with the inputs
//! it carries), lock the environments, plan or check the saved plan, ask for
//! approval and confirmation, run the apply and report how it ended (as text
//! or as `-json` lines).
//!
//! It decides no deployment step: the plan is `plan::planner`'s (or the saved
//! one, checked by `plan::saved`), running it is `apply::apply`, and what is
//! recorded is the apply layer's `Recorder`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, bail};
use clap::Args;

use crate::apply::ApplyEnd;
use crate::config::{self, Config, InputSources};
use crate::diagnostics;
use crate::plan::{self, planner, saved, States};
use crate::state::Backend;
use crate::views::{self, ViewFormat};

use super::backend::{open_backend, read_states, take_lock};
use super::common::{
    load_with_inputs, parse_lock_timeout, prompt, stderr_color, use_color, ARTIFACT_CACHE,
};
use super::plan::pin_artifacts;
use super::{EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK};

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// A configuration directory, or a plan file saved with `plan -out FILE`.
    #[arg(default_value = ".")]
    pub target: PathBuf,
    /// With a plan file: the configuration directory it was made from.
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub dir: PathBuf,
    /// Set a variable: -var name=value. A saved plan carries its values: give only its
    /// sensitive ones again.
    #[arg(long = "var", value_name = "NAME=VALUE")]
    pub vars: Vec<String>,
    #[arg(long = "var-file", value_name = "FILE")]
    pub var_files: Vec<PathBuf>,
    /// Apply without asking for confirmation.
    #[arg(long = "auto-approve")]
    pub auto_approve: bool,
    /// -input=false: never ask; whatever would need an answer (confirmation, a protected
    /// environment) must come from -auto-approve and -approve, or apply stops before changing
    /// anything. Without it, apply asks only when standard input is a terminal.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub input: Option<bool>,
    /// Approve changes to this protected environment (repeatable).
    #[arg(long = "approve", value_name = "ENVIRONMENT")]
    pub approve: Vec<String>,
    /// Deployments of one wave run at most this many at a time.
    #[arg(long, default_value_t = 10)]
    pub parallelism: usize,
    /// Wait up to this long for a state lock held by someone else (e.g. 30s, 5m; default: fail at once).
    #[arg(long = "lock-timeout", value_name = "DURATION", default_value = "0s", value_parser = parse_lock_timeout)]
    pub lock_timeout: Duration,
    /// Apply only the deployments of this environment (repeatable). A saved plan
    /// applies the environments it was made for.
    #[arg(long = "environment", value_name = "NAME")]
    pub environments: Vec<String>,
    /// Read what hosts and ECS services really run first, then plan and apply what
    /// that plan shows, drift repairs included (not with a saved plan).
    #[arg(long)]
    pub refresh: bool,
    /// Machine-readable output: one JSON object per line on stdout (the plan, every
    /// progress event and heartbeat, the end), as docs/apply-json.md describes. Needs
    /// -auto-approve: it never asks.
    #[arg(long)]
    pub json: bool,
    #[arg(long = "no-color")]
    pub no_color: bool,
}

/// What an apply works from: the configuration, and the saved plan when one
/// was given (loaded with the values the plan carries).
struct ApplyInput {
    config: Config,
    sources: diagnostics::SourceMap,
    config_dir: PathBuf,
    saved_plan: Option<plan::Plan>,
    options: plan::PlanOptions,
}

/// Read the configuration, and a saved plan with the inputs it was made with:
/// its non-sensitive values load the configuration, sensitive ones must be
/// given again and match the plan's digest, and `-var` or `-environment`
/// given anyway must agree with the plan. `None`: the configuration has
/// errors (printed).
fn apply_input(args: &ApplyArgs) -> anyhow::Result<Option<ApplyInput>> {
    let inputs = InputSources::from_process(args.vars.clone(), args.var_files.clone());
    let selection = |names: &[String]| plan::PlanOptions {
        environments: (!names.is_empty()).then(|| names.iter().cloned().collect()),
        ..Default::default()
    };
    if !args.target.is_file() {
        let selected = selection(&args.environments).environments;
        let Some((config, sources)) =
            load_with_inputs(&args.target, &inputs, &[], selected.as_ref(), args.no_color)
        else {
            return Ok(None);
        };
        return Ok(Some(ApplyInput {
            config,
            sources,
            config_dir: args.target.clone(),
            saved_plan: None,
            options: selection(&args.environments),
        }));
    }
    let saved_plan = saved::read(&args.target)?;
    let refuse = |problems: Vec<String>| {
        anyhow!(
            "cannot apply the saved plan {}; nothing was changed:\n  - {}",
            args.target.display(),
            problems.join("\n  - ")
        )
    };
    if args.refresh {
        return Err(refuse(vec![format!(
            "-refresh reads hosts and services before planning, and this plan is already made: \
             make a refreshed plan with `slipway plan -refresh -out {}`, or refresh and apply \
             in one step with `slipway apply -refresh DIR`",
            args.target.display()
        )]));
    }
    let config_dir = args.dir.clone();
    let has_configuration = std::fs::read_dir(&config_dir).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.path().extension().is_some_and(|x| x == "hcl"))
    });
    if !has_configuration {
        return Err(refuse(vec![format!(
            "{} holds no configuration (*.hcl): run apply in the directory the plan was made \
             from, or name that directory with -dir DIR",
            config_dir.display()
        )]));
    }
    let Some(carried) = saved_plan.inputs.clone() else {
        // Format 1.0: the values must be given again, as to plan.
        let selected = selection(&args.environments).environments;
        let Some((config, sources)) =
            load_with_inputs(&config_dir, &inputs, &[], selected.as_ref(), args.no_color)
        else {
            return Ok(None);
        };
        return Ok(Some(ApplyInput {
            config,
            sources,
            config_dir,
            saved_plan: Some(saved_plan),
            options: selection(&args.environments),
        }));
    };
    if let Some(problem) = saved::check_environments(&carried, &args.environments) {
        return Err(refuse(vec![problem]));
    }
    let supplied = config::load::supplied_input_names(&config_dir, &inputs);
    let missing = saved::missing_sensitive(&carried, &supplied);
    if !missing.is_empty() {
        return Err(refuse(missing));
    }
    let values = saved::saved_values(&carried);
    let selected: Option<BTreeSet<String>> = carried
        .environments
        .as_ref()
        .map(|names| names.iter().cloned().collect());
    let Some((config, sources)) = load_with_inputs(
        &config_dir,
        &inputs,
        &[values],
        selected.as_ref(),
        args.no_color,
    ) else {
        return Ok(None);
    };
    let mut problems = saved::check_inputs(&carried, &config);
    problems.extend(saved::check_secrets(&carried, &config));
    if !problems.is_empty() {
        return Err(refuse(problems));
    }
    Ok(Some(ApplyInput {
        config,
        sources,
        config_dir,
        saved_plan: Some(saved_plan),
        options: plan::PlanOptions {
            environments: carried
                .environments
                .map(|names| names.into_iter().collect()),
            ..Default::default()
        },
    }))
}

/// The plan apply executes: a saved plan as it is, once it is known fresh,
/// or one made now (after a refresh with `-refresh`) and shown. `None`: the
/// plan could not be made (diagnostics printed).
fn plan_to_apply(
    args: &ApplyArgs,
    config: &Config,
    sources: &diagnostics::SourceMap,
    saved_plan: Option<plan::Plan>,
    states: &States,
    options: &plan::PlanOptions,
    runtime: &tokio::runtime::Runtime,
) -> anyhow::Result<Option<plan::Plan>> {
    if let Some(saved_plan) = saved_plan {
        // A saved plan is executed as it is: apply decides nothing it did not.
        let mut problems = saved::check_fresh(&saved_plan, &config.digest, states);
        problems.extend(saved::artifacts_moved(&saved_plan, config));
        if !problems.is_empty() {
            bail!(
                "the saved plan {} is stale; nothing was changed:\n  - {}\nMake a new plan with `slipway plan -out FILE` and apply that",
                args.target.display(),
                problems.join("\n  - ")
            );
        }
        if args.json {
            let fields = serde_json::json!({ "plan": &saved_plan, "saved_plan": args.target });
            println!("{}", apply_json_line("plan", fields));
        } else {
            println!(
                "Applying the saved plan {}: {}",
                args.target.display(),
                saved_plan.summary.line()
            );
        }
        return Ok(Some(saved_plan));
    }
    let mut planned_from = states.clone();
    let observations = args.refresh.then(|| {
        let observations = runtime.block_on(crate::apply::refresh::observe(config, states));
        crate::apply::refresh::fold_into_states(&mut planned_from, &observations);
        observations
    });
    let mut plan = match planner::plan(config, &planned_from, options) {
        Ok(plan) => plan,
        Err(found) => {
            eprint!(
                "{}",
                diagnostics::render(sources, &found, stderr_color(args.no_color))
            );
            return Ok(None);
        }
    };
    if let Some(observations) = &observations {
        crate::apply::refresh::add_drift_reasons(&mut plan, states, observations);
    }
    if args.json {
        println!(
            "{}",
            apply_json_line("plan", serde_json::json!({ "plan": &plan }))
        );
    } else {
        let color = use_color(args.no_color);
        print!("{}", views::render(&plan, ViewFormat::Human { color }));
    }
    Ok(Some(plan))
}

/// A line of `apply -json` before the apply's own clock starts (the plan, the
/// start, nothing to apply): at elapsed 0.
fn apply_json_line(kind: &str, fields: serde_json::Value) -> String {
    crate::apply::progress::json_line(kind, std::time::Duration::ZERO, fields)
}

/// The end of an apply as `apply -json` reports it (`apply_complete`).
fn summary_json(
    summary: &crate::apply::ApplySummary,
    result: &str,
    exit_code: u8,
) -> serde_json::Value {
    serde_json::json!({
        "result": result,
        "exit_code": exit_code,
        "deployments_succeeded": summary.deployments_succeeded,
        "deployments_failed": summary.deployments_failed,
        "hosts_deployed": summary.hosts_deployed,
        "hosts_failed": summary.hosts_failed,
        "hosts_rolled_back": summary.hosts_rolled_back,
        "hosts_not_rolled_back": summary.hosts_not_rolled_back,
        "failures": summary.failures,
        "waiting_approval": summary.waiting,
        "held": summary.held,
        "skipped": summary.skipped,
        "not_started": summary.not_started,
        "duration_seconds": (summary.duration.as_secs_f64() * 10.0).round() / 10.0,
    })
}

pub(super) fn apply_command(args: &ApplyArgs) -> anyhow::Result<u8> {
    if args.json && !args.auto_approve {
        bail!("apply -json never asks: pass -auto-approve (and -approve ENV for protected environments); nothing was changed");
    }
    let Some(ApplyInput {
        mut config,
        sources,
        config_dir,
        saved_plan,
        mut options,
    }) = apply_input(args)?
    else {
        return Ok(EXIT_ERROR);
    };
    let backend: std::sync::Arc<dyn Backend> = open_backend(&config_dir, &config.backend)?.into();
    // Lock every environment the apply may touch before reading state, so the
    // plan is computed against state nobody else is changing.
    let names = planner::environments_to_lock(&config, backend.environments()?, &options);
    let locks = lock_environments(backend.as_ref(), &names, args.lock_timeout)?;
    let states = read_states(&config, backend.as_ref())?;
    // Remote artifacts pinned under the locks: a saved plan's pins must
    // still hold (checked with its freshness), and apply sends exactly them.
    if !pin_artifacts(&mut config, &options, &config_dir)? {
        return Ok(EXIT_ERROR);
    }
    if saved_plan.is_none() {
        // What ECS runs that state does not record: services to adopt, listener
        // weights changed by hand (a saved plan carries what it read).
        crate::apply::refresh::read_live(&config, &states, &mut options);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let Some(plan) = plan_to_apply(
        args, &config, &sources, saved_plan, &states, &options, &runtime,
    )?
    else {
        return Ok(EXIT_ERROR);
    };
    // The plan was computed from the hosts as a refresh found them: state
    // says so before anything runs (and apply's records start from there).
    let mut states = states;
    crate::apply::refresh::fold_into_states(
        &mut states,
        &crate::apply::refresh::observations_of(&plan),
    );
    if !plan.has_changes() {
        return finish_without_changes(args, backend.as_ref(), &states, &names);
    }
    let unsupported = crate::apply::unsupported(&config, &plan);
    if !unsupported.is_empty() {
        bail!(
            "this plan cannot be applied; nothing was changed:\n  {}",
            unsupported.join("\n  ")
        );
    }
    if !approved_and_confirmed(args, &plan)? {
        return Ok(EXIT_ERROR);
    }
    let recorders = recorders_for(&backend, states, &names);
    let apply_options = crate::apply::ApplyOptions {
        parallelism: args.parallelism,
        apply_id: uuid::Uuid::new_v4().to_string(),
        who: crate::state::lock::current_user(),
        artifact_cache: config_dir.join(ARTIFACT_CACHE),
        cancel: crate::signals::Cancel::new(),
    };
    let progress = start_progress(args, &apply_options);
    let config = std::sync::Arc::new(config);
    // The first Ctrl-C (or SIGTERM) cancels the apply's token, and the apply
    // stops in order: see below.
    let graceful = crate::signals::graceful(&apply_options.cancel);
    let summary = runtime.block_on(crate::apply::apply(
        config,
        &plan,
        recorders,
        apply_options,
        progress,
    ));
    drop(locks);
    drop(graceful);
    if args.json {
        return Ok(report_json(&summary));
    }
    if summary.interrupted {
        return Ok(report_interrupted(&summary));
    }
    Ok(report_summary(&summary))
}

/// Take the lock of each environment in `names`, in order.
fn lock_environments(
    backend: &dyn Backend,
    names: &[String],
    lock_timeout: Duration,
) -> anyhow::Result<Vec<crate::state::LockGuard>> {
    let mut locks = Vec::new();
    for name in names {
        locks.push(take_lock(backend, name, "apply", lock_timeout)?);
    }
    Ok(locks)
}

/// The end of an apply whose plan changes nothing: the journal an apply
/// killed after its last step left is recorded, and "nothing to apply" said.
fn finish_without_changes(
    args: &ApplyArgs,
    backend: &dyn Backend,
    states: &States,
    names: &[String],
) -> anyhow::Result<u8> {
    // An apply killed after its last step left a journal: record it.
    for (name, state) in states {
        let Some(state) = state.as_ref().filter(|_| names.contains(name)) else {
            continue;
        };
        if crate::state::ops::settle_journal(backend, state)? && !args.json {
            println!("Recorded the interrupted apply of environment {name} in its history.");
        }
    }
    if args.json {
        let summary = crate::apply::ApplySummary::default();
        println!(
            "{}",
            apply_json_line(
                "apply_complete",
                summary_json(&summary, "no_changes", EXIT_OK)
            )
        );
    } else {
        println!("Nothing to apply.");
    }
    Ok(EXIT_OK)
}

/// Every protected environment the plan changes is approved (by -approve or
/// by typing its name), and the apply is confirmed (-auto-approve or "yes").
/// `false` after printing that the apply was cancelled; an error when an
/// answer is needed and may not be asked for.
fn approved_and_confirmed(args: &ApplyArgs, plan: &plan::Plan) -> anyhow::Result<bool> {
    let interactive = args.input != Some(false) && std::io::stdin().is_terminal();
    for environment in &plan.protected_environments() {
        if args.approve.contains(environment) {
            continue;
        }
        if !interactive {
            bail!("environment {environment} is protected: approve it with -approve {environment} (apply asks only on a terminal without -input=false); nothing was changed");
        }
        let answer = prompt(&format!(
            "Environment {environment} is protected. Type its name to approve: "
        ))?;
        if answer != *environment {
            println!("Apply cancelled: {environment} was not approved. Nothing was changed.");
            return Ok(false);
        }
    }
    if !args.auto_approve {
        if !interactive {
            bail!("apply needs confirmation: pass -auto-approve, or run it from a terminal without -input=false; nothing was changed");
        }
        let answer = prompt("Do you want to perform these actions? Only 'yes' will be accepted: ")?;
        if answer != "yes" {
            println!("Apply cancelled. Nothing was changed.");
            return Ok(false);
        }
    }
    Ok(true)
}

/// One recorder per locked environment, starting from its state (a new
/// state for an environment that has none yet).
fn recorders_for(
    backend: &std::sync::Arc<dyn Backend>,
    states: States,
    names: &[String],
) -> BTreeMap<String, std::sync::Arc<crate::apply::Recorder>> {
    let mut recorders = BTreeMap::new();
    for (name, state) in states {
        if !names.contains(&name) {
            continue;
        }
        let state = state.unwrap_or_else(|| crate::state::State::new(&name));
        recorders.insert(
            name,
            std::sync::Arc::new(crate::apply::Recorder::new(backend.clone(), state)),
        );
    }
    recorders
}

/// Announce the apply's start (a line of text, or `apply_start` with
/// -json) and make the progress reporter it writes to.
fn start_progress(
    args: &ApplyArgs,
    apply_options: &crate::apply::ApplyOptions,
) -> std::sync::Arc<crate::apply::Progress> {
    if args.json {
        let fields = serde_json::json!({ "apply_id": &apply_options.apply_id });
        println!("{}", apply_json_line("apply_start", fields));
        std::sync::Arc::new(crate::apply::Progress::json())
    } else {
        println!("\nApplying (apply id {}).", apply_options.apply_id);
        std::sync::Arc::new(crate::apply::Progress::new(
            std::io::stderr().is_terminal() && !args.no_color,
        ))
    }
}

/// The exit code of an apply that ended so.
fn exit_code(end: ApplyEnd) -> u8 {
    match end {
        ApplyEnd::Interrupted => EXIT_INTERRUPTED,
        end if end.is_success() => EXIT_OK,
        _ => EXIT_ERROR,
    }
}

/// The `apply_complete` line of `apply -json`, and the exit code.
fn report_json(summary: &crate::apply::ApplySummary) -> u8 {
    let end = summary.end();
    let result = match end {
        ApplyEnd::Succeeded => "succeeded",
        ApplyEnd::WaitingApproval => "waiting_approval",
        ApplyEnd::Paused => "paused",
        ApplyEnd::RolledBack | ApplyEnd::Failed => "failed",
        ApplyEnd::Interrupted => "interrupted",
    };
    let code = exit_code(end);
    let fields = summary_json(summary, result, code);
    let line = crate::apply::progress::json_line("apply_complete", summary.duration, fields);
    println!("{line}");
    code
}

/// What an apply stopped by an interrupt did and left, and its exit code.
fn report_interrupted(summary: &crate::apply::ApplySummary) -> u8 {
    println!(
        "\nApply interrupted: no new step was started after the interrupt; the steps in flight finished and are recorded ({} host(s) deployed, {} failed), and the lock is released. Run `slipway apply` again to continue the rollout; `slipway plan` shows what remains.",
        summary.hosts_deployed, summary.hosts_failed
    );
    for failure in &summary.failures {
        println!("  error: {failure}");
    }
    if !summary.not_started.is_empty() {
        println!(
            "  not started (interrupted): {}",
            summary.not_started.join(", ")
        );
    }
    EXIT_INTERRUPTED
}

/// How an apply that ran to its end went, in text, and its exit code.
fn report_summary(summary: &crate::apply::ApplySummary) -> u8 {
    let waiting = if summary.waiting.is_empty() {
        String::new()
    } else {
        format!(", {} waiting for approval", summary.waiting.len())
    };
    let hosts = if summary.hosts_deployed + summary.hosts_failed + summary.hosts_rolled_back == 0 {
        String::new()
    } else {
        let not_rolled_back = if summary.hosts_not_rolled_back == 0 {
            String::new()
        } else {
            format!(", {} NOT rolled back", summary.hosts_not_rolled_back)
        };
        format!(
            "; hosts: {} deployed, {} failed, {} rolled back{not_rolled_back}",
            summary.hosts_deployed, summary.hosts_failed, summary.hosts_rolled_back
        )
    };
    let end = summary.end();
    println!(
        "\nApply {}: {} deployment(s) succeeded, {} failed{waiting}{hosts}; {:.1}s.",
        match end {
            ApplyEnd::Succeeded => "complete",
            ApplyEnd::WaitingApproval => "paused",
            ApplyEnd::Paused => "paused after a failure",
            ApplyEnd::RolledBack | ApplyEnd::Failed | ApplyEnd::Interrupted => "failed",
        },
        summary.deployments_succeeded,
        summary.deployments_failed,
        summary.duration.as_secs_f64()
    );
    for failure in &summary.failures {
        println!("  error: {failure}");
    }
    for waiting in &summary.waiting {
        println!("  {waiting}");
    }
    if !summary.held.is_empty() {
        println!(
            "  not started (waits for a deployment that waits for approval): {}",
            summary.held.join(", ")
        );
    }
    if !summary.skipped.is_empty() {
        println!(
            "  not started (waits for a deployment that failed): {}",
            summary.skipped.join(", ")
        );
    }
    if !end.is_success() {
        println!("{}", summary.closing_note());
    }
    exit_code(end)
}
