//! Helpers several commands share: loading the configuration (printing its
//! diagnostics), colour choices, the confirmation prompt, `-lock-timeout`
//! parsing.
//!
//! It reads no state and opens no backend (see `backend`), and decides
//! nothing a command decides: each command chooses its own messages and exit
//! codes.

use std::collections::BTreeSet;
use std::io::IsTerminal;
use std::path::Path;
use std::time::Duration;

use crate::config::{self, Config, InputSources};
use crate::diagnostics;

use super::ConfigArgs;

/// The runner's content-addressed artifact cache, under the configuration directory.
pub(super) const ARTIFACT_CACHE: &str = ".slipway/artifacts";

pub(super) fn use_color(no_color: bool) -> bool {
    !no_color && std::env::var_os("NO_COLOR").is_none() && std::io::stdout().is_terminal()
}

/// Load the configuration, printing diagnostics; `None` when it has errors.
pub(super) fn load_config(args: &ConfigArgs) -> Option<Config> {
    load_config_with_sources(args).map(|(config, _)| config)
}

pub(super) fn stderr_color(no_color: bool) -> bool {
    !no_color && std::env::var_os("NO_COLOR").is_none() && std::io::stderr().is_terminal()
}

pub(super) fn load_config_with_sources(
    args: &ConfigArgs,
) -> Option<(Config, diagnostics::SourceMap)> {
    let inputs = InputSources::from_process(args.vars.clone(), args.var_files.clone());
    let loaded = config::load(&args.dir, &inputs);
    if !loaded.diagnostics.is_empty() {
        eprint!(
            "{}",
            diagnostics::render(
                &loaded.sources,
                &loaded.diagnostics,
                stderr_color(args.no_color)
            )
        );
    }
    Some((loaded.config?, loaded.sources))
}

/// Load `dir` (with a saved plan's values underneath, when given) for plan
/// or apply, printing diagnostics; `None` when it has errors.
///
/// The secrets that the deployments of the `selected` environments (all
/// when `None`) use are read from their stores once, between two loads: the
/// first says which deployments use which `secret` block, the second
/// evaluates with the values read. A secret that cannot be read is an
/// error before any state is locked or host touched; one that no selected
/// deployment uses is not read.
pub(super) fn load_with_inputs(
    dir: &Path,
    inputs: &InputSources,
    saved_values: &[config::SavedInputs],
    selected: Option<&BTreeSet<String>>,
    no_color: bool,
) -> Option<(Config, diagnostics::SourceMap)> {
    let saved = saved_values.first().cloned().unwrap_or_default();
    let print = |loaded: &config::Loaded| {
        if !loaded.diagnostics.is_empty() {
            eprint!(
                "{}",
                diagnostics::render(&loaded.sources, &loaded.diagnostics, stderr_color(no_color))
            );
        }
    };
    let first = config::load_with_saved(dir, inputs, &saved);
    let Some(config) = &first.config else {
        print(&first);
        return None;
    };
    let secrets = match crate::secret_store::read_for(config, selected) {
        Ok(secrets) => secrets,
        Err(found) => {
            print(&first);
            eprint!(
                "{}",
                diagnostics::render(&first.sources, &found, stderr_color(no_color))
            );
            return None;
        }
    };
    let loaded = if secrets.is_empty() {
        first
    } else {
        config::load_with_secrets(dir, inputs, &saved, &secrets)
    };
    print(&loaded);
    Some((loaded.config?, loaded.sources))
}

/// The process ends right after this command: freeing a configuration of
/// thousands of deployments piece by piece would only cost time.
pub(super) fn exit_without_freeing<T>(value: T) {
    std::mem::forget(value);
}

pub(super) fn parse_lock_timeout(text: &str) -> Result<Duration, config::units::UnitError> {
    config::units::parse_duration(text)
}

pub(super) fn prompt(question: &str) -> anyhow::Result<String> {
    use std::io::Write as _;
    print!("{question}");
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(answer.trim().to_string())
}
