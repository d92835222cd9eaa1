//! Test hosts that are machines of their own on the network, too: each host's
//! sshd runs in a network namespace of its own (see `sshd`,
//! `HostOptions::own_network`), so `localhost` on a host is that host and
//! every host listens on the same port, as real machines do.
//!
//! What it shows: a health check's `url` is fetched on the host. A decoy on
//! the runner's own `127.0.0.1`, on the same port, answers every request
//! with a version nobody deploys and counts them: it must never be asked,
//! an apply whose hosts serve passes, and one whose hosts serve nothing fails
//! although the decoy answers. What each host serves is checked from inside
//! its namespace, not through slipway.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::sshd::{HostOptions, SshHosts};

const START: &str = r#"#!/bin/sh
# Serve the release's version on this host's own 127.0.0.1:$PORT, unless
# BROKEN=yes, when it starts nothing and says so.
set -eu
. ./config/app.env   # PORT, BROKEN
mkdir -p run www
printf '%s\n' "$SLIPWAY_VERSION" >www/version
if [ "$BROKEN" = yes ]; then
    echo "started nothing (BROKEN=yes)"
    exit 0
fi
nohup python3 -m http.server "$PORT" --bind 127.0.0.1 --directory www \
    </dev/null >run/app.log 2>&1 &
echo $! >run/app.pid
tries=0
until curl -fsS "http://127.0.0.1:$PORT/version" >/dev/null 2>&1; do
    tries=$((tries + 1))
    if [ "$tries" -gt 200 ]; then
        echo "not listening on 127.0.0.1:$PORT after 10s" >&2
        cat run/app.log >&2
        exit 1
    fi
    sleep 0.05
done
"#;

const STOP: &str = r#"#!/bin/sh
if [ -f run/app.pid ]; then
    kill "$(cat run/app.pid)" 2>/dev/null || true
    rm -f run/app.pid
fi
"#;

/// Hosts of their own, the configuration deploying the app to them, and a
/// decoy on the runner's `127.0.0.1:port`.
struct World {
    hosts: SshHosts,
    _dir: tempfile::TempDir,
    root: PathBuf,
    port: u16,
    decoy_requests: Arc<AtomicUsize>,
}

impl World {
    fn start(count: usize) -> Option<World> {
        let hosts = SshHosts::start_with(
            count,
            HostOptions {
                own_network: true,
                ..HostOptions::default()
            },
        )?;
        // A port free on the runner's loopback, for the decoy; the hosts
        // listen on the same port on theirs.
        let decoy = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = decoy.local_addr().unwrap().port();
        let decoy_requests = Arc::new(AtomicUsize::new(0));
        let counted = decoy_requests.clone();
        std::thread::spawn(move || {
            for stream in decoy.incoming() {
                let Ok(mut stream) = stream else { continue };
                counted.fetch_add(1, Ordering::SeqCst);
                let mut request = [0u8; 1024];
                let _ = stream.read(&mut request);
                let body = "0.0.0-decoy\n";
                let _ = write!(
                    stream,
                    "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
            }
        });

        let dir = tempfile::Builder::new()
            .prefix("host-network-")
            .tempdir()
            .unwrap();
        let root = dir.path().join("config");
        std::fs::create_dir_all(root.join("app/bin")).unwrap();
        std::fs::write(root.join("app/bin/start.sh"), START).unwrap();
        std::fs::write(root.join("app/bin/stop.sh"), STOP).unwrap();
        let quoted = |s: &str| serde_json::to_string(s).unwrap();
        let addresses: Vec<String> = hosts.hosts.iter().map(|h| quoted(&h.address)).collect();
        let config = format!(
            r#"slipway {{
  backend "local" {{ path = ".slipway/state" }}
}}

variable "version" {{ type = string }}
variable "broken" {{
  type    = string
  default = "no"
}}

service "app" {{
  version = var.version
  artifact {{ source = "./app" }}

  vm {{
    install_dir   = "/opt/app"
    start_command = "sh current/bin/start.sh"
    stop_command  = "sh current/bin/stop.sh"

    config_file "app.env" {{
      destination = "/opt/app/config/app.env"
      content     = "PORT={port}\nBROKEN=${{var.broken}}\n"
    }}

    health "version" {{
      url      = "http://localhost:{port}/version"
      retries  = 2
      interval = "200ms"
    }}
  }}
}}

environment "lab" {{
  vm_hosts {{
    transport        = "ssh"
    user             = "root"
    hosts            = [{hosts}]
    identity_file    = {identity}
    known_hosts_file = {known_hosts}
    connect_timeout  = "5s"
  }}
}}

rollout "all" {{
  strategy = "all_at_once"
}}

deployment "app" {{
  service     = service.app
  environment = environment.lab
  rollout     = rollout.all
}}
"#,
            hosts = addresses.join(", "),
            identity = quoted(&hosts.identity_file().display().to_string()),
            known_hosts = quoted(&hosts.known_hosts().display().to_string()),
        );
        std::fs::write(root.join("main.hcl"), config).unwrap();
        Some(World {
            hosts,
            _dir: dir,
            root,
            port,
            decoy_requests,
        })
    }

    fn apply(&self, version: &str, broken: bool) -> Output {
        Command::new(env!("CARGO_BIN_EXE_slipway"))
            .args(["apply", ".", "-auto-approve"])
            .args(["-var", &format!("version={version}")])
            .args([
                "-var",
                &format!("broken={}", if broken { "yes" } else { "no" }),
            ])
            .current_dir(&self.root)
            .stdin(Stdio::null())
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    }

    /// What host `i` serves on its own `localhost`, asked from inside its
    /// network namespace.
    fn served_on_host(&self, i: usize) -> String {
        self.hosts.http_get_on_host(i, self.port, "/version")
    }

    fn installed_version(&self, i: usize) -> Option<String> {
        let current = self.hosts.hosts[i].root.join("opt/app/current");
        std::fs::read_link(&current).ok().map(|target| {
            Path::new(&target)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
    }
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn a_health_url_is_fetched_on_the_host_where_localhost_is_the_host_itself() {
    let Some(world) = World::start(2) else { return };

    // Both hosts listen on the same port, each on its own localhost.
    let output = world.apply("1.0.0", false);
    assert!(output.status.success(), "{}", text(&output));
    for i in 0..2 {
        assert_eq!(world.served_on_host(i), "1.0.0", "host {i}");
    }

    // The hosts serve nothing: the check fails on the host, though the
    // runner's localhost answers on that port.
    let output = world.apply("2.0.0", true);
    let log = text(&output);
    assert!(!output.status.success(), "{log}");
    assert!(log.contains("health.version failed"), "{log}");
    assert!(log.contains("after 3 attempt(s)"), "{log}");
    for i in 0..2 {
        assert_eq!(
            world.served_on_host(i),
            "1.0.0",
            "host {i} is rolled back to what it served: {log}"
        );
        assert!(
            world
                .installed_version(i)
                .is_some_and(|release| release.starts_with("1.0.0")),
            "host {i}: {:?}",
            world.installed_version(i)
        );
    }

    let output = world.apply("2.0.0", false);
    assert!(output.status.success(), "{}", text(&output));
    for i in 0..2 {
        assert_eq!(world.served_on_host(i), "2.0.0", "host {i}");
    }
    assert_eq!(
        world.decoy_requests.load(Ordering::SeqCst),
        0,
        "nothing was fetched from the runner's localhost"
    );
}
