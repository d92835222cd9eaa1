//! The SSH transport: one multiplexed connection per host, reused for every step.
//!
//! [`SshTransport::connect`] starts one OpenSSH master connection (`ssh -M`, run by
//! the `openssh` crate) for a host, and every later [`SshTransport::run`] and
//! [`SshTransport::upload`] opens a new session over that master's control socket
//! (native multiplexing: no `ssh` process is spawned per step). The local `ssh`
//! client does the network work, so `~/.ssh/config`, agents and known_hosts behave
//! as they do for `ssh` on the command line, with `BatchMode=yes`: nothing ever
//! prompts. A password or passphrase that would need typing makes the connection
//! fail instead.
//!
//! - Host strings are `host`, `host:port`, `[v6addr]:port`, optionally `user@` in
//!   front; a port in the host string overrides [`SshOptions::port`].
//! - Host keys are checked against known_hosts: `strict` refuses hosts whose key is
//!   not there; `accept-new` records keys of new hosts. A key that does not match is
//!   refused under both, and never retried.
//! - Failing connections are retried [`SshOptions::connect_retries`] times with a
//!   short, doubling backoff. Refused logins, unknown host names and host-key
//!   problems are not retried: trying again cannot fix them.
//! - A script runs as `/bin/sh -c '<script>'` whatever the login shell is.
//! - Uploads stream the file on the session's stdin into a new `mktemp` file next
//!   to `<remote>`, check its size and rename it into place (`mv -T`), so a file
//!   is never half there and a link already at `<remote>` is replaced, not
//!   followed.
//! - With a bastion, the connection goes through it (`ssh -J`); the identity file,
//!   known_hosts file, user and host-key policy apply to the bastion as well,
//!   through a small generated ssh config that includes `~/.ssh/config`.
//! - Options, a host address or a bastion's generated config that cannot be
//!   made are an [`SshSetupError`]; a connection, step or upload that fails is
//!   a [`TransportError`].
//!
//! Nothing here knows about deployments; steps are built in `crate::vm::steps`.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use openssh::{KnownHosts, Session, SessionBuilder, Stdio};
use tokio::io::AsyncReadExt;
use tokio::io::AsyncWriteExt as _;

use super::{CommandOutput, TransportError};
use crate::config::DurationText;
use crate::encode::ssh::{check_path, check_user, config_word, parse_target, Target};
use crate::vm::shell::quote;

/// How to verify a host's key against known_hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostKeyPolicy {
    /// The key must already be in known_hosts (`StrictHostKeyChecking=yes`).
    Strict,
    /// Record keys of hosts not yet in known_hosts; refuse changed keys
    /// (`StrictHostKeyChecking=accept-new`).
    AcceptNew,
}

impl HostKeyPolicy {
    fn known_hosts(self) -> KnownHosts {
        match self {
            HostKeyPolicy::Strict => KnownHosts::Strict,
            HostKeyPolicy::AcceptNew => KnownHosts::Add,
        }
    }

    fn ssh_option(self) -> &'static str {
        match self {
            HostKeyPolicy::Strict => "yes",
            HostKeyPolicy::AcceptNew => "accept-new",
        }
    }
}

/// How to reach the hosts of one `vm_hosts` block.
#[derive(Debug, Clone)]
pub struct SshOptions {
    /// Login user; `None` lets ssh decide (`~/.ssh/config`, else the local user).
    pub user: Option<String>,
    /// Port for hosts that do not name one; `None` lets ssh decide (22).
    pub port: Option<u16>,
    /// The only key offered when set (`IdentitiesOnly=yes`).
    pub identity_file: Option<PathBuf>,
    /// `[user@]host[:port]` to jump through.
    pub bastion: Option<String>,
    pub host_key_policy: HostKeyPolicy,
    /// For the TCP connection and the SSH handshake (whole seconds, at least one).
    pub connect_timeout: Duration,
    /// Extra attempts after a failed connection.
    pub connect_retries: u32,
    /// known_hosts file to use instead of `~/.ssh/known_hosts`.
    pub known_hosts_file: Option<PathBuf>,
    /// where ControlMaster sockets live (default: the system temporary directory).
    pub control_dir: Option<PathBuf>,
}

/// Used when `vm_hosts` sets no `connect_timeout`.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Extra connection attempts made by [`SshOptions::from_config`].
pub const DEFAULT_CONNECT_RETRIES: u32 = 2;
/// How often the master checks that an idle host still answers (three missed
/// answers end the connection).
const SERVER_ALIVE_INTERVAL: Duration = Duration::from_secs(15);

impl Default for SshOptions {
    fn default() -> Self {
        SshOptions {
            user: None,
            port: None,
            identity_file: None,
            bastion: None,
            host_key_policy: HostKeyPolicy::Strict,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            connect_retries: DEFAULT_CONNECT_RETRIES,
            known_hosts_file: None,
            control_dir: None,
        }
    }
}

impl SshOptions {
    /// Options from a `vm_hosts` block. A relative `identity_file` is relative to
    /// `config_dir`; a leading `~/` is the user's home directory.
    pub fn from_config(
        hosts: &crate::config::VmHosts,
        config_dir: &Path,
    ) -> Result<SshOptions, SshSetupError> {
        let host_key_policy = match hosts.host_key_policy {
            crate::config::HostKeyPolicy::Strict => HostKeyPolicy::Strict,
            crate::config::HostKeyPolicy::AcceptNew => HostKeyPolicy::AcceptNew,
        };
        let connect_timeout = hosts
            .connect_timeout
            .as_ref()
            .map_or(DEFAULT_CONNECT_TIMEOUT, DurationText::get);
        let identity_file = match &hosts.identity_file {
            Some(path) => Some(expand_path(path, config_dir)?),
            None => None,
        };
        Ok(SshOptions {
            user: hosts.user.clone(),
            port: hosts.port,
            identity_file,
            bastion: hosts.bastion.clone(),
            host_key_policy,
            connect_timeout,
            connect_retries: DEFAULT_CONNECT_RETRIES,
            known_hosts_file: match &hosts.known_hosts_file {
                Some(path) => Some(expand_path(path, config_dir)?),
                None => None,
            },
            control_dir: None,
        })
    }

    fn known_hosts_name(&self) -> String {
        match &self.known_hosts_file {
            Some(path) => path.display().to_string(),
            None => "~/.ssh/known_hosts".to_string(),
        }
    }
}

/// Why ssh options, a host address or the ssh config of a connection
/// through a bastion cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum SshSetupError {
    /// A path (`identity_file`, `known_hosts_file`) starts with `~/`
    /// without a home directory to expand it to.
    #[error("identity_file {path:?} starts with ~/ but HOME is not set")]
    HomeNotSet { path: String },
    /// A host string the host grammar refuses (`encode::ssh`'s reason).
    #[error("{0}")]
    BadHost(crate::encode::ssh::SshValueError),
    /// A value the ssh config encoder cannot write (`encode::ssh`'s reason).
    #[error("{0}")]
    BadConfigValue(crate::encode::ssh::SshValueError),
    /// The generated ssh config file could not be written.
    #[error("cannot write {}: {source}", path.display())]
    WriteConfig {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// `~/x` under `$HOME`, a relative path under `base`, an absolute path as it is.
fn expand_path(path: &str, base: &Path) -> Result<PathBuf, SshSetupError> {
    if let Some(rest) = path.strip_prefix("~/") {
        let home = std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .ok_or_else(|| SshSetupError::HomeNotSet {
                path: path.to_string(),
            })?;
        return Ok(PathBuf::from(home).join(rest));
    }
    let path = Path::new(path);
    Ok(if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    })
}

/// The address of a host string (`[user@]address[:port]`) without user and
/// port, e.g. the id a load balancer knows the host by.
pub fn host_address(host: &str) -> Result<String, SshSetupError> {
    parse_target(host)
        .map(|target| target.address)
        .map_err(SshSetupError::BadHost)
}

/// How known_hosts names a host: `addr` on port 22, `[addr]:port` otherwise.
fn known_hosts_entry(address: &str, port: Option<u16>) -> String {
    match port {
        Some(port) if port != 22 => format!("[{address}]:{port}"),
        _ => address.to_string(),
    }
}

/// An ssh config file written for one connection through a bastion, removed
/// with the connection.
struct GeneratedConfig(PathBuf);

impl Drop for GeneratedConfig {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

static CONFIG_COUNTER: AtomicU64 = AtomicU64::new(0);

/// An ssh config that applies the options to the bastion too (ssh passes only
/// `-F` on to the connection it makes to a jump host), then reads the user's own.
///
/// Only checked values reach it: the `Host` pattern is an address of the host
/// grammar (`encode::ssh`), every other value is a [`config_word`], and the
/// file is created new (never through an existing file or link), readable by
/// its owner only.
fn bastion_config(
    options: &SshOptions,
    bastion: &Target,
    control_dir: &Path,
) -> Result<GeneratedConfig, SshSetupError> {
    let word = |value: &str| config_word(value).map_err(SshSetupError::BadConfigValue);
    let mut text = String::from("# Written by slipway for one connection through a bastion.\n");
    text.push_str(&format!("Host {}\n", word(&bastion.address)?));
    text.push_str("  BatchMode yes\n");
    text.push_str(&format!(
        "  StrictHostKeyChecking {}\n",
        options.host_key_policy.ssh_option()
    ));
    text.push_str(&format!(
        "  ConnectTimeout {}\n",
        timeout_seconds(options.connect_timeout)
    ));
    if let Some(file) = &options.identity_file {
        text.push_str(&format!(
            "  IdentityFile {}\n  IdentitiesOnly yes\n",
            word(&file.display().to_string())?
        ));
    }
    if let Some(file) = &options.known_hosts_file {
        text.push_str(&format!(
            "  UserKnownHostsFile {}\n",
            word(&file.display().to_string())?
        ));
    }
    if let (Some(user), None) = (&options.user, &bastion.user) {
        check_user(user).map_err(SshSetupError::BadConfigValue)?;
        text.push_str(&format!("  User {}\n", word(user)?));
    }
    // `-F` replaces both the user's and the system-wide config: read them after.
    text.push_str("Match all\nInclude ~/.ssh/config /etc/ssh/ssh_config\n");
    let path = control_dir.join(format!(
        "slipway-ssh-config-{}-{}",
        std::process::id(),
        CONFIG_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let write = || -> std::io::Result<()> {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        file.write_all(text.as_bytes())
    };
    write().map_err(|source| SshSetupError::WriteConfig {
        path: path.clone(),
        source,
    })?;
    Ok(GeneratedConfig(path))
}

fn timeout_seconds(timeout: Duration) -> u64 {
    // ssh takes whole seconds, and 0 would mean "no timeout".
    timeout.as_secs_f64().ceil().max(1.0) as u64
}

/// Why one connection attempt failed.
enum Failure {
    /// Worth another attempt (refused, timed out, reset...).
    Retry(String),
    /// Trying again cannot help.
    Final(String),
}

/// One connected host.
pub struct SshTransport {
    host: String,
    session: Session,
    _config: Option<GeneratedConfig>,
}

impl SshTransport {
    /// One master connection per host, reused for every step. `starts` bounds how
    /// many connections start at once (a permit is held per attempt, not during
    /// the backoff between attempts).
    pub async fn connect(
        host: &str,
        options: &SshOptions,
        starts: &tokio::sync::Semaphore,
    ) -> Result<SshTransport, TransportError> {
        let error = |detail: String| TransportError::Connect {
            host: host.to_string(),
            detail,
        };
        let target = parse_target(host).map_err(|e| error(format!("bad host address: {e}")))?;
        let bastion = match &options.bastion {
            Some(bastion) => {
                Some(parse_target(bastion).map_err(|e| error(format!("bad bastion: {e}")))?)
            }
            None => None,
        };
        // Validation refused these already; the ssh command line is built from
        // them, so check again rather than trust the caller.
        if let Some(user) = &options.user {
            check_user(user).map_err(|e| error(format!("bad user: {e}")))?;
        }
        for path in [&options.identity_file, &options.known_hosts_file]
            .into_iter()
            .flatten()
        {
            check_path(&path.display().to_string()).map_err(|e| error(e.to_string()))?;
        }
        let port = target.port.or(options.port);
        let base = options
            .control_dir
            .clone()
            .unwrap_or_else(std::env::temp_dir);
        // This process's directory, watched from before its first master
        // starts: the masters end soon after slipway, however it ends.
        let control_dir = super::watchdog::control_dir(&base).map_err(|e| {
            error(format!(
                "cannot create the control socket directory under {}: {e}",
                base.display()
            ))
        })?;

        let mut builder = SessionBuilder::default();
        builder
            .known_hosts_check(options.host_key_policy.known_hosts())
            .connect_timeout(Duration::from_secs(timeout_seconds(
                options.connect_timeout,
            )))
            .server_alive_interval(SERVER_ALIVE_INTERVAL)
            .control_directory(&control_dir);
        if let Some(user) = &options.user {
            builder.user(user.clone());
        }
        if let Some(port) = port {
            builder.port(port);
        }
        if let Some(file) = &options.identity_file {
            builder.keyfile(file);
        }
        if let Some(file) = &options.known_hosts_file {
            // Given as `-o UserKnownHostsFile=VALUE`, which ssh splits at
            // whitespace unless quoted.
            builder.user_known_hosts_file(
                config_word(&file.display().to_string()).map_err(|e| error(e.to_string()))?,
            );
        }
        let config = match &bastion {
            Some(bastion) => {
                let config = bastion_config(options, bastion, &control_dir)
                    .map_err(|e| error(e.to_string()))?;
                builder
                    .config_file(&config.0)
                    .jump_hosts([bastion.jump_spec()]);
                Some(config)
            }
            None => None,
        };

        let attempts = options.connect_retries.saturating_add(1);
        // The ssh process bounds each phase itself; this only guards against a
        // login that never ends.
        let attempt_limit = options.connect_timeout * 3 + Duration::from_secs(10);
        let mut backoff = Duration::from_millis(200);
        let mut attempt = 1;
        loop {
            let result = {
                let _permit = starts.acquire().await.ok();
                tokio::time::timeout(attempt_limit, builder.connect_mux(target.destination())).await
            };
            let failure = match result {
                Ok(Ok(session)) => {
                    return Ok(SshTransport {
                        host: host.to_string(),
                        session,
                        _config: config,
                    });
                }
                Ok(Err(e)) => classify(&e, host, &target, port, options),
                Err(_) => {
                    Failure::Retry(format!("no connection after {}s", attempt_limit.as_secs()))
                }
            };
            match failure {
                Failure::Final(detail) => return Err(error(detail)),
                Failure::Retry(detail) if attempt >= attempts => {
                    let tries = if attempts == 1 {
                        "1 attempt".to_string()
                    } else {
                        format!("{attempts} attempts")
                    };
                    return Err(error(format!(
                        "{detail} (gave up after {tries}); check that the host is up and that \
                         sshd listens on {}",
                        known_hosts_entry(&target.address, Some(port.unwrap_or(22)))
                    )));
                }
                Failure::Retry(_) => {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    attempt += 1;
                }
            }
        }
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    /// Run `script` with `/bin/sh -c` on the host, stdin empty.
    pub async fn run(&self, script: &str) -> Result<CommandOutput, TransportError> {
        let failed = |detail: String| TransportError::Run {
            host: self.host.clone(),
            detail,
            stderr: String::new(),
        };
        let command = format!("/bin/sh -c {}", quote(super::RUN_SCRIPT_FROM_STDIN));
        let mut child = match self
            .session
            .raw_command(&command)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .await
        {
            Ok(child) => child,
            Err(e) => return Err(failed(self.explain(e).await)),
        };
        let stdin = child.stdin().take();
        let stdout = child.stdout().take();
        let stderr = child.stderr().take();
        let script = script.as_bytes().to_vec();
        let send = async move {
            if let Some(mut stdin) = stdin {
                let _ = stdin.write_all(&script).await;
                // Dropping stdin sends EOF: the remote shell has the whole script.
            }
        };
        let read_out = async move {
            let mut text = Vec::new();
            if let Some(mut stdout) = stdout {
                let _ = stdout.read_to_end(&mut text).await;
            }
            text
        };
        let read_err = async move {
            let mut text = Vec::new();
            if let Some(mut stderr) = stderr {
                let _ = stderr.read_to_end(&mut text).await;
            }
            text
        };
        let ((), stdout, stderr) = tokio::join!(send, read_out, read_err);
        match child.wait().await {
            Ok(status) => Ok(CommandOutput {
                status: status.code().unwrap_or(-1),
                stdout: String::from_utf8_lossy(&stdout).into_owned(),
                stderr: String::from_utf8_lossy(&stderr).into_owned(),
            }),
            Err(e) => Err(TransportError::Run {
                host: self.host.clone(),
                detail: self.explain(e).await,
                stderr: String::from_utf8_lossy(&stderr).into_owned(),
            }),
        }
    }

    /// Copy a local file to `remote` (an absolute path on the host): the bytes go
    /// through the session's stdin into a new file next to it, which is renamed to
    /// `remote` once its size is right. Parent directories are created.
    pub async fn upload(&self, local: &Path, remote: &str) -> Result<(), TransportError> {
        let error = |detail: String| TransportError::Upload {
            host: self.host.clone(),
            local: local.display().to_string(),
            remote: remote.to_string(),
            detail,
        };
        let mut file = tokio::fs::File::open(local)
            .await
            .map_err(|e| error(format!("cannot read the local file: {e}")))?;
        let size = file
            .metadata()
            .await
            .map_err(|e| error(format!("cannot read the local file: {e}")))?
            .len();
        let parent = match Path::new(remote).parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.display().to_string(),
            _ => ".".to_string(),
        };
        // A new file made by mktemp next to the target (never an existing file
        // or link), renamed over it with `mv -T` (a link there is replaced).
        let script = format!(
            "set -e\nmkdir -p {d}\np=$(mktemp {d}/.upload-XXXXXX)\ncat > \"$p\"\nsize=$(wc -c < \"$p\")\n\
             if [ \"$size\" -ne {size} ]; then\n  rm -f \"$p\"\n  \
             echo \"received $size of {size} bytes\" >&2\n  exit 1\nfi\nmv -fT \"$p\" {r}\n",
            d = quote(&parent),
            r = quote(remote),
        );
        let command = format!("/bin/sh -c {}", quote(&script));
        let mut child = match self
            .session
            .raw_command(&command)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .await
        {
            Ok(child) => child,
            Err(e) => return Err(error(self.explain(e).await)),
        };
        let stdin = child.stdin().take();
        let stderr = child.stderr().take();
        let send = async move {
            let Some(mut stdin) = stdin else {
                return Ok(0);
            };
            let copied = tokio::io::copy(&mut file, &mut stdin).await;
            // Dropping stdin sends EOF, which ends `cat`.
            drop(stdin);
            copied
        };
        let collect = async move {
            let mut text = Vec::new();
            if let Some(mut stderr) = stderr {
                let _ = stderr.read_to_end(&mut text).await;
            }
            String::from_utf8_lossy(&text).into_owned()
        };
        let (sent, stderr) = tokio::join!(send, collect);
        let status = match child.wait().await {
            Ok(status) => status,
            Err(e) => return Err(error(self.explain(e).await)),
        };
        if !status.success() {
            let output = CommandOutput {
                status: status.code().unwrap_or(-1),
                stdout: String::new(),
                stderr,
            };
            return Err(error(format!(
                "the remote side failed (exit status {}): {}",
                output.status,
                output.tail()
            )));
        }
        // The remote side checked the size, so a short send ends above; this only
        // catches a local read error that happened to match.
        sent.map_err(|e| error(format!("sending the file failed: {e}")))?;
        Ok(())
    }

    /// End the master connection.
    pub async fn close(self) {
        let _ = self.session.close().await;
    }

    /// What went wrong with a session on an established connection.
    async fn explain(&self, e: openssh::Error) -> String {
        let gone = self.session.check().await.is_err();
        match e {
            openssh::Error::InvalidCommand => {
                "the script holds a NUL byte, which no shell can run".to_string()
            }
            _ if gone => format!(
                "the SSH connection is gone ({}); the host may be down, rebooted or \
                 unreachable: check it, then apply again",
                error_text(&e)
            ),
            openssh::Error::RemoteProcessTerminated => {
                "the remote shell ended without an exit status (killed by a signal?)".to_string()
            }
            _ => error_text(&e),
        }
    }
}

/// An openssh error with its cause.
fn error_text(e: &openssh::Error) -> String {
    match std::error::Error::source(e) {
        Some(source) => format!("{e}: {source}"),
        None => e.to_string(),
    }
}

/// What ssh said, without banners and blank lines.
fn ssh_message(text: &str) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(|l| l.trim())
        .filter(|l| {
            !l.is_empty() && !l.starts_with('@') && !l.starts_with("Warning: Permanently added")
        })
        .collect();
    lines[lines.len().saturating_sub(3)..].join("; ")
}

fn classify(
    e: &openssh::Error,
    host: &str,
    target: &Target,
    port: Option<u16>,
    options: &SshOptions,
) -> Failure {
    let io = match e {
        openssh::Error::Connect(io) => io,
        openssh::Error::Master(io) => {
            return Failure::Final(format!(
                "cannot create the control socket under {}: {io}",
                options
                    .control_dir
                    .clone()
                    .unwrap_or_else(std::env::temp_dir)
                    .display()
            ))
        }
        other => return Failure::Retry(error_text(other)),
    };
    let text = io.to_string();
    let entry = known_hosts_entry(&target.address, port);
    let known_hosts = options.known_hosts_name();
    if io.kind() == ErrorKind::NotFound && !text.contains("ssh:") {
        return Failure::Final(format!(
            "cannot run the ssh client ({text}); install OpenSSH's client (`ssh`) on this machine"
        ));
    }
    if text.contains("REMOTE HOST IDENTIFICATION HAS CHANGED")
        || (text.contains("Host key for") && text.contains("has changed"))
    {
        return Failure::Final(format!(
            "host key of {host} does not match known_hosts ({known_hosts}, entry {entry}); \
             someone may be intercepting the connection, or the host was rebuilt; if the host \
             was rebuilt, remove its entry (ssh-keygen -R '{entry}') or use host_key_policy = \
             \"accept-new\" for new hosts, then connect again"
        ));
    }
    if text.contains("host key is known for") || text.contains("Host key verification failed") {
        return Failure::Final(format!(
            "host key of {host} is not in known_hosts ({known_hosts}) and host_key_policy is \
             \"strict\"; add it after checking its fingerprint (ssh-keyscan -p {} {} >> \
             {known_hosts}) or use host_key_policy = \"accept-new\" to record keys of new hosts",
            port.unwrap_or(22),
            target.address
        ));
    }
    if io.kind() == ErrorKind::PermissionDenied
        || text.contains("Permission denied (")
        || text.contains("Too many authentication failures")
    {
        return Failure::Final(format!(
            "the host refused the login ({}); check `user` and `identity_file`, and that the \
             public key is in the user's authorized_keys on the host",
            ssh_message(&text)
        ));
    }
    if text.contains("Could not resolve hostname") && !text.contains("Temporary failure") {
        return Failure::Final(format!("{}; check the host name", ssh_message(&text)));
    }
    let message = ssh_message(&text);
    Failure::Retry(if message.is_empty() {
        "ssh failed without saying why".to_string()
    } else {
        message
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bastion_configs_hold_only_checked_words() {
        let dir = tempfile::tempdir().unwrap();
        let options = SshOptions {
            user: Some("deploy".into()),
            identity_file: Some(PathBuf::from("/keys/my key")),
            ..SshOptions::default()
        };
        let bastion = parse_target("jump.example:2222").unwrap();
        let config = bastion_config(&options, &bastion, dir.path()).unwrap();
        let text = std::fs::read_to_string(&config.0).unwrap();
        assert!(text.contains("Host \"jump.example\"\n"), "{text}");
        assert!(text.contains("  IdentityFile \"/keys/my key\"\n"), "{text}");
        assert!(text.contains("  User \"deploy\"\n"), "{text}");
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&config.0).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);

        // A value outside the grammar never reaches the file.
        let hostile = SshOptions {
            user: Some("x\nProxyCommand touch /tmp/x".into()),
            ..SshOptions::default()
        };
        assert!(bastion_config(&hostile, &bastion, dir.path()).is_err());
        let hostile = SshOptions {
            known_hosts_file: Some(PathBuf::from("/k\"\nProxyCommand x")),
            ..SshOptions::default()
        };
        assert!(bastion_config(&hostile, &bastion, dir.path()).is_err());
    }

    #[test]
    fn the_generated_config_is_never_written_through_a_planted_link() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        std::fs::write(&outside, "untouched").unwrap();
        let next = CONFIG_COUNTER.load(Ordering::Relaxed);
        for n in next..next + 4 {
            let _ = std::os::unix::fs::symlink(
                &outside,
                dir.path()
                    .join(format!("slipway-ssh-config-{}-{n}", std::process::id())),
            );
        }
        let bastion = parse_target("jump").unwrap();
        let _ = bastion_config(&SshOptions::default(), &bastion, dir.path());
        assert_eq!(std::fs::read_to_string(&outside).unwrap(), "untouched");
    }

    #[test]
    fn known_hosts_names() {
        assert_eq!(known_hosts_entry("h", None), "h");
        assert_eq!(known_hosts_entry("h", Some(22)), "h");
        assert_eq!(known_hosts_entry("h", Some(2222)), "[h]:2222");
    }

    #[test]
    fn paths() {
        let base = Path::new("/etc/deploy");
        assert_eq!(
            expand_path("keys/id", base).unwrap(),
            PathBuf::from("/etc/deploy/keys/id")
        );
        assert_eq!(expand_path("/k", base).unwrap(), PathBuf::from("/k"));
        if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
            assert_eq!(
                expand_path("~/.ssh/id", base).unwrap(),
                PathBuf::from(home).join(".ssh/id")
            );
        }
    }

    #[test]
    fn timeouts_round_up() {
        assert_eq!(timeout_seconds(Duration::from_millis(0)), 1);
        assert_eq!(timeout_seconds(Duration::from_millis(1500)), 2);
        assert_eq!(timeout_seconds(Duration::from_secs(10)), 10);
    }

    #[test]
    fn messages_drop_banners() {
        let text = "@@@@@@\n@ WARNING @\n\nWarning: Permanently added 'x' (ED25519) to the list of known hosts.\r\nssh: connect to host 127.0.0.99 port 22: Connection refused\r\n";
        assert_eq!(
            ssh_message(text),
            "ssh: connect to host 127.0.0.99 port 22: Connection refused"
        );
    }
}
