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
//! - Uploads stream the file on the session's stdin into `<remote>.partial`, check
//!   its size and rename it into place, so a file is never half there.
//! - With a bastion, the connection goes through it (`ssh -J`); the identity file,
//!   known_hosts file, user and host-key policy apply to the bastion as well,
//!   through a small generated ssh config that includes `~/.ssh/config`.
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
    ) -> Result<SshOptions, String> {
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

/// `~/x` under `$HOME`, a relative path under `base`, an absolute path as it is.
fn expand_path(path: &str, base: &Path) -> Result<PathBuf, String> {
    if let Some(rest) = path.strip_prefix("~/") {
        let home = std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .ok_or_else(|| format!("identity_file {path:?} starts with ~/ but HOME is not set"))?;
        return Ok(PathBuf::from(home).join(rest));
    }
    let path = Path::new(path);
    Ok(if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    })
}

/// A host string taken apart: what to give ssh, and the port if it names one.
#[derive(Debug, PartialEq, Eq)]
struct Target {
    /// `[user@]address`, without brackets or port.
    destination: String,
    /// The address alone, for messages and known_hosts names.
    address: String,
    port: Option<u16>,
}

/// The address of a host string (`[user@]address[:port]`) without user and
/// port, e.g. the id a load balancer knows the host by.
pub fn host_address(host: &str) -> Result<String, String> {
    parse_host(host).map(|target| target.address)
}

fn parse_host(host: &str) -> Result<Target, String> {
    let (user, rest) = match host.rsplit_once('@') {
        Some((user, rest)) => (Some(user), rest),
        None => (None, host),
    };
    let bad_port = |port: &str| format!("{port:?} is not a port number (1-65535)");
    let parse_port = |port: &str| match port.parse::<u16>() {
        Ok(0) | Err(_) => Err(bad_port(port)),
        Ok(p) => Ok(p),
    };
    let (address, port) = if let Some(bracketed) = rest.strip_prefix('[') {
        let (address, after) = bracketed
            .split_once(']')
            .ok_or_else(|| "an opening [ without its closing ]".to_string())?;
        match after {
            "" => (address, None),
            _ => match after.strip_prefix(':') {
                Some(port) => (address, Some(parse_port(port)?)),
                None => return Err(format!("unexpected {after:?} after ]")),
            },
        }
    } else {
        match rest.split_once(':') {
            // One colon: host:port. More: a bare IPv6 address.
            Some((address, port)) if !port.contains(':') => (address, Some(parse_port(port)?)),
            _ => (rest, None),
        }
    };
    if address.is_empty() {
        return Err("no host name".to_string());
    }
    let destination = match user {
        Some(user) => format!("{user}@{address}"),
        None => address.to_string(),
    };
    Ok(Target {
        destination,
        address: address.to_string(),
        port,
    })
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
fn bastion_config(
    options: &SshOptions,
    bastion: &str,
    control_dir: &Path,
) -> Result<GeneratedConfig, String> {
    let target = parse_host(bastion).map_err(|e| format!("bastion {bastion:?}: {e}"))?;
    let mut text = String::from("# Written by slipway for one connection through a bastion.\n");
    text.push_str(&format!("Host {}\n", target.address));
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
            config_word(&file.display().to_string())
        ));
    }
    if let Some(file) = &options.known_hosts_file {
        text.push_str(&format!(
            "  UserKnownHostsFile {}\n",
            config_word(&file.display().to_string())
        ));
    }
    if let (Some(user), false) = (&options.user, bastion.contains('@')) {
        text.push_str(&format!("  User {}\n", config_word(user)));
    }
    // `-F` replaces both the user's and the system-wide config: read them after.
    text.push_str("Match all\nInclude ~/.ssh/config /etc/ssh/ssh_config\n");
    let path = control_dir.join(format!(
        "slipway-ssh-config-{}-{}",
        std::process::id(),
        CONFIG_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(GeneratedConfig(path))
}

/// A value for an ssh config line, quoted when it holds spaces.
fn config_word(value: &str) -> String {
    if value.contains(char::is_whitespace) {
        format!("\"{value}\"")
    } else {
        value.to_string()
    }
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
    /// The host's `SLIPWAY_HOST_ROOT`, or `/`: the directory host paths are
    /// under (a test bed gives each host on one machine its own root).
    root: String,
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
        let target = parse_host(host).map_err(|e| error(format!("bad host address: {e}")))?;
        let port = target.port.or(options.port);
        let control_dir = options
            .control_dir
            .clone()
            .unwrap_or_else(std::env::temp_dir);
        std::fs::create_dir_all(&control_dir).map_err(|e| {
            error(format!(
                "cannot create the control socket directory {}: {e}",
                control_dir.display()
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
            builder.user_known_hosts_file(file);
        }
        let config = match &options.bastion {
            Some(bastion) => {
                let config = bastion_config(options, bastion, &control_dir).map_err(error)?;
                builder.config_file(&config.0).jump_hosts([bastion]);
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
                tokio::time::timeout(attempt_limit, builder.connect_mux(&target.destination)).await
            };
            let failure = match result {
                Ok(Ok(session)) => {
                    // The master ends soon after slipway, however it ends.
                    super::watchdog::watch(session.control_socket());
                    let mut transport = SshTransport {
                        host: host.to_string(),
                        root: "/".to_string(),
                        session,
                        _config: config,
                    };
                    let probe = transport
                        .run("printf '%s' \"${SLIPWAY_HOST_ROOT:-/}\"")
                        .await?;
                    if probe.success() && probe.stdout.starts_with('/') {
                        transport.root = probe.stdout;
                    }
                    return Ok(transport);
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

    /// The host as it was given to [`SshTransport::connect`].
    /// The directory host paths are under (see the field).
    pub fn root(&self) -> &str {
        &self.root
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    /// Run `script` with `/bin/sh -c` on the host, stdin empty.
    pub async fn run(&self, script: &str) -> Result<CommandOutput, TransportError> {
        let failed = |detail: String| TransportError::Run {
            host: self.host.clone(),
            detail,
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
            Err(e) => Err(failed(self.explain(e).await)),
        }
    }

    /// Copy a local file to `remote` (an absolute path on the host): the bytes go
    /// through the session's stdin into `remote.partial`, which is renamed to
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
        let partial = format!("{remote}.partial");
        let mkdir = match Path::new(remote).parent() {
            Some(parent) if !parent.as_os_str().is_empty() => {
                format!("mkdir -p {}\n", quote(&parent.display().to_string()))
            }
            _ => String::new(),
        };
        let script = format!(
            "set -e\n{mkdir}cat > {p}\nsize=$(wc -c < {p})\n\
             if [ \"$size\" -ne {size} ]; then\n  rm -f {p}\n  \
             echo \"received $size of {size} bytes\" >&2\n  exit 1\nfi\nmv -f {p} {r}\n",
            p = quote(&partial),
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
    fn host_strings() {
        let t = parse_host("web-1").unwrap();
        assert_eq!((t.destination.as_str(), t.port), ("web-1", None));
        let t = parse_host("10.0.0.5:2222").unwrap();
        assert_eq!((t.destination.as_str(), t.port), ("10.0.0.5", Some(2222)));
        let t = parse_host("deploy@host:22").unwrap();
        assert_eq!((t.destination.as_str(), t.port), ("deploy@host", Some(22)));
        assert_eq!(t.address, "host");
        let t = parse_host("[::1]:2200").unwrap();
        assert_eq!((t.destination.as_str(), t.port), ("::1", Some(2200)));
        let t = parse_host("fe80::1").unwrap();
        assert_eq!((t.destination.as_str(), t.port), ("fe80::1", None));
        assert!(parse_host("host:abc").is_err());
        assert!(parse_host("host:0").is_err());
        assert!(parse_host("host:70000").is_err());
        assert!(parse_host(":22").is_err());
        assert!(parse_host("[::1").is_err());
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
