//! The state backend as commands reach it: opening the backend the
//! configuration names (refused while it differs from the one `slipway init`
//! recorded: `crate::state::backend_record`), taking an environment's lock,
//! and reading the states a plan needs.
//!
//! It does not implement a backend, a lock or a state change: those are the
//! `state` module's; this is how the command line calls them and what it
//! prints while it waits.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::bail;

use crate::config::{self, Backend as BackendConfig, Config};
use crate::diagnostics;
use crate::plan::{planner, States};
use crate::state::{
    backend_record, lock_with_timeout, Backend, LocalBackend, LockGuard, S3Backend, S3Settings,
};

use super::common::stderr_color;

/// The state backend the configuration names, refused while it differs
/// from the one `slipway init` recorded
/// ([`crate::state::backend_record::check_unchanged`]).
pub fn open_backend(
    config_dir: &Path,
    backend: &BackendConfig,
) -> anyhow::Result<Box<dyn Backend>> {
    backend_record::check_unchanged(config_dir, backend)?;
    open_backend_unchecked(config_dir, backend)
}

pub(super) fn open_backend_unchecked(
    config_dir: &Path,
    backend: &BackendConfig,
) -> anyhow::Result<Box<dyn Backend>> {
    match backend {
        BackendConfig::Local { path } => Ok(Box::new(LocalBackend::new(config_dir.join(path)))),
        BackendConfig::S3 {
            bucket,
            prefix,
            region,
            endpoint,
            profile,
        } => Ok(Box::new(S3Backend::open(&S3Settings {
            bucket: bucket.clone(),
            prefix: prefix.clone(),
            region: region.clone(),
            endpoint: endpoint.clone(),
            profile: profile.clone(),
        })?)),
    }
}

/// Take the lock of `environment`, waiting up to `timeout` (saying so once).
/// A lock whose holder provably no longer runs (same host name as this
/// machine, no process with its pid) is taken over, saying so. The signal
/// handler is installed first, so Ctrl-C, SIGTERM or SIGHUP releases the lock
/// before the process exits.
pub(super) fn take_lock(
    backend: &dyn Backend,
    environment: &str,
    operation: &str,
    timeout: Duration,
) -> anyhow::Result<LockGuard> {
    crate::signals::install();
    if let Some(holder) = crate::state::lock::take_over_if_gone(backend, environment)? {
        eprintln!(
            "Took over the lock of environment {environment}: its holder ({holder}) no longer runs on this machine."
        );
    }
    Ok(lock_with_timeout(
        backend,
        environment,
        operation,
        timeout,
        |holder| {
            eprintln!(
                "Waiting up to {:.0}s for the lock of environment {environment}, held by {holder}.",
                timeout.as_secs_f64()
            )
        },
    )?)
}

/// Read the state of every environment the plan needs, plus every
/// environment that has a state file.
pub(super) fn read_states(config: &Config, backend: &dyn Backend) -> anyhow::Result<States> {
    let mut names = planner::environments_needed(config);
    names.extend(backend.environments()?);
    let mut states = BTreeMap::new();
    for name in names {
        let state = backend.read(&name)?;
        states.insert(name, state);
    }
    Ok(states)
}

/// The backend for state commands, from the configuration's `slipway` block
/// (which needs no variables).
pub(super) fn state_backend(dir: &Path) -> anyhow::Result<Box<dyn Backend>> {
    match config::load_backend_only(dir) {
        Ok(backend) => open_backend(dir, &backend),
        Err((sources, found)) => {
            eprint!(
                "{}",
                diagnostics::render(&sources, &found, stderr_color(false))
            );
            bail!(
                "cannot read the state backend from the configuration in {}",
                dir.display()
            )
        }
    }
}
