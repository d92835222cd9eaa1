//! Input variable values from outside the configuration: `SLIPWAY_VAR_*`
//! environment variables, `-var-file` files and `-var name=value` flags.
//!
//! Precedence, lowest first: environment, var files in the order given, `-var`
//! flags in the order given. The last value for a name wins. This module only
//! collects raw values (a malformed `-var` is a [`VarFlagError`]); the loader
//! converts them to each variable's type.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::diagnostics::Span;

/// A value as it arrived, before conversion to the variable's type.
#[derive(Debug, Clone, PartialEq)]
pub enum RawInput {
    /// From `-var` or the environment: text, parsed as HCL for non-string types.
    Text(String),
    /// From a var file: already an HCL value.
    Value(hcl::Value),
}

#[derive(Debug, Clone, PartialEq)]
pub struct InputValue {
    pub raw: RawInput,
    /// Where it came from, for messages: `-var`, `SLIPWAY_VAR_x`, `prod.vars.hcl`.
    pub origin: String,
    pub span: Option<Span>,
}

/// What the command line and environment supply.
#[derive(Debug, Clone, Default)]
pub struct InputSources {
    /// `-var name=value`, in order.
    pub vars: Vec<String>,
    /// `-var-file FILE`, in order.
    pub var_files: Vec<PathBuf>,
    /// Environment variables (name, value); only `SLIPWAY_VAR_` ones are used.
    pub environment: Vec<(String, String)>,
}

impl InputSources {
    /// Sources taken from this process's environment plus the given flags.
    pub fn from_process(vars: Vec<String>, var_files: Vec<PathBuf>) -> InputSources {
        InputSources {
            vars,
            var_files,
            environment: std::env::vars()
                .filter(|(k, _)| k.starts_with(ENV_PREFIX))
                .collect(),
        }
    }
}

pub const ENV_PREFIX: &str = "SLIPWAY_VAR_";

/// Collected values by variable name.
pub type InputValues = BTreeMap<String, InputValue>;

/// A `-var` flag that is not `name=value` (the flag as given).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("-var \"{0}\" must look like -var name=value")]
pub struct VarFlagError(pub String);

/// Split `-var name=value`.
pub fn parse_var_flag(flag: &str) -> Result<(String, String), VarFlagError> {
    match flag.split_once('=') {
        Some((name, value)) if !name.trim().is_empty() => {
            Ok((name.trim().to_string(), value.to_string()))
        }
        _ => Err(VarFlagError(flag.to_string())),
    }
}
