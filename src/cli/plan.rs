//! `slipway plan`: load the configuration, read state (and live state with
//! `-refresh`), pin remote artifacts, make the plan, render it and save it
//! with `-out`.
//!
//! It decides nothing about what changes: that is `plan::planner`; rendering
//! is `views`, saving is `plan::saved`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::bail;
use clap::{Args, ValueEnum};

use crate::config::{Config, InputSources};
use crate::diagnostics;
use crate::plan::{self, planner, saved};
use crate::views::{self, ViewFormat};

use super::backend::{open_backend, read_states};
use super::common::{
    exit_without_freeing, load_with_inputs, parse_lock_timeout, stderr_color, use_color,
    ARTIFACT_CACHE,
};
use super::{ConfigArgs, EXIT_CHANGES, EXIT_ERROR, EXIT_OK};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum OutputFormat {
    Human,
    Markdown,
    Json,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Save the plan to FILE for `slipway show` and `slipway apply FILE`.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "human")]
    pub format: OutputFormat,
    /// Same as -format json.
    #[arg(long)]
    pub json: bool,
    /// Same as -format markdown.
    #[arg(long)]
    pub markdown: bool,
    /// Read live state from hosts and ECS before planning, to show drift.
    #[arg(long)]
    pub refresh: bool,
    /// Plan only the deployments of this environment (repeatable).
    #[arg(long = "environment", value_name = "NAME")]
    pub environments: Vec<String>,
    /// Accepted for Terraform habits: plan always exits 0 (no changes), 1 (error) or
    /// 2 (changes present).
    #[arg(long = "detailed-exitcode")]
    pub detailed_exitcode: bool,
    /// -input=false: never ask anything (plan never does; accepted for CI scripts).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub input: Option<bool>,
    /// Accepted for Terraform habits: plan reads state without taking its lock (state
    /// writes are atomic, so a plan never reads half a write).
    #[arg(long = "lock-timeout", value_name = "DURATION", value_parser = parse_lock_timeout)]
    pub lock_timeout: Option<Duration>,
}

/// Pin the remote artifacts the plan will deploy to the digests their
/// sources hold now (see `artifact::remote`); `false` after printing why one
/// cannot be fetched.
pub(super) fn pin_artifacts(
    config: &mut Config,
    options: &plan::PlanOptions,
    config_dir: &Path,
) -> anyhow::Result<bool> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let pinned = runtime.block_on(crate::artifact::remote::pin_remote_artifacts(
        config,
        options,
        &config_dir.join(ARTIFACT_CACHE),
    ));
    match pinned {
        Ok(()) => Ok(true),
        Err(errors) => {
            for error in errors {
                eprintln!("Error: {error}");
            }
            eprintln!("Nothing was planned or changed: plan pins every remote artifact to a digest before it decides anything.");
            Ok(false)
        }
    }
}

pub(super) fn plan_command(args: &PlanArgs) -> anyhow::Result<u8> {
    let inputs =
        InputSources::from_process(args.config.vars.clone(), args.config.var_files.clone());
    let selected: Option<BTreeSet<String>> =
        (!args.environments.is_empty()).then(|| args.environments.iter().cloned().collect());
    let Some((mut config, sources)) = load_with_inputs(
        &args.config.dir,
        &inputs,
        &[],
        selected.as_ref(),
        args.config.no_color,
    ) else {
        return Ok(EXIT_ERROR);
    };
    let backend = open_backend(&args.config.dir, &config.backend)?;
    let recorded = read_states(&config, backend.as_ref())?;
    let mut states = recorded.clone();
    let observations = if args.refresh {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        let observations = runtime.block_on(crate::apply::refresh::observe(&config, &states));
        crate::apply::refresh::fold_into_states(&mut states, &observations);
        Some(observations)
    } else {
        None
    };
    let mut options = plan::PlanOptions {
        environments: (!args.environments.is_empty())
            .then(|| args.environments.iter().cloned().collect()),
        ..Default::default()
    };
    crate::apply::refresh::read_live(&config, &states, &mut options);
    if let Some(only) = &options.environments {
        let known = planner::environments_needed(&config);
        if let Some(unknown) = only.iter().find(|name| !known.contains(*name)) {
            bail!(
                "-environment {unknown}: no such environment; known: {}",
                known.into_iter().collect::<Vec<_>>().join(", ")
            );
        }
    }
    if !pin_artifacts(&mut config, &options, &args.config.dir)? {
        return Ok(EXIT_ERROR);
    }
    let mut plan = match planner::plan(&config, &states, &options) {
        Ok(plan) => plan,
        Err(found) => {
            eprint!(
                "{}",
                diagnostics::render(&sources, &found, stderr_color(args.config.no_color))
            );
            return Ok(EXIT_ERROR);
        }
    };
    if let Some(observations) = &observations {
        crate::apply::refresh::add_drift_reasons(&mut plan, &recorded, observations);
    }
    let format = if args.json {
        OutputFormat::Json
    } else if args.markdown {
        OutputFormat::Markdown
    } else {
        args.format
    };
    let view = match format {
        OutputFormat::Human => ViewFormat::Human {
            color: use_color(args.config.no_color),
        },
        OutputFormat::Markdown => ViewFormat::Markdown,
        OutputFormat::Json => ViewFormat::Json,
    };
    print!("{}", views::render(&plan, view));
    if let Some(out) = &args.out {
        saved::write(out, &plan)?;
        eprintln!(
            "Saved the plan to {}. Inspect it with: slipway show {}",
            out.display(),
            out.display()
        );
        eprintln!("{}", saved::how_to_apply(&plan, &out.display().to_string()));
    }
    let code = if plan.has_changes() {
        EXIT_CHANGES
    } else {
        EXIT_OK
    };
    exit_without_freeing((config, sources, recorded, states, plan));
    Ok(code)
}
