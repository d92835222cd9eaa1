//! `slipway rollback`: put a deployment back on an earlier verified release,
//! after showing what will happen and asking for confirmation.
//!
//! Choosing the release is `plan::rollback::plan_rollback`; switching hosts
//! or the ECS service is `apply::vm` / `apply::ecs`, and recording the end
//! is `apply::rollback::record_end`. This module asks, calls, and reports.

use std::io::IsTerminal;
use std::time::Duration;

use anyhow::{anyhow, bail};
use clap::Args;

use crate::plan::planner;
use crate::state::{ops, Backend};

use super::backend::{open_backend, take_lock};
use super::common::{load_config_with_sources, parse_lock_timeout, prompt, ARTIFACT_CACHE};
use super::{ConfigArgs, EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK};

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The deployment to put back (deployment.NAME or NAME).
    pub deployment: String,
    #[command(flatten)]
    pub config: ConfigArgs,
    /// The version to go back to (default: the newest verified release before the current one).
    #[arg(long = "to", value_name = "VERSION")]
    pub to: Option<String>,
    /// Do not ask for confirmation (CI, incident scripts).
    #[arg(long = "auto-approve")]
    pub auto_approve: bool,
    /// Approve a protected environment without the prompt: -approve NAME.
    #[arg(long = "approve", value_name = "ENVIRONMENT")]
    pub approve: Vec<String>,
    /// -input=false: never ask; confirmation and a protected environment must come from
    /// -auto-approve and -approve, or rollback stops before changing anything.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub input: Option<bool>,
    /// Hosts switched at the same time.
    #[arg(long, default_value_t = 10)]
    pub parallelism: usize,
    /// Wait up to this long for the state lock if someone else holds it (e.g. 30s, 5m).
    #[arg(long = "lock-timeout", value_name = "DURATION", default_value = "0s", value_parser = parse_lock_timeout)]
    pub lock_timeout: Duration,
}

pub(super) fn rollback(args: &RollbackArgs) -> anyhow::Result<u8> {
    let address = ops::deployment_address(&args.deployment);
    let Some((config, _)) = load_config_with_sources(&args.config) else {
        return Ok(EXIT_ERROR);
    };
    let Some(deployment) = config.deployments.get(&address) else {
        bail!(
            "{address} is not in the configuration in {}; nothing was changed",
            args.config.dir.display()
        );
    };
    let environment_config = config
        .environment_of(deployment)
        .ok_or_else(|| anyhow!("{address}: its environment is not in the configuration"))?;
    let environment = planner::environment_state_name(&deployment.environment);
    let hosts: Vec<String> = environment_config
        .vm_hosts
        .as_ref()
        .map(|h| h.hosts.clone())
        .unwrap_or_default();
    let backend: std::sync::Arc<dyn Backend> =
        open_backend(&args.config.dir, &config.backend)?.into();
    let lock = take_lock(
        backend.as_ref(),
        &environment,
        "rollback",
        args.lock_timeout,
    )?;
    let state = backend.read(&environment)?.ok_or_else(|| {
        anyhow!(
            "environment {environment} has no state: nothing was deployed, nothing to roll back"
        )
    })?;
    let saved = state.deployments.get(&address).ok_or_else(|| {
        anyhow!("{address} is not in the state of environment {environment}: nothing was deployed, nothing to roll back")
    })?;
    let plan = crate::plan::rollback::plan_rollback(
        &address,
        &environment,
        saved,
        &hosts,
        args.to.as_deref(),
    )
    .map_err(|message| anyhow!("{message}; nothing was changed"))?;
    print!("{}", config.mask(&plan.render()));
    if plan.is_empty() {
        println!(
            "\nNothing to roll back: {address} already serves {}.",
            plan.to.version
        );
        return Ok(EXIT_OK);
    }
    if !approved_and_confirmed(args, &environment, environment_config.protected)? {
        return Ok(EXIT_ERROR);
    }
    let recorder = crate::apply::Recorder::new(backend.clone(), state.clone());
    let options = crate::apply::ApplyOptions {
        parallelism: args.parallelism.max(1),
        apply_id: uuid::Uuid::new_v4().to_string(),
        who: crate::state::lock::current_user(),
        artifact_cache: args.config.dir.join(ARTIFACT_CACHE),
        cancel: crate::signals::Cancel::new(),
    };
    println!("\nRolling back (apply id {}).", options.apply_id);
    let progress =
        crate::apply::Progress::new(std::io::stderr().is_terminal() && !args.config.no_color);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    // The first Ctrl-C (or SIGTERM) cancels the rollback's token: the hosts
    // in flight finish, no other starts.
    let graceful = crate::signals::graceful(&options.cancel);
    let outcome = runtime.block_on(async {
        match &plan.target {
            crate::plan::rollback::RollbackTarget::Ecs { .. } => {
                crate::apply::ecs::roll_back_to_release(
                    &config, &plan, &recorder, &options, &progress,
                )
                .await
                .map_err(|e| e.to_string())
            }
            crate::plan::rollback::RollbackTarget::Vm { .. } => {
                crate::apply::vm::roll_back_to_release(
                    &config, &plan, &recorder, &options, &progress,
                )
                .await
                .map_err(|e| e.to_string())
            }
        }
    });
    drop(graceful);
    crate::apply::rollback::record_end(&recorder, &plan, &options, &outcome)?;
    drop(lock);
    match outcome {
        Err(error) => {
            println!("  error: {}", config.mask(&error));
            Ok(EXIT_ERROR)
        }
        Ok(outcome) if outcome.failures.is_empty() => {
            let what = match &plan.target {
                crate::plan::rollback::RollbackTarget::Vm { .. } => {
                    format!("{} host(s)", outcome.hosts_rolled_back)
                }
                crate::plan::rollback::RollbackTarget::Ecs { .. } => "the ECS service".to_string(),
            };
            println!(
                "\nRolled back {address} to {} ({what}). apply will not deploy {} again: configure another version.",
                plan.to.version, plan.from_version
            );
            Ok(EXIT_OK)
        }
        Ok(outcome) => {
            for failure in &outcome.failures {
                println!("  error: {}", config.mask(failure));
            }
            if outcome.interrupted {
                println!("\nRollback interrupted: the hosts in flight finished and are recorded. Run the same `slipway rollback` again to finish it.");
                Ok(EXIT_INTERRUPTED)
            } else {
                println!("\nRollback of {address} to {} failed on some targets; state records each host's outcome. Fix them and run `slipway rollback` again: hosts already back are left alone.", plan.to.version);
                Ok(EXIT_ERROR)
            }
        }
    }
}

/// A protected environment is approved (-approve, or typing its name) and
/// the rollback confirmed (-auto-approve, or "yes"). `false` after printing
/// that the rollback was cancelled; an error when an answer is needed and
/// may not be asked for.
fn approved_and_confirmed(
    args: &RollbackArgs,
    environment: &str,
    protected: bool,
) -> anyhow::Result<bool> {
    let interactive = args.input != Some(false) && std::io::stdin().is_terminal();
    if protected && !args.approve.iter().any(|name| name == environment) {
        if !interactive {
            bail!("environment {environment} is protected: approve it with -approve {environment}; nothing was changed");
        }
        let answer = prompt(&format!(
            "Environment {environment} is protected. Type its name to approve: "
        ))?;
        if answer != environment {
            println!("Rollback cancelled: {environment} was not approved. Nothing was changed.");
            return Ok(false);
        }
    }
    if !args.auto_approve {
        if !interactive {
            bail!("rollback needs confirmation: pass -auto-approve, or run it from a terminal without -input=false; nothing was changed");
        }
        let answer = prompt("Do you want to roll back? Only 'yes' will be accepted: ")?;
        if answer != "yes" {
            println!("Rollback cancelled. Nothing was changed.");
            return Ok(false);
        }
    }
    Ok(true)
}
