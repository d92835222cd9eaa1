//! A copy of `examples/quickstart` in a temporary directory, with its own
//! block of ports, run through the real `slipway` binary with the local
//! transport. Dropping it stops the app processes its hosts started.
//!
//! What only one test crate needs (gates, notify blocks, S3 state, crash
//! points) stays in that crate, built on this.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use slipway::state::{Backend, LocalBackend, State};

use super::{copy_dir, free_port_block, http_get};

pub struct Quickstart {
    _dir: tempfile::TempDir,
    pub root: PathBuf,
    /// Host `i` (from 0) serves on `base_port + i`.
    pub base_port: u16,
    hosts: usize,
    /// Environment of every slipway run (AWS settings for a moto server).
    pub env: Vec<(String, String)>,
}

impl Quickstart {
    /// The quickstart as it is: three hosts.
    pub fn new() -> Quickstart {
        Quickstart::with_hosts(3)
    }

    /// The quickstart with `hosts` hosts (`host-1` ...), each with its port.
    pub fn with_hosts(hosts: usize) -> Quickstart {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("quickstart");
        copy_dir(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/quickstart"),
            &root,
        );
        let quickstart = Quickstart {
            _dir: dir,
            root,
            base_port: free_port_block(hosts as u16),
            hosts,
            env: Vec::new(),
        };
        if hosts != 3 {
            let names: Vec<String> = quickstart
                .host_names()
                .iter()
                .map(|h| format!("\"{h}\""))
                .collect();
            quickstart.edit_config(
                "hosts     = [\"host-1\", \"host-2\", \"host-3\"]",
                &format!("hosts     = [{}]", names.join(", ")),
            );
        }
        quickstart
    }

    /// Replace the first `from` in main.hcl (which must hold it) by `to`.
    pub fn edit_config(&self, from: &str, to: &str) {
        let path = self.root.join("main.hcl");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(from), "main.hcl has {from:?}");
        std::fs::write(path, text.replacen(from, to, 1)).unwrap();
    }

    /// Replace the app's health check script (for the next version).
    pub fn set_health_check(&self, script: &str) {
        std::fs::write(self.root.join("app/bin/check.sh"), script).unwrap();
    }

    /// slipway with exactly these arguments (no variables added).
    pub fn command_exactly(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_slipway"));
        command
            .args(args)
            .current_dir(&self.root)
            .stdin(Stdio::null())
            .env("NO_COLOR", "1")
            .envs(self.env.iter().cloned());
        command
    }

    /// slipway with these arguments and then `-var base_port=...`.
    pub fn command(&self, args: &[&str]) -> Command {
        let base = format!("base_port={}", self.base_port);
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["-var", &base]);
        self.command_exactly(&all)
    }

    pub fn slipway(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Run slipway with exactly these arguments (no variables added).
    pub fn slipway_exactly(&self, args: &[&str]) -> Output {
        self.command_exactly(args).output().unwrap()
    }

    pub fn apply(&self, version: &str) -> Output {
        let var = format!("version={version}");
        self.slipway(&["apply", ".", "-auto-approve", "-var", &var])
    }

    /// [`Quickstart::apply`] with `-json`: stdout holds one JSON object a line.
    pub fn apply_json(&self, version: &str) -> Output {
        let var = format!("version={version}");
        self.slipway(&["apply", ".", "-json", "-auto-approve", "-var", &var])
    }

    /// The local state backend of main.hcl as shipped.
    pub fn backend(&self) -> LocalBackend {
        LocalBackend::new(self.root.join(".slipway/state"))
    }

    pub fn state(&self) -> State {
        self.backend().read("local").unwrap().expect("state exists")
    }

    pub fn host_names(&self) -> Vec<String> {
        (1..=self.hosts).map(|i| format!("host-{i}")).collect()
    }

    pub fn host_dir(&self, host: &str) -> PathBuf {
        self.root
            .join(".slipway/hosts")
            .join(host)
            .join("opt/hello")
    }

    /// What each host's web server answers on `/`.
    pub fn served(&self) -> Vec<String> {
        (0..self.hosts as u16)
            .map(|i| http_get(self.base_port + i, "/"))
            .collect()
    }

    /// Every host answers that it runs `version`.
    pub fn assert_serving(&self, version: &str) {
        let served = self.served();
        let expected = format!("version {version}");
        assert!(
            served.iter().all(|answer| answer.contains(&expected)),
            "every host serves {version}: {served:?}"
        );
    }
}

impl Drop for Quickstart {
    fn drop(&mut self) {
        for host in self.host_names() {
            let pid_file = self.host_dir(&host).join("run/hello.pid");
            if let Ok(pid) = std::fs::read_to_string(pid_file) {
                let _ = Command::new("kill").arg(pid.trim()).status();
            }
        }
    }
}
