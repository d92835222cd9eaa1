//! Real sshd hosts on loopback, for tests that need SSH.
//!
//! [`SshHosts::start`] starts `count` OpenSSH servers, host N (from 1) listening on
//! `127.0.0.(10+N):PORT`, all on one port chosen for this call (each call gets
//! its own, so tests running in parallel never share a server). Everything lives
//! in one temporary directory:
//!
//! - `client_key` / `client_key.pub`: the key tests log in with (key login as the
//!   current user, root included; no passwords);
//! - `authorized_keys`: that public key, used by every host;
//! - `known_hosts`: every host's key under `[127.0.0.N]:PORT`;
//! - `host-N/`: host N's root directory (sshd sets `SLIPWAY_HOST_ROOT` to it in
//!   every session, as all hosts share this machine's filesystem; it also sets
//!   `SHLVL=1`, which keeps a bash login shell from sourcing the machine's
//!   `~/.bashrc` for every command, as bash does for ssh sessions otherwise), and
//!   `host-N.d/`: its host key, `sshd_config`, pid file and log (`sshd.log`).
//!
//! Without an sshd binary, `start` fails the test naming what to install; it
//! returns `None` (the test skips) only under `SLIPWAY_TEST_ALLOW_SKIP` (see
//! [`crate::support::missing_component`]). [`SshHosts::stop_host`] kills a host's server and every
//! session it runs (as if the machine went away), [`SshHosts::start_host`] starts it
//! again on the same address. Dropping [`SshHosts`] stops everything.
//!
//! [`SshHosts::start_with`] takes [`HostOptions`], opt-in settings for the
//! benchmarks (tests/bench): a `BASH_ENV` file that every session's shell sources
//! (a login shell that costs what a real host's does) and time-stamped session
//! logs (every host logs at `LogLevel VERBOSE`, one `Starting session:` line
//! per session; [`SshHosts::sessions`] counts them).
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

const SSHD: &str = "/usr/sbin/sshd";

/// One port per [`SshHosts::start`] call, starting from a block derived from the
/// process id so that test binaries running side by side start apart.
static NEXT_PORT: AtomicU16 = AtomicU16::new(0);

fn next_port() -> u16 {
    let base = 10_000 + (std::process::id() % 1_000) as u16 * 20;
    let _ = NEXT_PORT.compare_exchange(0, base, Ordering::SeqCst, Ordering::SeqCst);
    let port = NEXT_PORT.fetch_add(1, Ordering::SeqCst);
    if port >= 32_000 {
        // Wrapped through the whole range: start over low.
        NEXT_PORT.store(10_000, Ordering::SeqCst);
    }
    port
}

/// One host as a test sees it.
#[derive(Debug, Clone)]
pub struct HostInfo {
    /// `127.0.0.N:PORT`, as a `vm_hosts` host string.
    pub address: String,
    /// The host's own directory (`SLIPWAY_HOST_ROOT` in its sessions).
    pub root: PathBuf,
}

/// Opt-in settings of [`SshHosts::start_with`]; the default is what
/// [`SshHosts::start`] does.
#[derive(Debug, Clone, Default)]
pub struct HostOptions {
    /// A file every session's shell sources (sshd sets `BASH_ENV` to it; the
    /// user's login shell, bash, sources it for each command it runs).
    pub bash_env: Option<PathBuf>,
    /// Each line of `sshd.log` prefixed with the Unix time, in seconds, it
    /// was logged at (every host logs at `LogLevel VERBOSE`: a `Starting
    /// session:` line per session).
    pub log_sessions: bool,
    /// Each host sees its own `/opt` (its root's `opt`, bind-mounted over
    /// `/opt` in a mount namespace of its server's own) and its sessions get
    /// no `SLIPWAY_HOST_ROOT`: a service installed under `/opt` finds the
    /// host's root at `/`, as on a machine of its own. Needs root and
    /// `unshare` (util-linux). The files stay where a test looks for them,
    /// under `HostInfo::root`.
    pub own_opt: bool,
}

pub struct SshHosts {
    pub hosts: Vec<HostInfo>,
    pub port: u16,
    dir: tempfile::TempDir,
    servers: Vec<Option<Child>>,
    options: HostOptions,
}

impl SshHosts {
    /// Start `count` hosts and wait until each accepts connections.
    pub fn start(count: usize) -> Option<SshHosts> {
        SshHosts::start_with(count, HostOptions::default())
    }

    /// [`SshHosts::start`] with opt-in [`HostOptions`].
    pub fn start_with(count: usize, options: HostOptions) -> Option<SshHosts> {
        assert!(
            (1..=200).contains(&count),
            "between 1 and 200 hosts, not {count}"
        );
        for tool in [SSHD, "ssh", "ssh-keygen"] {
            if !installed(tool) {
                crate::support::missing_component(
                    &format!("{tool} is not installed"),
                    "apt-get install openssh-server openssh-client",
                );
                return None;
            }
        }
        // sshd exits at once without its privilege separation directory.
        if let Err(e) = std::fs::create_dir_all("/run/sshd") {
            panic!("cannot create /run/sshd, which sshd needs: {e}");
        }

        let dir = tempfile::Builder::new()
            .prefix("sshd-")
            .tempdir()
            .expect("temporary directory");
        keygen(&dir.path().join("client_key"), "slipway-test-client");
        std::fs::copy(
            dir.path().join("client_key.pub"),
            dir.path().join("authorized_keys"),
        )
        .expect("authorized_keys");

        for n in 1..=count {
            let conf = dir.path().join(format!("host-{n}.d"));
            std::fs::create_dir_all(&conf).unwrap();
            std::fs::create_dir_all(dir.path().join(format!("host-{n}"))).unwrap();
            keygen(&conf.join("host_key"), &format!("host-{n}"));
        }

        let mut hosts = SshHosts {
            hosts: Vec::new(),
            port: 0,
            dir,
            servers: Vec::new(),
            options,
        };
        // A port another process took between the check and sshd's bind makes
        // sshd exit: try the next one.
        for _ in 0..20 {
            let port = free_port(count);
            hosts.port = port;
            hosts.hosts = (1..=count)
                .map(|n| HostInfo {
                    address: format!("{}:{port}", address(n)),
                    root: hosts.dir.path().join(format!("host-{n}")),
                })
                .collect();
            for n in 1..=count {
                hosts.write_config(n);
            }
            hosts.servers = (0..count).map(|_| None).collect();
            for i in 0..count {
                hosts.spawn(i);
            }
            if (0..count).all(|i| hosts.wait_listening(i)) {
                hosts.write_known_hosts();
                return Some(hosts);
            }
            hosts.stop_all();
        }
        let log = std::fs::read_to_string(hosts.conf_dir(1).join("sshd.log")).unwrap_or_default();
        panic!("sshd did not start on any port; the first host's log:\n{log}");
    }

    /// The private key every host accepts.
    pub fn identity_file(&self) -> PathBuf {
        self.dir.path().join("client_key")
    }

    /// A known_hosts file with every host's key.
    pub fn known_hosts(&self) -> PathBuf {
        self.dir.path().join("known_hosts")
    }

    /// The temporary directory everything lives in.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The public host key of host `i` (0-based), as `type base64`.
    pub fn host_key(&self, i: usize) -> String {
        let path = self.conf_dir(i + 1).join("host_key.pub");
        let text = std::fs::read_to_string(&path).expect("host key");
        let mut words = text.split_whitespace();
        format!("{} {}", words.next().unwrap(), words.next().unwrap())
    }

    /// How many sessions (commands run, uploads) host `i` (0-based) has
    /// started so far: sshd logs a line for each.
    pub fn sessions(&self, i: usize) -> usize {
        let log = self.conf_dir(i + 1).join("sshd.log");
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .filter(|line| line.contains("Starting session: command"))
            .count()
    }

    /// Stop host `i` (0-based) as if the machine went away: its server and every
    /// session it runs are killed, so connections to it break.
    pub fn stop_host(&mut self, i: usize) {
        if let Some(mut child) = self.servers[i].take() {
            kill_tree(child.id());
            let _ = child.wait();
        }
    }

    /// Start host `i` (0-based) again, on the same address and key.
    pub fn start_host(&mut self, i: usize) {
        if self.servers[i].is_some() {
            return;
        }
        self.spawn(i);
        assert!(
            self.wait_listening(i),
            "host {} did not start again; see {}",
            i + 1,
            self.conf_dir(i + 1).join("sshd.log").display()
        );
    }

    /// Host `i`'s (0-based) sshd log.
    pub fn log_file(&self, i: usize) -> PathBuf {
        self.conf_dir(i + 1).join("sshd.log")
    }

    /// The process id of host `i`'s (0-based) server, while it runs.
    pub fn server_pid(&self, i: usize) -> Option<u32> {
        self.servers[i].as_ref().map(Child::id)
    }

    fn conf_dir(&self, n: usize) -> PathBuf {
        self.dir.path().join(format!("host-{n}.d"))
    }

    fn write_config(&self, n: usize) {
        let conf = self.conf_dir(n);
        let text = format!(
            "ListenAddress {address}:{port}\n\
             HostKey {conf}/host_key\n\
             PidFile {conf}/sshd.pid\n\
             AuthorizedKeysFile {dir}/authorized_keys\n\
             StrictModes no\n\
             UsePAM no\n\
             PasswordAuthentication no\n\
             KbdInteractiveAuthentication no\n\
             PermitRootLogin prohibit-password\n\
             Subsystem sftp internal-sftp\n\
             MaxStartups 100:30:200\n\
             LogLevel VERBOSE\n\
             SetEnv {root}SHLVL=1{bash_env}\n",
            address = address(n),
            port = self.port,
            conf = conf.display(),
            dir = self.dir.path().display(),
            root = if self.options.own_opt {
                String::new()
            } else {
                format!(
                    "SLIPWAY_HOST_ROOT={} ",
                    self.dir.path().join(format!("host-{n}")).display()
                )
            },
            bash_env = self
                .options
                .bash_env
                .as_ref()
                .map(|file| format!(" BASH_ENV={}", file.display()))
                .unwrap_or_default(),
        );
        std::fs::write(conf.join("sshd_config"), text).unwrap();
    }

    /// Start host `i`'s server.
    fn spawn(&mut self, i: usize) {
        let conf = self.conf_dir(i + 1);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(conf.join("sshd.log"))
            .unwrap();
        let stamped = self.options.log_sessions;
        let mut command = if self.options.own_opt {
            // unshare and sh exec: the child is the server itself.
            let mut command = Command::new("unshare");
            command
                .args(["--mount", "--propagation", "private", "--", "/bin/sh", "-c"])
                .arg("mkdir -p \"$1/opt\" && mount --bind \"$1/opt\" /opt && shift && exec \"$@\"")
                .arg("sh")
                .arg(self.dir.path().join(format!("host-{}", i + 1)))
                .arg(SSHD);
            command
        } else {
            Command::new(SSHD)
        };
        let mut child = command
            .arg("-D")
            .arg("-e")
            .arg("-f")
            .arg(conf.join("sshd_config"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(if stamped {
                Stdio::piped()
            } else {
                Stdio::from(log.try_clone().unwrap())
            })
            .spawn()
            .expect("start sshd");
        if let Some(stderr) = child.stderr.take() {
            // sshd -e writes no times: prefix each line with the time it was read.
            std::thread::spawn(move || stamp_lines(stderr, log));
        }
        self.servers[i] = Some(child);
    }

    /// Wait (bounded) until host `i` accepts TCP connections.
    fn wait_listening(&mut self, i: usize) -> bool {
        let target: SocketAddr = format!("{}:{}", address(i + 1), self.port).parse().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut pause = Duration::from_millis(2);
        while Instant::now() < deadline {
            if let Some(child) = self.servers[i].as_mut() {
                if let Ok(Some(_)) = child.try_wait() {
                    self.servers[i] = None;
                    return false;
                }
            }
            if TcpStream::connect_timeout(&target, Duration::from_millis(200)).is_ok() {
                return true;
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(50));
        }
        false
    }

    fn write_known_hosts(&self) {
        let text: String = (0..self.hosts.len())
            .map(|i| format!("[{}]:{} {}\n", address(i + 1), self.port, self.host_key(i)))
            .collect();
        std::fs::write(self.known_hosts(), text).unwrap();
    }

    fn stop_all(&mut self) {
        for i in 0..self.servers.len() {
            self.stop_host(i);
        }
    }
}

impl Drop for SshHosts {
    fn drop(&mut self) {
        self.stop_all();
    }
}

/// Copy `from` to `to` line by line, each line prefixed with the Unix time
/// (seconds, microsecond precision) it was read at; ends with `from`.
fn stamp_lines(from: impl std::io::Read, mut to: std::fs::File) {
    use std::io::{BufRead, Write};
    for line in std::io::BufReader::new(from).lines() {
        let Ok(line) = line else { break };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let _ = writeln!(to, "{}.{:06} {line}", now.as_secs(), now.subsec_micros());
    }
}

/// `127.0.0.(10+n)`.
fn address(n: usize) -> String {
    format!("127.0.0.{}", 10 + n)
}

fn installed(tool: &str) -> bool {
    if tool.contains('/') {
        return Path::new(tool).exists();
    }
    std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()))
        .unwrap_or(false)
}

fn keygen(path: &Path, comment: &str) {
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .status()
        .expect("run ssh-keygen");
    assert!(status.success(), "ssh-keygen failed for {}", path.display());
}

/// A port free on the first `count` host addresses.
fn free_port(count: usize) -> u16 {
    loop {
        let port = next_port();
        let free = (1..=count).all(|n| TcpListener::bind((address(n).as_str(), port)).is_ok());
        if free {
            return port;
        }
    }
}

/// Kill `pid` and every process under it. The server is stopped first so that it
/// starts no new session while the tree is read (each session runs in its own
/// process session, so a process group would not reach it).
fn kill_tree(pid: u32) {
    let _ = Command::new("kill")
        .args(["-STOP", &pid.to_string()])
        .status();
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(child) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
            let Some((_, after)) = stat.rsplit_once(')') else {
                continue;
            };
            if let Some(parent) = after.split_whitespace().nth(1).and_then(|p| p.parse().ok()) {
                children.entry(parent).or_default().push(child);
            }
        }
    }
    let mut tree = vec![pid];
    let mut next = 0;
    while next < tree.len() {
        if let Some(kids) = children.get(&tree[next]) {
            tree.extend(kids);
        }
        next += 1;
    }
    let _ = Command::new("kill")
        .arg("-KILL")
        .args(tree.iter().map(|p| p.to_string()))
        .stderr(Stdio::null())
        .status();
}
