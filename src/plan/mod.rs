//! Planning: the pure step from configuration and saved state to a [`Plan`].
//!
//! [`model`] is the plan as data, [`planner`] computes it, [`render`] derives the
//! texts plan diffs (systemd unit, task definition), [`document`] writes the plan JSON
//! document and reads it back (format version first), [`saved`] writes and checks
//! saved plan files. No module here touches hosts or AWS.

pub mod capacity;
pub mod document;
pub mod model;
pub mod planner;
pub mod render;
pub mod rollback;
pub mod saved;

pub use model::*;
pub use planner::{plan, PlanOptions, States};
