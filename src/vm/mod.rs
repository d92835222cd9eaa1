//! The remote steps of a VM deployment, as data.
//!
//! What it is for: turning a service's `vm` block and one host ([`steps::HostContext`])
//! into [`steps::RemoteStep`]s, the POSIX `sh` scripts that apply runs on that host in
//! the order of section 11 of the language reference (prechecks, hooks, stop, transfer,
//! install, config files, systemd unit, switch, start, health, smoke, release marker,
//! prune, and rollback when a host fails). Like commands elsewhere in this project,
//! builders return data and never run anything: tests check the exact script text, and
//! run the local-transport scripts with a real shell in a temporary directory.
//!
//! What it is not: nothing here runs a command, opens an SSH connection, uploads a
//! file, waits, retries or reads or writes slipway's state. A runner (SSH or the local
//! transport) runs each script, uploads the artifact to
//! [`steps::artifact_upload_path`], enforces timeouts and retries, and decides what a
//! non-zero exit status means. HTTP health checks are made by the runner too.
//!
//! Conventions shared by every builder:
//!
//! - every path is placed under the host's root ([`steps::host_path`]): `/` over SSH,
//!   the host's directory with the local transport;
//! - every value is quoted with [`shell::quote`], so configuration values (commands,
//!   file contents, names, versions) can never change a script's meaning;
//! - user commands (`start_command`, prechecks, hooks, health and smoke commands) run
//!   as `cd INSTALL_DIR && env SLIPWAY_...=... /bin/sh -c 'COMMAND'`;
//! - what needs root (the systemd unit file, `systemctl`, `chown` to another user) is
//!   prefixed with `sudo -n` when the host context asks for sudo;
//! - files are written to a temporary name and renamed, so a reader sees the old or
//!   the new content, never half of it; the scripts can be run again after a failure.
//!
//! Running the scripts: a script may carry sensitive values (config file contents,
//! the unit's `Environment=` lines). Give it to the shell on standard input
//! (`/bin/sh -s`) rather than as the argument of `/bin/sh -c`: a process's arguments
//! are visible to every user of the host and limited in size (128 KiB for one
//! argument on Linux). Mask scripts before showing them.
//!
//! The hosts need a POSIX `sh`, `tar` with gzip, `sha256sum`, `readlink`, `cmp`, and a
//! `mv` with `-T` (GNU coreutils or BusyBox): Linux hosts.

pub mod config_snapshot;
pub mod shell;
pub mod steps;
