//! A real Prometheus on loopback scraping a small test service, for the
//! metric gate tests.
//!
//! [`MetricsApp::start`] runs `app.py` beside this file: a service on a free
//! `127.0.0.1` port whose `/metrics` exposes `app_requests_total` and
//! `app_errors_total` per version, growing at the rates given.
//! [`Prometheus::start`] runs the `prometheus` binary (Debian's package:
//! `apt-get install prometheus`; `SLIPWAY_TEST_PROMETHEUS` names another) on a
//! free port with a temporary configuration and storage directory, scraping
//! the given targets every second, and waits until it is ready. Dropping
//! either kills its process; the temporary directory (with `prometheus.log`)
//! goes with it.
//!
//! Without a `prometheus` binary, `start` fails the test naming what to
//! install; it returns `None` (the test skips) only under
//! `SLIPWAY_TEST_ALLOW_SKIP` (see [`crate::support::missing_component`]). Nothing here uses the package's system
//! service or leaves loopback.
#![allow(dead_code)]

// Both this harness and another may include it in one test crate.
use crate::support::http1;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const APP: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/prometheus/app.py");

/// The test service: per-version request and error counters.
pub struct MetricsApp {
    pub port: u16,
    child: Child,
}

impl MetricsApp {
    /// Start it with `(version, requests per second, errors per second)`.
    pub fn start(rates: &[(&str, f64, f64)]) -> MetricsApp {
        let mut child = Command::new("python3")
            .arg(APP)
            .args(rates.iter().map(|(v, r, e)| format!("{v}={r}:{e}")))
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs tests/it/prometheus/app.py");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("app.py prints its port");
        let port = line
            .trim()
            .strip_prefix("port ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("app.py said {line:?} instead of its port"));
        MetricsApp { port, child }
    }

    /// `127.0.0.1:PORT`, as a scrape target.
    pub fn target(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for MetricsApp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running Prometheus.
pub struct Prometheus {
    /// `http://127.0.0.1:PORT`.
    pub address: String,
    child: Child,
    dir: tempfile::TempDir,
}

impl Prometheus {
    /// Start Prometheus scraping `targets` (`host:port`) every second and
    /// wait until it is ready.
    pub fn start(targets: &[String]) -> Option<Prometheus> {
        let binary = match find_binary() {
            Some(binary) => binary,
            None => {
                crate::support::missing_component(
                    "no prometheus binary",
                    "apt-get install prometheus",
                );
                return None;
            }
        };
        let mut dir = tempfile::Builder::new()
            .prefix("prometheus-")
            .tempdir()
            .expect("temporary directory");
        let targets = targets
            .iter()
            .map(|t| format!("\"{t}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: app\n    static_configs:\n      - targets: [{targets}]\n"
        );
        std::fs::write(dir.path().join("prometheus.yml"), config).expect("prometheus.yml");
        let log_path = dir.path().join("prometheus.log");
        for _ in 0..5 {
            let port = free_port();
            let log = std::fs::File::create(&log_path).expect("prometheus.log");
            let child = Command::new(&binary)
                .arg(format!(
                    "--config.file={}",
                    dir.path().join("prometheus.yml").display()
                ))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.path().join("data").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg("--log.level=warn")
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("prometheus.log"))
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run {}: {e}", binary.display()));
            let mut prometheus = Prometheus {
                address: format!("http://127.0.0.1:{port}"),
                child,
                dir,
            };
            if prometheus.wait_ready() {
                return Some(prometheus);
            }
            let _ = prometheus.child.kill();
            let _ = prometheus.child.wait();
            dir = std::mem::replace(
                &mut prometheus.dir,
                tempfile::tempdir().expect("temporary directory"),
            );
        }
        panic!(
            "prometheus did not start; its log:\n{}",
            std::fs::read_to_string(&log_path).unwrap_or_default()
        );
    }

    /// The result of an instant query, as Prometheus's JSON.
    pub fn query(&self, query: &str) -> serde_json::Value {
        let answer = http1::get(
            &format!("{}/api/v1/query", self.address),
            &[("query", query)],
            Duration::from_secs(10),
        )
        .unwrap_or_else(|e| panic!("query {query}: {e}"));
        serde_json::from_str(&answer.body).expect("JSON")
    }

    /// Wait (bounded) until `query` returns at least one series.
    pub fn wait_for_data(&self, query: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            let answer = self.query(query);
            if answer["data"]["result"]
                .as_array()
                .is_some_and(|r| !r.is_empty())
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        panic!(
            "no data for {query} after 60s; prometheus log:\n{}",
            self.log()
        );
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    fn wait_ready(&mut self) -> bool {
        let url = format!("{}/-/ready", self.address);
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if http1::get(&url, &[], Duration::from_secs(2)).is_ok_and(|a| a.status == 200) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn find_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("SLIPWAY_TEST_PROMETHEUS").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path));
    }
    let found = Command::new("prometheus")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if found {
        return Some(PathBuf::from("prometheus"));
    }
    let debian = PathBuf::from("/usr/bin/prometheus");
    debian.exists().then_some(debian)
}

/// A port free on 127.0.0.1 right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}
