//! The state backend as commands reach it: opening the backend the
//! configuration names (refused while it differs from the one `slipway init`
//! recorded), init's record of it, taking an environment's lock, and reading
//! the states a plan needs.
//!
//! It does not implement a backend, a lock or a state change: those are the
//! `state` module's; this is how the command line calls them and what it
//! prints while it waits.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context as _};

use crate::config::{self, Backend as BackendConfig, Config};
use crate::diagnostics;
use crate::plan::{planner, States};
use crate::state::{lock_with_timeout, Backend, LocalBackend, LockGuard, S3Backend, S3Settings};

use super::common::stderr_color;

/// The state backend the configuration names.
///
/// Refused while it differs from the backend `slipway init` recorded for this
/// configuration directory, until init is run again (to migrate the state, or
/// to take the new backend as it is): planning against an empty new backend
/// would deploy everything as new.
pub fn open_backend(
    config_dir: &Path,
    backend: &BackendConfig,
) -> anyhow::Result<Box<dyn Backend>> {
    if let Some(recorded) = recorded_backend(config_dir)? {
        if &recorded != backend {
            bail!(
                "the state backend changed since `slipway init`: it was {}, the configuration now \
                 names {}. Run `slipway init -migrate-state {dir}` to copy the state of every \
                 environment to the new backend, or `slipway init -reconfigure {dir}` to use it as it is",
                describe_backend_config(config_dir, &recorded),
                describe_backend_config(config_dir, backend),
                dir = config_dir.display()
            );
        }
    }
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

/// Where `slipway init` records the backend it set up, in the configuration directory.
pub(super) const BACKEND_RECORD: &str = ".slipway/backend.json";

/// The backend the last `slipway init` set up for `config_dir`, if any.
pub(super) fn recorded_backend(config_dir: &Path) -> anyhow::Result<Option<BackendConfig>> {
    let path = config_dir.join(BACKEND_RECORD);
    let text = match std::fs::read(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error).with_context(|| format!("cannot read {}", path.display())),
    };
    let recorded = serde_json::from_slice(&text).with_context(|| {
        format!(
            "{} is unreadable; delete it and run `slipway init` again",
            path.display()
        )
    })?;
    Ok(Some(recorded))
}

pub(super) fn record_backend(config_dir: &Path, backend: &BackendConfig) -> anyhow::Result<()> {
    let path = config_dir.join(BACKEND_RECORD);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let mut text = serde_json::to_vec_pretty(backend)?;
    text.push(b'\n');
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// A backend block in words, without connecting to it.
pub(super) fn describe_backend_config(config_dir: &Path, backend: &BackendConfig) -> String {
    match backend {
        BackendConfig::Local { path } => LocalBackend::new(config_dir.join(path)).describe(),
        BackendConfig::S3 {
            bucket,
            prefix,
            endpoint,
            ..
        } => match endpoint {
            Some(endpoint) => format!("s3://{bucket}/{prefix} at {endpoint}"),
            None => format!("s3://{bucket}/{prefix}"),
        },
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

/// The one environment whose state tracks `address`, among `only` (when
/// given) or every environment with state.
pub(super) fn environment_tracking(
    backend: &dyn Backend,
    address: &str,
    only: Option<&str>,
) -> anyhow::Result<String> {
    let candidates = match only {
        Some(name) => vec![name.to_string()],
        None => backend.environments()?,
    };
    let mut found = Vec::new();
    for environment in candidates {
        if backend
            .read(&environment)?
            .is_some_and(|state| state.deployments.contains_key(address))
        {
            found.push(environment);
        }
    }
    match found.as_slice() {
        [one] => Ok(one.clone()),
        [] => bail!("{address} is not in state; list what is tracked with: slipway state list"),
        several => bail!(
            "{address} is in the state of several environments ({}): choose one with -environment NAME",
            several.join(", ")
        ),
    }
}
