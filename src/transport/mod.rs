//! Transports: how apply reaches a host to run a step or copy a file.
//!
//! A [`Transport`] runs a POSIX sh script on one host and uploads files to it.
//! [`local::LocalTransport`] runs on this machine under a per-host root
//! directory (the quickstart and tests); [`ssh::SshTransport`] reaches real
//! hosts over one multiplexed SSH connection each. Transports know nothing of
//! deployments: the steps they run are built elsewhere (`crate::vm::steps`).

pub mod local;
pub mod ssh;
pub mod watchdog;

use std::path::Path;
use std::time::Duration;

/// The command both transports run: it reads the script from stdin and runs
/// it. Scripts carry config file contents (secrets), so they never appear on a
/// command line where `ps` on the host would show them; and since the script
/// has been read to the end before it runs, commands in it see an empty stdin.
pub const RUN_SCRIPT_FROM_STDIN: &str = "script=$(cat) && eval \"$script\"";

/// What a script printed and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandOutput {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

impl CommandOutput {
    pub fn success(&self) -> bool {
        self.status == 0
    }

    /// The last lines of stderr (or stdout), for error messages.
    pub fn tail(&self) -> String {
        let text = if self.stderr.trim().is_empty() {
            &self.stdout
        } else {
            &self.stderr
        };
        let lines: Vec<&str> = text.trim_end().lines().collect();
        lines[lines.len().saturating_sub(5)..].join("\n")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("cannot connect to {host}: {detail}")]
    Connect { host: String, detail: String },
    /// `stderr`: what the script had printed on standard error before the
    /// connection went (a chain of steps names each as it starts).
    #[error("lost the connection to {host} while running a step: {detail}")]
    Run {
        host: String,
        detail: String,
        stderr: String,
    },
    #[error("cannot copy {local} to {host}:{remote}: {detail}")]
    Upload {
        host: String,
        local: String,
        remote: String,
        detail: String,
    },
    #[error("{host} did not answer within {seconds}s")]
    Timeout { host: String, seconds: u64 },
}

/// One host, reached one way or the other.
pub enum Transport {
    Local(local::LocalTransport),
    Ssh(ssh::SshTransport),
}

impl Transport {
    /// Whether the host's service units are managed with `systemctl`
    /// (`daemon-reload` after a unit file changes): over SSH. The local
    /// transport writes unit files under the host's directory and runs no
    /// `systemctl`.
    pub fn runs_systemd(&self) -> bool {
        matches!(self, Transport::Ssh(_))
    }

    pub fn host(&self) -> &str {
        match self {
            Transport::Local(t) => t.host(),
            Transport::Ssh(t) => t.host(),
        }
    }

    /// The directory host paths are under: the host's own directory with the
    /// local transport, `/` over SSH.
    pub fn root(&self) -> String {
        match self {
            Transport::Local(t) => t.root().display().to_string(),
            Transport::Ssh(_) => "/".to_string(),
        }
    }

    /// Run `script` with `/bin/sh -c`, giving up after `timeout`.
    pub async fn run(
        &self,
        script: &str,
        timeout: Duration,
    ) -> Result<CommandOutput, TransportError> {
        let run = async {
            match self {
                Transport::Local(t) => t.run(script).await,
                Transport::Ssh(t) => t.run(script).await,
            }
        };
        match tokio::time::timeout(timeout, run).await {
            Ok(result) => result,
            Err(_) => Err(TransportError::Timeout {
                host: self.host().to_string(),
                seconds: timeout.as_secs(),
            }),
        }
    }

    /// Copy a local file to `remote` (a full path on the host, root included).
    pub async fn upload(&self, local: &Path, remote: &str) -> Result<(), TransportError> {
        match self {
            Transport::Local(t) => t.upload(local, remote).await,
            Transport::Ssh(t) => t.upload(local, remote).await,
        }
    }

    pub async fn close(self) {
        if let Transport::Ssh(t) = self {
            t.close().await;
        }
    }
}
