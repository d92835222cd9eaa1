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
//! - `host-N/`: host N's own directory. Each host's server runs in a mount
//!   namespace of its own where `host-N/opt` is bind-mounted over `/opt` and
//!   `host-N/etc/systemd/system` over `/etc/systemd/system`, so a service
//!   installed under `/opt`, and its unit file, land in the host's own
//!   directory, as on a machine of its own, and a test finds them there (the
//!   rest of the filesystem is this machine's: a test deploys under `/opt`
//!   only).
//!   sshd sets `SHLVL=1` in every session, which keeps a bash login shell from
//!   sourcing the machine's `~/.bashrc` for every command, as bash does for ssh
//!   sessions otherwise.
//! - `host-N.d/`: its host key, `sshd_config`, pid file and log (`sshd.log`).
//!
//! Without an sshd binary, or without root (the mount namespaces need it), `start`
//! fails the test naming what to install or how to run; it
//! returns `None` (the test skips) only under `SLIPWAY_TEST_ALLOW_SKIP` (see
//! [`crate::support::missing_component`]). [`SshHosts::stop_host`] kills a host's server and every
//! session it runs (as if the machine went away), [`SshHosts::start_host`] starts it
//! again on the same address. Dropping [`SshHosts`] stops everything.
//!
//! [`SshHosts::start_with`] takes [`HostOptions`], opt-in settings for the
//! benchmarks (tests/bench): a `BASH_ENV` file that every session's shell sources
//! (a login shell that costs what a real host's does) and time-stamped session
//! logs (every host logs at `LogLevel VERBOSE`, one `Starting session:` line
//! per session; [`SshHosts::sessions`] counts them), and a network namespace per host
//! ([`HostOptions::own_network`]: the host listens on an address of its own,
//! reached over a veth pair, and its `localhost` is its own).
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

/// What a host's server runs first, in its own mount namespace, with the
/// host's directory as `$1`: that directory's `opt` over `/opt`, and its
/// `etc/systemd/system` over `/etc/systemd/system` (where a unit file goes),
/// then the server (`$2...`).
const OWN_DIRECTORIES: &str = "set -e\n\
    mkdir -p \"$1/opt\" \"$1/etc/systemd/system\" /etc/systemd/system\n\
    mount --bind \"$1/opt\" /opt\n\
    mount --bind \"$1/etc/systemd/system\" /etc/systemd/system\n\
    shift\n\
    exec \"$@\"";

/// One host as a test sees it.
#[derive(Debug, Clone)]
pub struct HostInfo {
    /// `127.0.0.N:PORT`, as a `vm_hosts` host string.
    pub address: String,
    /// The host's own directory: its `opt` is the host's `/opt`, its
    /// `etc/systemd/system` the host's `/etc/systemd/system`.
    pub root: PathBuf,
    /// With [`HostOptions::own_network`]: the host's network namespace.
    pub netns: Option<String>,
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
    /// Each host is its own machine on the network too: its server runs in a
    /// network namespace of its own, reached over a veth pair at an address
    /// of 198.18.0.0/15 (the range set aside for benchmarking networks, used
    /// only inside this machine), so `localhost` on a host is that host and
    /// every host can listen on the same port. Needs root and `ip`
    /// (iproute2). [`HostInfo::netns`] names the namespace, for a test to
    /// look at the host from inside (`ip netns exec`).
    pub own_network: bool,
}

/// The network namespaces and veth pairs of one [`SshHosts`] with
/// [`HostOptions::own_network`]: block `block` of 198.18.0.0/15.
#[derive(Debug)]
struct OwnNetwork {
    block: usize,
    count: usize,
    /// Where the block is claimed: removed with the namespaces.
    claim: PathBuf,
}

/// Where blocks are claimed: a file per block holding its owner's pid.
const NETWORK_CLAIMS: &str = "/run/slipway-test-networks";

/// Blocks of 512 addresses (a /31 per host) in 198.18.0.0/15.
const NETWORK_BLOCKS: usize = 256;

impl OwnNetwork {
    /// Claim a free block (one whose owner is gone is cleaned up and taken)
    /// and give each of `count` hosts its namespace and veth pair.
    fn create(count: usize) -> Result<OwnNetwork, String> {
        std::fs::create_dir_all(NETWORK_CLAIMS).map_err(|e| format!("{NETWORK_CLAIMS}: {e}"))?;
        let start = std::process::id() as usize;
        for attempt in 0..NETWORK_BLOCKS {
            let block = (start + attempt) % NETWORK_BLOCKS;
            let claim = Path::new(NETWORK_CLAIMS).join(block.to_string());
            if !claim_new(&claim) {
                let owner = std::fs::read_to_string(&claim).unwrap_or_default();
                let alive = owner
                    .trim()
                    .parse::<u32>()
                    .is_ok_and(|pid| Path::new(&format!("/proc/{pid}")).exists());
                if alive || owner.trim().is_empty() {
                    continue;
                }
                // Its owner was killed before it could clean up.
                let _ = run_ip_script(&teardown_script(block, 200));
                let _ = std::fs::remove_file(&claim);
                if !claim_new(&claim) {
                    continue;
                }
            }
            std::fs::write(&claim, std::process::id().to_string())
                .map_err(|e| format!("{}: {e}", claim.display()))?;
            let network = OwnNetwork {
                block,
                count,
                claim,
            };
            let shared = network.shared_address();
            let hosts: String = (1..=count)
                .map(|n| {
                    format!(
                        "ip netns add {ns}\n\
                         ip link add {runner} type veth peer name {host} netns {ns}\n\
                         ip addr add {runner_address}/31 dev {runner}\n\
                         ip link set {runner} up\n\
                         ip -n {ns} addr add {host_address}/31 dev {host}\n\
                         ip -n {ns} link set {host} up\n\
                         ip -n {ns} link set lo up\n\
                         ip -n {ns} route add {shared}/32 via {runner_address} dev {host}\n",
                        ns = network.netns(n),
                        runner = format!("slw{block}r{n}"),
                        host = format!("slw{block}h{n}"),
                        runner_address = network_address(block, n, 0),
                        host_address = network.address(n),
                    )
                })
                .collect();
            let script = format!("ip addr replace {shared}/32 dev lo\n{hosts}");
            run_ip_script(&script)?;
            return Ok(network);
        }
        Err(format!(
            "all {NETWORK_BLOCKS} blocks of test host addresses are taken (see {NETWORK_CLAIMS})"
        ))
    }

    /// Host `n`'s (from 1) namespace.
    fn netns(&self, n: usize) -> String {
        format!("slw{}n{n}", self.block)
    }

    /// Host `n`'s (from 1) address, in its namespace.
    fn address(&self, n: usize) -> String {
        network_address(self.block, n, 1)
    }

    /// An address of this machine every host of the block reaches (each
    /// through its own veth pair): the block's first, which no host pair
    /// uses, on the loopback device, with a route to it in each namespace.
    fn shared_address(&self) -> String {
        shared_address(self.block)
    }
}

fn shared_address(block: usize) -> String {
    network_address(block, 0, 0)
}

impl Drop for OwnNetwork {
    fn drop(&mut self) {
        // Deleting a namespace deletes its end of the veth pair, and the pair.
        let _ = run_ip_script(&teardown_script(self.block, self.count));
        let _ = std::fs::remove_file(&self.claim);
    }
}

/// Create the claim file `claim`; `false` when it exists (or cannot be made).
fn claim_new(claim: &Path) -> bool {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(claim)
        .is_ok()
}

/// 198.18.0.0 + 512 * block + 2 * n + end: end 0 is the runner's side of host
/// `n`'s veth pair, 1 the host's.
fn network_address(block: usize, n: usize, end: usize) -> String {
    let base: u32 = (198 << 24) | (18 << 16);
    let address = base + (512 * block + 2 * n + end) as u32;
    std::net::Ipv4Addr::from(address).to_string()
}

/// Remove the namespaces of hosts 1..=`count` of `block` that exist, with
/// every process still in them (a service a test deployed, which left its
/// server's process tree when it went into the background): a namespace
/// lives, and its address stays taken, while a process is in it.
fn teardown_script(block: usize, count: usize) -> String {
    let hosts: String = (1..=count)
        .map(|n| {
            format!(
                "ip netns pids slw{block}n{n} 2>/dev/null | xargs -r kill -KILL 2>/dev/null || true\n\
                 ip netns del slw{block}n{n} 2>/dev/null || true\n"
            )
        })
        .collect();
    format!(
        "{hosts}ip addr del {}/32 dev lo 2>/dev/null || true\n",
        shared_address(block)
    )
}

fn run_ip_script(script: &str) -> Result<(), String> {
    let output = Command::new("/bin/sh")
        .arg("-ec")
        .arg(script)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("/bin/sh: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "setting up the hosts' networks failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

pub struct SshHosts {
    pub hosts: Vec<HostInfo>,
    pub port: u16,
    dir: tempfile::TempDir,
    servers: Vec<Option<Child>>,
    options: HostOptions,
    /// Dropped after the servers (declared after them).
    network: Option<OwnNetwork>,
}

impl SshHosts {
    /// With [`HostOptions::own_network`]: an address of this machine that
    /// every host reaches (a server the hosts download from listens there).
    pub fn shared_address(&self) -> Option<String> {
        self.network.as_ref().map(OwnNetwork::shared_address)
    }

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
        if !running_as_root() {
            crate::support::missing_component(
                "test hosts need root: each host's sshd runs in a mount namespace of its own",
                "run the tests as root",
            );
            return None;
        }
        for tool in [SSHD, "ssh", "ssh-keygen", "unshare"] {
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

        let network = if options.own_network {
            match OwnNetwork::create(count) {
                Ok(network) => Some(network),
                Err(problem) => {
                    crate::support::missing_component(
                        &format!("test hosts with networks of their own: {problem}"),
                        "run as root, with iproute2 (apt-get install iproute2)",
                    );
                    return None;
                }
            }
        } else {
            None
        };
        let mut hosts = SshHosts {
            hosts: Vec::new(),
            port: 0,
            dir,
            servers: Vec::new(),
            options,
            network,
        };
        // A port another process took between the check and sshd's bind makes
        // sshd exit: try the next one.
        for _ in 0..20 {
            let port = if hosts.network.is_some() {
                next_port()
            } else {
                free_port(count)
            };
            hosts.port = port;
            hosts.hosts = (1..=count)
                .map(|n| HostInfo {
                    address: format!("{}:{port}", hosts.address(n)),
                    root: hosts.dir.path().join(format!("host-{n}")),
                    netns: hosts.network.as_ref().map(|network| network.netns(n)),
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

    /// What host `i` (0-based, with [`HostOptions::own_network`]) answers
    /// on its own `localhost` at `port` and `path`, asked from inside its
    /// network namespace: the body, or `(nothing on port PORT: why)`.
    pub fn http_get_on_host(&self, i: usize, port: u16, path: &str) -> String {
        let netns = self.hosts[i]
            .netns
            .as_deref()
            .expect("a host with its own network");
        let output = Command::new("ip")
            .args(["netns", "exec", netns, "curl", "-sS", "--max-time", "5"])
            .arg(format!("http://127.0.0.1:{port}{path}"))
            .output()
            .expect("run ip netns exec curl");
        if output.status.success() {
            String::from_utf8_lossy(&output.stdout).trim().to_string()
        } else {
            format!(
                "(nothing on port {port}: {})",
                String::from_utf8_lossy(&output.stderr).trim()
            )
        }
    }

    /// Host `i`'s (0-based) sshd log.
    pub fn log_file(&self, i: usize) -> PathBuf {
        self.conf_dir(i + 1).join("sshd.log")
    }

    /// The process id of host `i`'s (0-based) server, while it runs.
    pub fn server_pid(&self, i: usize) -> Option<u32> {
        self.servers[i].as_ref().map(Child::id)
    }

    /// Host `n`'s (from 1) address: `127.0.0.(10+n)`, or its own network's.
    fn address(&self, n: usize) -> String {
        match &self.network {
            Some(network) => network.address(n),
            None => address(n),
        }
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
             SetEnv SHLVL=1{bash_env}\n",
            address = self.address(n),
            port = self.port,
            conf = conf.display(),
            dir = self.dir.path().display(),
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
        // `ip netns exec`, unshare and sh exec: the child is the server itself.
        let mut command = match &self.network {
            Some(network) => {
                let mut command = Command::new("ip");
                command.args(["netns", "exec", &network.netns(i + 1), "unshare"]);
                command
            }
            None => Command::new("unshare"),
        };
        command
            .args(["--mount", "--propagation", "private", "--", "/bin/sh", "-c"])
            .arg(OWN_DIRECTORIES)
            .arg("sh")
            .arg(self.dir.path().join(format!("host-{}", i + 1)))
            .arg(SSHD);
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
        let target: SocketAddr = format!("{}:{}", self.address(i + 1), self.port)
            .parse()
            .unwrap();
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
            .map(|i| {
                format!(
                    "[{}]:{} {}\n",
                    self.address(i + 1),
                    self.port,
                    self.host_key(i)
                )
            })
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

/// Whether the tests run as root (uid 0), as the mount namespaces need.
fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| output.stdout.trim_ascii() == b"0")
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
