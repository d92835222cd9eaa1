//! The configuration language: from a directory of HCL files to a typed,
//! validated [`Config`].
//!
//! Stages: [`raw`] parses files keeping spans, [`check`] compares blocks with the
//! [`schema`], [`load`] evaluates expressions (functions in [`eval`]) and
//! validates. Everything is reported as diagnostics with file, line and column.
//! Nothing here reads state or touches the network.

pub mod check;
pub mod confine;
pub mod eval;
pub mod inputs;
pub mod load;
pub mod model;
pub mod raw;
pub mod schema;
pub mod units;

pub use inputs::InputSources;
pub use load::{load, load_backend_only, load_sources, Loaded};
pub use model::*;
