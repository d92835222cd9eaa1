//! `slipway state list|show|pull|push|rm|history` and `slipway force-unlock`:
//! inspect and change saved state.
//!
//! The changes themselves (push, remove, history) are `state::ops`; this
//! module picks the environment, takes its lock, and prints.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use clap::{Args, Subcommand};

use crate::state::{decode_state, encode_state, ops, Backend, State};

use super::backend::{state_backend, take_lock};
use super::common::parse_lock_timeout;
use super::EXIT_OK;

#[derive(Debug, Subcommand)]
pub enum StateCommand {
    /// List tracked deployments: address, environment, version, status.
    #[command(after_help = "Example:\n  slipway state list examples/vm-myapp")]
    List(StateArgs),
    /// Show everything state records about one deployment.
    #[command(
        after_help = "Example:\n  slipway state show deployment.myapp-dev examples/vm-myapp"
    )]
    Show(StateShowArgs),
    /// Print the saved state of one environment, as stored, to stdout.
    #[command(
        after_help = "Examples:\n  slipway state pull -environment production examples/vm-myapp\n  slipway state pull -environment production > production.json   # a copy to inspect or keep\n\nWith a single environment in state, -environment may be left out."
    )]
    Pull(StateArgs),
    /// Replace the saved state of one environment with a state file.
    #[command(
        after_help = "Examples:\n  slipway state push production.json\n  slipway state push -force production.json   # also another lineage or an older serial\n\nThe environment is the file's \"environment\". Refused without -force when the saved state has another\nlineage (it is the state of something else) or a higher serial (the file is older). The pushed state\ngets a serial above both, and a state-push entry in its history."
    )]
    Push(StatePushArgs),
    /// Stop tracking a deployment, without touching its hosts or services.
    #[command(
        after_help = "Example:\n  slipway state rm deployment.myapp-dev\n\nThe deployment's targets keep running what they run; slipway forgets them. While the deployment is\nin the configuration, the next plan proposes to deploy it as new. Recorded in history as state-rm."
    )]
    Rm(StateRmArgs),
    /// The audit trail: who applied what, when, with which plan and versions, and how it ended.
    #[command(
        after_help = "Examples:\n  slipway state history examples/vm-myapp\n  slipway state history deployment.myapp-production examples/vm-myapp\n  slipway state history myapp-production -json\n\nDEPLOYMENT is deployment.NAME or NAME; with one argument that is a directory, it is DIR."
    )]
    History(StateHistoryArgs),
}

#[derive(Debug, Args)]
pub struct StateArgs {
    /// Configuration directory (for the backend settings).
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Only this environment.
    #[arg(long)]
    pub environment: Option<String>,
}

#[derive(Debug, Args)]
pub struct StateShowArgs {
    /// Deployment address, e.g. deployment.myapp-production.
    pub address: String,
    #[command(flatten)]
    pub state: StateArgs,
    /// Print as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct StatePushArgs {
    /// The state file to push (`-` reads stdin).
    pub file: PathBuf,
    /// Configuration directory (for the backend settings).
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Also replace a state of another lineage or a higher serial.
    #[arg(long)]
    pub force: bool,
    /// Wait up to this long for the state lock if someone else holds it (e.g. 30s, 5m).
    #[arg(long = "lock-timeout", value_name = "DURATION", default_value = "0s", value_parser = parse_lock_timeout)]
    pub lock_timeout: Duration,
}

#[derive(Debug, Args)]
pub struct StateRmArgs {
    /// Deployment address, e.g. deployment.myapp-dev (or just myapp-dev).
    pub address: String,
    #[command(flatten)]
    pub state: StateArgs,
    /// Wait up to this long for the state lock if someone else holds it (e.g. 30s, 5m).
    #[arg(long = "lock-timeout", value_name = "DURATION", default_value = "0s", value_parser = parse_lock_timeout)]
    pub lock_timeout: Duration,
}

#[derive(Debug, Args)]
pub struct StateHistoryArgs {
    /// Only the entries that changed this deployment (deployment.NAME or NAME).
    #[arg(value_name = "DEPLOYMENT")]
    pub first: Option<String>,
    /// Configuration directory (for the backend settings); default ".".
    #[arg(value_name = "DIR")]
    pub second: Option<PathBuf>,
    /// Only this environment.
    #[arg(long)]
    pub environment: Option<String>,
    /// Print as JSON: an array of history entries, each with its environment.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ForceUnlockArgs {
    /// The lock id, as printed by the command that found the lock.
    pub lock_id: String,
    /// Configuration directory (for the backend settings).
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// The environment whose lock to remove (default: the one holding this id).
    #[arg(long)]
    pub environment: Option<String>,
}

pub(super) fn state_list(args: &StateArgs) -> anyhow::Result<u8> {
    let backend = state_backend(&args.dir)?;
    let environments = match &args.environment {
        Some(name) => vec![name.clone()],
        None => backend.environments()?,
    };
    for environment in environments {
        let Some(state) = backend.read(&environment)? else {
            continue;
        };
        for (address, deployment) in &state.deployments {
            println!(
                "{address}\t{environment}\t{}\t{}",
                deployment.version,
                serde_json::to_value(&deployment.status)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default()
            );
        }
    }
    Ok(EXIT_OK)
}

pub(super) fn state_show(args: &StateShowArgs) -> anyhow::Result<u8> {
    let backend = state_backend(&args.state.dir)?;
    let environments = match &args.state.environment {
        Some(name) => vec![name.clone()],
        None => backend.environments()?,
    };
    for environment in environments {
        let Some(state) = backend.read(&environment)? else {
            continue;
        };
        if let Some(deployment) = state.deployments.get(&args.address) {
            if args.json {
                println!("{}", serde_json::to_string_pretty(deployment)?);
            } else {
                println!(
                    "# {} (environment {environment}, state serial {})",
                    args.address, state.serial
                );
                print!("{}", describe_deployment(deployment));
            }
            return Ok(EXIT_OK);
        }
    }
    Err(anyhow!(
        "{} is not in state; list what is tracked with: slipway state list",
        args.address
    ))
}

pub(super) fn force_unlock(args: &ForceUnlockArgs) -> anyhow::Result<u8> {
    let backend = state_backend(&args.dir)?;
    let environment = match &args.environment {
        Some(environment) => environment.clone(),
        None => {
            let mut holder = None;
            for environment in backend.environments()? {
                if backend
                    .current_lock(&environment)?
                    .is_some_and(|lock| lock.id == args.lock_id)
                {
                    holder = Some(environment);
                }
            }
            holder.ok_or_else(|| anyhow!("no environment is locked with id {}; pass -environment NAME if the state file does not exist yet", args.lock_id))?
        }
    };
    backend.force_unlock(&environment, &args.lock_id)?;
    println!(
        "Removed lock {} of environment {environment}.",
        args.lock_id
    );
    Ok(EXIT_OK)
}

/// The environment a single-environment state command works on: the one
/// given, or the only one with state.
fn one_environment(backend: &dyn Backend, given: Option<&str>) -> anyhow::Result<String> {
    if let Some(name) = given {
        return Ok(name.to_string());
    }
    let environments = backend.environments()?;
    match environments.as_slice() {
        [only] => Ok(only.clone()),
        [] => bail!("{} holds no state yet", backend.describe()),
        several => bail!(
            "{} holds the state of several environments ({}): choose one with -environment NAME",
            backend.describe(),
            several.join(", ")
        ),
    }
}

pub(super) fn state_pull(args: &StateArgs) -> anyhow::Result<u8> {
    use std::io::Write as _;
    let backend = state_backend(&args.dir)?;
    let environment = one_environment(backend.as_ref(), args.environment.as_deref())?;
    let Some(state) = backend.read(&environment)? else {
        bail!(
            "environment {environment} has no state in {}",
            backend.describe()
        );
    };
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(&encode_state(&state)?)?;
    stdout.flush()?;
    Ok(EXIT_OK)
}

pub(super) fn state_push(args: &StatePushArgs) -> anyhow::Result<u8> {
    use std::io::Read as _;
    let contents = if args.file.as_os_str() == "-" {
        let mut contents = Vec::new();
        std::io::stdin()
            .read_to_end(&mut contents)
            .context("cannot read the state from stdin")?;
        contents
    } else {
        std::fs::read(&args.file).with_context(|| format!("cannot read {}", args.file.display()))?
    };
    let incoming: State = decode_state(&contents, None, &args.file, || None)?;
    crate::state::validate_environment_name(&incoming.environment)?;
    let backend = state_backend(&args.dir)?;
    let environment = incoming.environment.clone();
    let lock = take_lock(
        backend.as_ref(),
        &environment,
        "state push",
        args.lock_timeout,
    )?;
    let pushed = ops::push(backend.as_ref(), incoming, args.force)?;
    lock.release()?;
    match &pushed.replaced {
        Some((serial, lineage)) => println!(
            "Pushed the state of environment {environment} to {}: serial {} (it replaced serial \
             {serial}, lineage {lineage}).",
            backend.describe(),
            pushed.serial
        ),
        None => println!(
            "Pushed the state of environment {environment} to {}: serial {} (there was none).",
            backend.describe(),
            pushed.serial
        ),
    }
    Ok(EXIT_OK)
}

pub(super) fn state_rm(args: &StateRmArgs) -> anyhow::Result<u8> {
    let address = ops::deployment_address(&args.address);
    let backend = state_backend(&args.state.dir)?;
    let environment = crate::state::ops::environment_tracking(
        backend.as_ref(),
        &address,
        args.state.environment.as_deref(),
    )?;
    let lock = take_lock(
        backend.as_ref(),
        &environment,
        "state rm",
        args.lock_timeout,
    )?;
    let removed = ops::remove_deployment(backend.as_ref(), &environment, &address)?;
    lock.release()?;
    let Some((deployment, serial)) = removed else {
        bail!(
            "{address} left the state of environment {environment} meanwhile; nothing was removed"
        );
    };
    println!(
        "Removed {address} (version {}) from the state of environment {environment} (serial \
         {serial}). Its targets were not touched; slipway no longer tracks them.",
        deployment.version
    );
    Ok(EXIT_OK)
}

pub(super) fn state_history(args: &StateHistoryArgs) -> anyhow::Result<u8> {
    use std::fmt::Write as _;
    // DEPLOYMENT and DIR are both optional: one argument naming a directory is DIR.
    let (deployment, dir) = match (&args.first, &args.second) {
        (Some(first), Some(dir)) => (Some(first.clone()), dir.clone()),
        (Some(first), None) if !first.starts_with("deployment.") && Path::new(first).is_dir() => {
            (None, PathBuf::from(first))
        }
        (Some(first), None) => (Some(first.clone()), PathBuf::from(".")),
        (None, _) => (None, PathBuf::from(".")),
    };
    let backend = state_backend(&dir)?;
    let environments = match &args.environment {
        Some(name) => vec![name.clone()],
        None => backend.environments()?,
    };
    let mut states = Vec::new();
    for environment in environments {
        if let Some(state) = backend.read(&environment)? {
            states.push(state);
        }
    }
    let address = deployment.as_deref().map(ops::deployment_address);
    let entries = ops::history(&states, address.as_deref());
    if args.json {
        let entries: Vec<serde_json::Value> = entries
            .iter()
            .map(|(environment, entry)| {
                let mut value = serde_json::json!({ "environment": environment });
                if let (Some(object), Ok(serde_json::Value::Object(fields))) =
                    (value.as_object_mut(), serde_json::to_value(entry))
                {
                    object.extend(fields);
                }
                value
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&entries)?);
        return Ok(EXIT_OK);
    }
    if entries.is_empty() {
        match &address {
            Some(address) => println!("No history recorded for {address}."),
            None => println!("No history recorded."),
        }
        return Ok(EXIT_OK);
    }
    let mut out = String::new();
    for (environment, entry) in entries {
        let _ = write!(
            out,
            "{}  {environment}  {}  {}  by {}  (id {}",
            entry.started_at, entry.operation, entry.result, entry.who, entry.apply_id
        );
        if let Some(digest) = &entry.plan_digest {
            let short: String = digest.chars().take(12).collect();
            let _ = write!(out, ", plan sha256:{short}");
        }
        if let Some(finished) = &entry.finished_at {
            let _ = write!(out, ", finished {finished}");
        }
        out.push_str(")\n");
        for (deployment, version) in &entry.versions {
            if address.as_ref().is_none_or(|only| only == deployment) {
                let _ = writeln!(out, "    {deployment}  {version}");
            }
        }
        for approval in &entry.approvals {
            let decided = match (&approval.decided_by, &approval.decided_at) {
                (Some(who), Some(at)) => format!(", {who} at {at}"),
                _ => String::new(),
            };
            let _ = writeln!(
                out,
                "    approval \"{}\" after step {} of {}: {:?}{decided}",
                approval.name, approval.after_step, approval.version, approval.status
            );
        }
    }
    print!("{out}");
    Ok(EXIT_OK)
}

/// Human text of what state records about one deployment.
fn describe_deployment(deployment: &crate::state::DeploymentState) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(out, "service      {}", deployment.service);
    let _ = writeln!(out, "version      {}", deployment.version);
    let _ = writeln!(out, "status       {:?}", deployment.status);
    let _ = writeln!(out, "verified     {}", deployment.verified);
    if let Some(sha) = &deployment.artifact_sha256 {
        let _ = writeln!(out, "artifact     sha256:{sha}");
    }
    if let Some(rollout) = &deployment.rollout {
        let _ = writeln!(out, "rollout      {rollout}");
    }
    let _ = writeln!(out, "updated at   {}", deployment.updated_at);
    for (host, state) in &deployment.hosts {
        let _ = writeln!(
            out,
            "host {host}: {} {:?} at {}",
            state.version, state.status, state.updated_at
        );
    }
    if let Some(ecs) = &deployment.ecs {
        let _ = writeln!(
            out,
            "ecs service  {} in {} (desired {})",
            ecs.service_name, ecs.cluster, ecs.desired_count
        );
        if let Some(arn) = &ecs.task_definition_arn {
            let _ = writeln!(out, "task def     {arn}");
        }
    }
    for destination in deployment.config_files.keys() {
        let _ = writeln!(out, "config file  {destination}");
    }
    out
}
