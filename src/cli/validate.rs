//! `slipway validate` and `slipway graph`: commands that only load the
//! configuration (no state, no network).
//!
//! Checking is `config::load`'s and the graph is `graph::DeploymentGraph`'s;
//! this module prints their result.

use super::common::{exit_without_freeing, load_config};
use super::{ConfigArgs, EXIT_ERROR, EXIT_OK};

pub(super) fn validate(args: &ConfigArgs) -> anyhow::Result<u8> {
    let Some(config) = load_config(args) else {
        return Ok(EXIT_ERROR);
    };
    println!(
        "The configuration is valid: {} deployment(s) across {} environment(s).",
        config.deployments.len(),
        config.environments.len()
    );
    exit_without_freeing(config);
    Ok(EXIT_OK)
}

pub(super) fn graph(args: &ConfigArgs) -> anyhow::Result<u8> {
    let Some(config) = load_config(args) else {
        return Ok(EXIT_ERROR);
    };
    print!("{}", crate::graph::DeploymentGraph::build(&config).to_dot());
    Ok(EXIT_OK)
}
