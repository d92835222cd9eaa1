//! `slipway init`: check the configuration and its state backend, create the
//! local state directory, record the backend, and migrate state between
//! backends (`-migrate-state`).
//!
//! It only parses arguments, prints, and calls the state layer: copying an
//! environment's state is `state::ops::migrate`.

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context as _};
use clap::Args;

use crate::config::Backend as BackendConfig;
use crate::state::backend_record::{self, Recorded, RECORD_PATH};
use crate::state::ops;

use super::backend::{open_backend_unchecked, read_states};
use super::common::{load_config, parse_lock_timeout};
use super::{ConfigArgs, EXIT_ERROR, EXIT_OK};

#[derive(Debug, Args)]
pub struct InitArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Copy the state of every environment from the backend recorded by the last init to the
    /// one the configuration names now (same serial, lineage and history).
    #[arg(long = "migrate-state")]
    pub migrate_state: bool,
    /// Use the backend the configuration names now, without copying any state to it.
    #[arg(long, conflicts_with = "migrate_state")]
    pub reconfigure: bool,
    /// Wait up to this long for state locks held by someone else (e.g. 30s, 5m).
    #[arg(long = "lock-timeout", value_name = "DURATION", default_value = "0s", value_parser = parse_lock_timeout)]
    pub lock_timeout: Duration,
}

pub(super) fn init(args: &InitArgs) -> anyhow::Result<u8> {
    let Some(config) = load_config(&args.config) else {
        return Ok(EXIT_ERROR);
    };
    let dir = &args.config.dir;
    let configured = &config.backend;
    let recorded = backend_record::compare(dir, configured)?;
    if args.migrate_state {
        match &recorded {
            Recorded::Nothing => bail!(
                "-migrate-state: no earlier backend is recorded for {dir} (slipway init records the \
                 backend it sets up in {RECORD_PATH}), so there is nothing to migrate from. \
                 Put the previous backend block back, run `slipway init {dir}`, then change the \
                 block and run `slipway init -migrate-state {dir}`",
                dir = dir.display()
            ),
            Recorded::Same => println!(
                "The backend is the one the last init set up ({}): there is nothing to migrate.",
                backend_record::describe(dir, configured)
            ),
            Recorded::Other(previous) => {
                migrate_state(dir, previous, configured, args.lock_timeout)?
            }
        }
    } else if !args.reconfigure {
        backend_record::check_unchanged(dir, configured)?;
    }
    let backend = open_backend_unchecked(dir, configured)?;
    if let BackendConfig::Local { path } = configured {
        let state_dir = dir.join(path);
        std::fs::create_dir_all(&state_dir).with_context(|| {
            format!("cannot create the state directory {}", state_dir.display())
        })?;
    }
    let states = read_states(&config, backend.as_ref())?;
    println!(
        "Configuration: {} deployment(s), {} environment(s), {} rollout(s).",
        config.deployments.len(),
        config.environments.len(),
        config.rollouts.len()
    );
    println!("State backend: {}.", backend.describe());
    for (name, state) in &states {
        match state {
            Some(state) => println!(
                "  {name}: serial {}, lineage {}",
                state.serial, state.lineage
            ),
            None => println!("  {name}: no state yet"),
        }
    }
    backend_record::write(dir, configured)?;
    println!("slipway is ready. Next: slipway plan {}", dir.display());
    Ok(EXIT_OK)
}

/// `init -migrate-state`: copy every environment from `previous` to `configured`.
fn migrate_state(
    dir: &Path,
    previous: &BackendConfig,
    configured: &BackendConfig,
    lock_timeout: Duration,
) -> anyhow::Result<()> {
    let from = open_backend_unchecked(dir, previous)?;
    let to = open_backend_unchecked(dir, configured)?;
    println!(
        "Migrating state from {} to {}.",
        from.describe(),
        to.describe()
    );
    // Ctrl-C, SIGTERM or SIGHUP releases the locks the migration holds.
    crate::signals::install();
    let migrated = ops::migrate(from.as_ref(), to.as_ref(), lock_timeout, |holder| {
        eprintln!(
            "Waiting up to {:.0}s for the lock of environment {}, held by {holder}.",
            lock_timeout.as_secs_f64(),
            holder.environment
        )
    })?;
    if migrated.is_empty() {
        println!("  {} holds no state: nothing to copy.", from.describe());
        return Ok(());
    }
    for environment in &migrated {
        println!(
            "  {}: serial {}, lineage {}, {} history entr{} {}",
            environment.environment,
            environment.serial,
            environment.lineage,
            environment.history_entries,
            if environment.history_entries == 1 {
                "y"
            } else {
                "ies"
            },
            if environment.already_there {
                "(already there)"
            } else {
                "copied"
            }
        );
    }
    println!(
        "Migrated {} environment(s). The state in {} was left as it was; delete it once you have \
         checked the new backend.",
        migrated.len(),
        from.describe()
    );
    Ok(())
}
