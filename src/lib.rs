//! slipway: Terraform-style plan and apply for application deployments.
//!
//! Layers, in the order data flows: [`config`] (parse, evaluate, validate),
//! [`graph`] (deployment dependencies), [`plan`] (pure: config + state → plan),
//! [`views`] (render a plan), [`state`] (saved state and locks). [`signals`]
//! turns SIGINT, SIGTERM and SIGHUP into released locks or a cancellation
//! token. See ARCHITECTURE.md for the map and the invariants.

#[cfg(feature = "aws")]
pub mod apply;
pub mod artifact;
#[cfg(feature = "aws")]
pub mod aws;
#[cfg(feature = "aws")]
pub mod cli;
pub mod config;
pub mod diagnostics;
#[cfg(feature = "aws")]
pub mod ecs;
pub mod encode;
pub mod fmt;
pub mod graph;
pub mod http;
pub mod metrics;
pub mod notify;
pub mod plan;
#[cfg(feature = "aws")]
pub mod secret_store;
pub mod signals;
pub mod state;
pub mod transport;
pub mod views;
pub mod vm;
