//! Small helpers shared by the end-to-end tests: copying an example, the text
//! a command printed, a plain HTTP GET on loopback, what to do when a real
//! component is missing; in [`quickstart`], a sandbox around
//! `examples/quickstart`; in [`webhook`], a receiver of notifications.

pub mod http1;
pub mod quickstart;
pub mod sequences;
pub mod ssh_lab;
pub mod webhook;

use std::path::Path;
use std::process::Output;

/// Copy a directory tree, leaving out `.slipway` (state and hosts of earlier runs).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() == ".slipway" {
            continue;
        }
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// What a command printed: stdout, then stderr.
pub fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The body of `GET path` on 127.0.0.1:`port`, or a note when nothing listens.
pub fn http_get(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return format!("(nothing on port {port})");
    };
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or("")
        .trim()
        .to_string()
}

/// A base port below the kernel's ephemeral range (32768 and up, where moto,
/// Prometheus and outgoing connections get theirs) such that `count`
/// consecutive ports are free now. The tests of one process get disjoint
/// blocks; processes start at different places.
pub fn free_port_block(count: u16) -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    const LOW: u32 = 10_000;
    const HIGH: u32 = 32_000;
    let seed = std::process::id().wrapping_mul(7919);
    for _ in 0..500 {
        let offset = NEXT.fetch_add(u32::from(count), Ordering::SeqCst);
        let base = (LOW + (seed.wrapping_add(offset)) % (HIGH - LOW - u32::from(count))) as u16;
        if (0..count).all(|i| std::net::TcpListener::bind(("127.0.0.1", base + i)).is_ok()) {
            return base;
        }
    }
    panic!("no {count} consecutive free ports on 127.0.0.1 below 32000");
}

/// The shares of traffic an `apply -json` run moved to `service`, in order:
/// its `traffic_shifted` events of a step shifted now (or a first service's
/// one step), not the steps an interrupted apply had already shifted.
pub fn traffic_shifts(lines: &[serde_json::Value], service: &str) -> Vec<u32> {
    lines
        .iter()
        .filter(|line| line["type"] == "progress")
        .map(|line| &line["event"])
        .filter(|event| {
            event["kind"] == "traffic_shifted"
                && event["service"] == service
                && event["how"] != "already_shifted"
        })
        .map(|event| {
            let percent = event["percent"].as_u64();
            u32::try_from(percent.unwrap_or_else(|| panic!("a share: {event}"))).unwrap()
        })
        .collect()
}

/// What a `-json` command printed on stdout: one JSON object a line (a line
/// that is not one fails the test).
pub fn json_lines(output: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not one JSON object ({e}): {line}"))
        })
        .collect()
}

/// The results of the last `count` history entries of `state`, newest first.
pub fn latest_results(state: &slipway::state::State, count: usize) -> Vec<&str> {
    state
        .history
        .iter()
        .rev()
        .take(count)
        .map(|h| h.result.as_str())
        .collect()
}

/// The variable that lets a test run skip the tests whose real component
/// (sshd, Prometheus, moto) is not installed. Without it a missing component
/// fails the test that needs it, so a green run means everything ran.
pub const ALLOW_SKIP: &str = "SLIPWAY_TEST_ALLOW_SKIP";

/// A real component a test needs is missing: fail naming it and how to
/// install it (`tests/setup.sh` installs them all), or, only when
/// [`ALLOW_SKIP`] is set and `CI` is not, print a note and let the test skip.
pub fn missing_component(what: &str, install: &str) {
    let allowed = std::env::var_os(ALLOW_SKIP).is_some() && std::env::var_os("CI").is_none();
    if !allowed {
        panic!(
            "{what}: install it ({install}, or run tests/setup.sh for every test \
             component), or set {ALLOW_SKIP}=1 to skip the tests that need it"
        );
    }
    eprintln!("note: skipping because {ALLOW_SKIP} is set: {what} ({install} to run this test)");
}

/// Run `script` (a Python server beside a harness) with `args`: it prints
/// `port N` on its first line once it listens. Returns the child (its
/// stdout taken) and the port.
pub fn spawn_python_server(script: &str, args: &[&std::ffi::OsStr]) -> (std::process::Child, u16) {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let mut child = Command::new("python3")
        .arg(script)
        .args(args)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("python3 runs {script}: {e}"));
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .unwrap_or_else(|e| panic!("{script} prints its port: {e}"));
    let port = line
        .trim()
        .strip_prefix("port ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("{script} said {line:?} instead of its port"));
    (child, port)
}

/// The summaries of a deployment change's `drift` reasons, from `plan
/// -json` (`change` is one entry of its `deployments`).
pub fn drift_summaries(change: &serde_json::Value) -> Vec<String> {
    change["reasons"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["kind"] == "drift")
        .map(|r| r["summary"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// A stand-in for the command `name` in `bin`, which only appends its
/// arguments to `log`, one line per run (put `bin` first on the PATH).
pub fn recording_stand_in(bin: &Path, name: &str, log: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(bin).unwrap();
    let file = bin.join(name);
    std::fs::write(
        &file,
        format!("#!/bin/sh\necho \"$@\" >> '{}'\n", log.display()),
    )
    .unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Processes on this machine (every sshd host of a test runs here) whose
/// command line holds `needle`, as "pid: command line"; not this test's own.
pub fn processes_naming(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if pid == std::process::id() {
            continue;
        }
        let Ok(raw) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let line = String::from_utf8_lossy(&raw).replace('\0', " ");
        if line.contains(needle) {
            found.push(format!("{pid}: {line}"));
        }
    }
    found
}
