//! slipway's integration tests: one test crate (one binary linking the AWS SDK
//! once) with a module per area, and the harnesses they share.
//!
//! Harnesses start real components on loopback: `sshd` (OpenSSH servers),
//! `moto` (the AWS emulator, patched by `moto/launcher.py`), `prometheus` (a real
//! Prometheus and a small metrics app), `tls` (a private CA and an https
//! server), `artifact_repo` (an https artifact repository), `registry` (an OCI
//! registry and skopeo); `support` has the
//! quickstart sandbox and small helpers; `common` builds configurations and
//! states for plan tests.
//!
//! Run one area with a filter: `cargo test --test it apply_ssh::`.

mod artifact_repo;
mod common;
mod moto;
mod prometheus;
mod registry;
mod sshd;
mod support;
mod tls;

mod apply_ecs;
mod apply_ecs_resume;
mod apply_gates;
mod apply_local;
mod apply_notify;
mod apply_resume;
mod apply_ssh;
mod apply_tls;
mod artifact_sources;
mod cli;
mod confinement;
mod diagnostics_corpus;
mod ecs_sequences;
mod fuzz_regressions;
mod host_network;
mod hostile_matrix;
mod hostile_values;
mod moto_harness;
mod no_panic;
mod plan_snapshots;
mod rollback_command;
mod saved_plans;
mod secret_stores;
mod secret_taint;
mod ssh_identity_file;
mod ssh_transport;
mod state_commands;
mod state_s3;
mod vm_rollouts;
mod vm_sequences;
