//! A lab of real sshd hosts (see `sshd`) running the fixture app of
//! `tests/ssh_fixtures`, and the configuration that deploys it: what the SSH
//! end-to-end modules (`apply_ssh`, `vm_rollouts`) share. Each module adds the
//! observations it needs in an `impl Lab` of its own.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use slipway::state::{Backend, LocalBackend, State};

use crate::sshd::{HostOptions, SshHosts};

/// The environment every lab deploys to.
pub const ENVIRONMENT: &str = "lab";

/// What the app answers on `/` starts with this (the environment's `GREETING`).
pub const GREETING: &str = "Hello over SSH";

/// `count` sshd hosts, a copy of the fixture configuration, and a block of
/// free ports for the apps.
pub struct Lab {
    pub hosts: SshHosts,
    _dir: tempfile::TempDir,
    /// The configuration directory.
    pub root: PathBuf,
    pub base_port: u16,
}

impl Lab {
    /// Start `count` hosts and copy the fixture configuration (no environment
    /// yet: see [`Lab::configure`]); `None` when the test may skip without sshd.
    pub fn start(count: usize, prefix: &str) -> Option<Lab> {
        Lab::start_with(count, prefix, HostOptions::default())
    }

    /// [`Lab::start`] on hosts started with `options`.
    pub fn start_with(count: usize, prefix: &str, options: HostOptions) -> Option<Lab> {
        let hosts = SshHosts::start_with(count, options)?;
        let dir = tempfile::Builder::new().prefix(prefix).tempdir().unwrap();
        let root = dir.path().join("config");
        super::copy_dir(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ssh_fixtures"),
            &root,
        );
        Some(Lab {
            base_port: super::free_port_block(count as u16),
            hosts,
            _dir: dir,
            root,
        })
    }

    /// Write the environment listing the hosts `listed` (0-based), with
    /// `rollout` as the body of the rollout block.
    pub fn configure(&self, listed: &[usize], rollout: &str) {
        let quoted = |s: &str| serde_json::to_string(s).unwrap();
        let addresses: Vec<String> = listed
            .iter()
            .map(|&i| quoted(&self.hosts.hosts[i].address))
            .collect();
        let text = format!(
            "environment \"{ENVIRONMENT}\" {{\n  \
               variables = {{ GREETING = {greeting} }}\n\n  \
               vm_hosts {{\n    \
                 transport        = \"ssh\"\n    \
                 user             = {user}\n    \
                 hosts            = [{hosts}]\n    \
                 identity_file    = {identity}\n    \
                 known_hosts_file = {known_hosts}\n    \
                 connect_timeout  = \"5s\"\n  \
               }}\n\
             }}\n\n\
             rollout \"rolling\" {{\n  {rollout}\n}}\n",
            greeting = quoted(GREETING),
            user = quoted(&login_user()),
            hosts = addresses.join(", "),
            identity = quoted(&self.hosts.identity_file().display().to_string()),
            known_hosts = quoted(&self.hosts.known_hosts().display().to_string()),
        );
        std::fs::write(self.root.join("lab.hcl"), text).unwrap();
    }

    /// Every host, in order.
    pub fn all_hosts(&self) -> Vec<usize> {
        (0..self.hosts.hosts.len()).collect()
    }

    /// slipway in the configuration directory, with the lab's base port.
    pub fn command(&self, args: &[&str]) -> Command {
        let base = format!("base_port={}", self.base_port);
        let mut command = Command::new(env!("CARGO_BIN_EXE_slipway"));
        command
            .args(args)
            .args(["-var", &base])
            .current_dir(&self.root)
            .stdin(Stdio::null())
            .env("NO_COLOR", "1");
        command
    }

    pub fn slipway(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    pub fn apply(&self, version: &str) -> Output {
        let var = format!("version={version}");
        self.slipway(&["apply", ".", "-auto-approve", "-var", &var])
    }

    pub fn state(&self) -> State {
        LocalBackend::new(self.root.join(".slipway/state"))
            .read(ENVIRONMENT)
            .unwrap()
            .expect("state exists")
    }

    pub fn address(&self, i: usize) -> &str {
        &self.hosts.hosts[i].address
    }

    /// Where host `i` has the service installed.
    pub fn install_dir(&self, i: usize) -> PathBuf {
        self.hosts.hosts[i].root.join("opt/app")
    }

    /// A file of the tests' own on host `i`: `/opt/.lab/NAME` there.
    pub fn lab_file(&self, i: usize, name: &str) -> PathBuf {
        self.hosts.hosts[i].root.join("opt/.lab").join(name)
    }

    /// Make host `i`'s health check wait (see `ssh_fixtures/app/bin/check.sh`).
    pub fn hold_health_check(&self, i: usize) {
        let _ = std::fs::remove_file(self.lab_file(i, "health-held"));
        std::fs::create_dir_all(self.lab_file(i, "")).unwrap();
        std::fs::write(self.lab_file(i, "hold-health"), "").unwrap();
    }

    /// Whether host `i`'s health check is being held.
    pub fn health_check_held(&self, i: usize) -> bool {
        self.lab_file(i, "health-held").exists()
    }

    /// Let host `i`'s health check go on.
    pub fn release_health_check(&self, i: usize) {
        let _ = std::fs::remove_file(self.lab_file(i, "hold-health"));
        let _ = std::fs::remove_file(self.lab_file(i, "health-held"));
    }
}

/// What the rollout tests observe on a host of a lab.
impl Lab {
    /// What host `i` has: where `current` points, the config file's bytes,
    /// the release marker's version and apply id.
    pub fn observed(&self, i: usize) -> (String, String, String, String) {
        let dir = self.install_dir(i);
        let current = std::fs::read_link(dir.join("current"))
            .map(|p| p.display().to_string())
            .unwrap_or_else(|e| format!("(no current: {e})"));
        let config = std::fs::read_to_string(dir.join("config/app.env")).unwrap_or_default();
        let marker: serde_json::Value = std::fs::read_to_string(dir.join(".slipway/release.json"))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
        (
            current,
            config,
            marker["version"].as_str().unwrap_or("").to_string(),
            marker["apply_id"].as_str().unwrap_or("").to_string(),
        )
    }

    /// The config file the fixture renders for `version`.
    pub fn config_of(&self, version: &str) -> String {
        format!(
            "BASE_PORT={}\nGREETING='{GREETING}'\nVERSION='{version}'\n",
            self.base_port
        )
    }

    /// Host `i` serves `version`'s pair: `current`, config bytes, marker and
    /// what the app answers (the app reads VERSION from the config file).
    pub fn assert_on(&self, i: usize, version: &str) {
        let (current, config, marker, _) = self.observed(i);
        assert_eq!(
            (current.as_str(), config.as_str(), marker.as_str()),
            (
                format!("releases/{version}").as_str(),
                self.config_of(version).as_str(),
                version
            ),
            "host {} is not on {version}'s pair",
            self.address(i)
        );
        assert_eq!(
            super::http_get(self.base_port + i as u16, "/"),
            format!("{GREETING} (version {version}, {})", self.address(i)),
            "what host {} serves",
            self.address(i)
        );
    }

    pub fn app_pid(&self, i: usize) -> String {
        std::fs::read_to_string(self.install_dir(i).join("run/app.pid")).unwrap_or_default()
    }
}

impl Drop for Lab {
    /// No held health check and no app process outlives the lab.
    fn drop(&mut self) {
        for i in 0..self.hosts.hosts.len() {
            self.release_health_check(i);
            if let Ok(pid) = std::fs::read_to_string(self.install_dir(i).join("run/app.pid")) {
                let _ = Command::new("kill")
                    .arg(pid.trim())
                    .stderr(Stdio::null())
                    .status();
            }
        }
    }
}

/// The user the tests log in as: the one running them (the sshd harness
/// accepts its key for that user).
fn login_user() -> String {
    let output = Command::new("id").arg("-un").output().expect("run id -un");
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}
