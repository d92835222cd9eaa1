//! `slipway approve` and `slipway reject`: decide the approval a paused
//! rollout waits for; reject also rolls the rollout back.
//!
//! Recording the decision is `state::ops::decide_approval`; rolling back is
//! `apply::reject_deployment` (which picks the VM or ECS executor). This
//! module takes the lock, calls them, and reports.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, bail};
use clap::Args;

use crate::plan::planner;
use crate::state::{ops, Backend, HistoryResult};

use super::backend::{open_backend, state_backend, take_lock};
use super::common::{load_config_with_sources, parse_lock_timeout, ARTIFACT_CACHE};
use super::{ConfigArgs, EXIT_ERROR, EXIT_OK};

#[derive(Debug, Args)]
pub struct ApprovalArgs {
    /// The deployment that waits (deployment.NAME or NAME).
    pub deployment: String,
    /// Configuration directory (for the backend settings).
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// The approval's name; refused if the deployment waits for another one.
    #[arg(long)]
    pub gate: Option<String>,
    /// The environment whose state holds the deployment (default: the only one that does).
    #[arg(long)]
    pub environment: Option<String>,
    /// Wait up to this long for the state lock if someone else holds it (e.g. 30s, 5m).
    #[arg(long = "lock-timeout", value_name = "DURATION", default_value = "0s", value_parser = parse_lock_timeout)]
    pub lock_timeout: Duration,
}

#[derive(Debug, Args)]
pub struct RejectArgs {
    /// The deployment that waits (deployment.NAME or NAME).
    pub deployment: String,
    #[command(flatten)]
    pub config: ConfigArgs,
    /// The approval's name; refused if the deployment waits for another one.
    #[arg(long)]
    pub gate: Option<String>,
    /// Wait up to this long for the state lock if someone else holds it (e.g. 30s, 5m).
    #[arg(long = "lock-timeout", value_name = "DURATION", default_value = "0s", value_parser = parse_lock_timeout)]
    pub lock_timeout: Duration,
}

pub(super) fn approve(args: &ApprovalArgs) -> anyhow::Result<u8> {
    let address = ops::deployment_address(&args.deployment);
    let backend = state_backend(&args.dir)?;
    let environment =
        ops::environment_tracking(backend.as_ref(), &address, args.environment.as_deref())?;
    let who = crate::state::lock::Approver::of(backend.as_ref());
    let lock = take_lock(backend.as_ref(), &environment, "approve", args.lock_timeout)?;
    let decided = ops::decide_approval(
        backend.as_ref(),
        &environment,
        &address,
        args.gate.as_deref(),
        crate::state::ApprovalStatus::Approved,
        &who,
    );
    lock.release()?;
    let record = decided.map_err(|message| anyhow!("{message}; nothing was changed"))?;
    println!(
        "Approved \"{}\" for {address} ({}), by {}. Run `slipway apply` to continue the rollout from step {}.",
        record.name,
        record.version,
        record.decided_by.as_deref().unwrap_or("?"),
        record.after_step + 1
    );
    Ok(EXIT_OK)
}

pub(super) fn reject(args: &RejectArgs) -> anyhow::Result<u8> {
    let address = ops::deployment_address(&args.deployment);
    let Some((config, _)) = load_config_with_sources(&args.config) else {
        return Ok(EXIT_ERROR);
    };
    let Some(deployment) = config.deployments.get(&address) else {
        bail!(
            "{address} is not in the configuration in {}",
            args.config.dir.display()
        );
    };
    let environment = planner::environment_state_name(&deployment.environment);
    let backend: std::sync::Arc<dyn Backend> =
        open_backend(&args.config.dir, &config.backend)?.into();
    let who = crate::state::lock::Approver::of(backend.as_ref());
    let lock = take_lock(backend.as_ref(), &environment, "reject", args.lock_timeout)?;
    let record = ops::decide_approval(
        backend.as_ref(),
        &environment,
        &address,
        args.gate.as_deref(),
        crate::state::ApprovalStatus::Rejected,
        &who,
    )
    .map_err(|message| anyhow!("{message}; nothing was changed"))?;
    println!(
        "Rejected \"{}\" for {address} ({}). Rolling back.",
        record.name, record.version
    );
    let state = backend
        .read(&environment)?
        .ok_or_else(|| anyhow!("the state of environment {environment} disappeared"))?;
    let recorder = crate::apply::Recorder::new(backend.clone(), state);
    let options = crate::apply::ApplyOptions {
        parallelism: 1,
        apply_id: uuid::Uuid::new_v4().to_string(),
        who: crate::state::lock::current_user(),
        artifact_cache: args.config.dir.join(ARTIFACT_CACHE),
        // Not graceful: an interrupt releases the lock and exits at once.
        cancel: crate::signals::Cancel::new(),
    };
    let progress =
        crate::apply::Progress::new(std::io::stderr().is_terminal() && !args.config.no_color);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let config = std::sync::Arc::new(config);
    let (target, outcome) = runtime.block_on(crate::apply::reject_deployment(
        &config, &address, &recorder, &options, &progress,
    ));
    let is_ecs = target == crate::plan::TargetKind::Ecs;
    let (result, failures) = match &outcome {
        Ok(outcome) if outcome.failures.is_empty() => (HistoryResult::RolledBack, Vec::new()),
        Ok(outcome) => (HistoryResult::Failed, outcome.failures.clone()),
        Err(error) => (HistoryResult::Failed, vec![format!("{address}: {error}")]),
    };
    recorder.update(|state| {
        ops::finish_rejection(state, result, &crate::state::lock::now_rfc3339());
    })?;
    drop(lock);
    for failure in &failures {
        println!("  error: {failure}");
    }
    if failures.is_empty() {
        let hosts = outcome.map(|o| o.hosts_rolled_back).unwrap_or(0);
        println!(
            "Rolled back {address}{}. apply will not deploy {} again; configure another version.",
            if is_ecs {
                String::new()
            } else {
                format!(" ({hosts} host(s))")
            },
            record.version
        );
        Ok(EXIT_OK)
    } else {
        if is_ecs {
            println!("State records the service as ECS runs it; `slipway plan -refresh` shows where it stands.");
        } else {
            println!("State records every host's outcome; `slipway plan` shows where each stands.");
        }
        Ok(EXIT_ERROR)
    }
}
