//! `slipway output`: print the configuration's outputs, one or all, as text
//! or JSON.
//!
//! Output values are evaluated by `plan::planner::output_values` and rendered
//! by `views::outputs`; this module never prints a sensitive value and reads
//! no state.

use std::path::{Path, PathBuf};

use anyhow::bail;
use clap::Args;

use crate::plan;

use super::common::load_config;
use super::{ConfigArgs, EXIT_ERROR, EXIT_OK};

#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Print only this output: its value as JSON (strings quoted), or with -raw as plain text.
    pub name: Option<String>,
    /// Configuration directory (every *.hcl file in it is read).
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub dir: PathBuf,
    /// Set a variable: -var name=value (repeatable; wins over var files and SLIPWAY_VAR_name).
    #[arg(long = "var", value_name = "NAME=VALUE")]
    pub vars: Vec<String>,
    /// Read variables from an HCL file of name = value lines (repeatable).
    #[arg(long = "var-file", value_name = "FILE")]
    pub var_files: Vec<PathBuf>,
    /// Print every output as one JSON object: {"NAME": {"value": ..., "sensitive": false}}.
    #[arg(long, conflicts_with = "raw")]
    pub json: bool,
    /// With NAME: print a string value without quotes (for shell scripts).
    #[arg(long, requires = "name")]
    pub raw: bool,
    #[arg(long = "no-color")]
    pub no_color: bool,
}

pub(super) fn output(args: &OutputArgs) -> anyhow::Result<u8> {
    let config_args = ConfigArgs {
        dir: args.dir.clone(),
        vars: args.vars.clone(),
        var_files: args.var_files.clone(),
        no_color: args.no_color,
    };
    // `slipway output DIR`, as other commands take their directory: say how.
    if let Some(name) = args.name.as_deref().filter(|n| Path::new(n).is_dir()) {
        if args.dir == Path::new(".") {
            bail!(
                "{name} is a directory: pass -dir {name} to read its configuration \
                 (output's argument is the name of one output)"
            );
        }
    }
    let Some(config) = load_config(&config_args) else {
        return Ok(EXIT_ERROR);
    };
    let outputs = plan::planner::output_values(&config);
    let Some(name) = &args.name else {
        print!("{}", crate::views::outputs::render(&outputs, args.json));
        return Ok(EXIT_OK);
    };
    let Some(output) = outputs.iter().find(|o| &o.name == name) else {
        let mut message = format!(
            "the configuration in {} has no output {name:?}",
            args.dir.display()
        );
        if let Some(close) =
            crate::diagnostics::did_you_mean(name, outputs.iter().map(|o| o.name.as_str()))
        {
            message.push_str(&format!("; did you mean {close:?}?"));
        }
        bail!(message);
    };
    if output.sensitive {
        bail!("output {name:?} is sensitive: slipway never prints a sensitive value");
    }
    println!(
        "{}",
        crate::views::outputs::render_value(&output.value, args.raw)
    );
    Ok(EXIT_OK)
}
