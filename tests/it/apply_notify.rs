//! Notifications end to end: the real binary applies a copy of
//! `examples/quickstart` with the local transport while a webhook receiver
//! on loopback records every request body.
//!
//! The configuration carries a sensitive variable (written into the app's
//! config file, and echoed by a failing health check) whose value must never
//! appear in a notification.

use crate::support::quickstart::Quickstart;
use crate::support::text;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::Value;

/// The sensitive variable's value.
const TOKEN: &str = "tok-3c1f9e-never-in-a-payload";

/// An HTTP server on loopback that answers 200 to everything and keeps the
/// request bodies.
struct Receiver {
    url: String,
    bodies: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    address: std::net::SocketAddr,
}

impl Receiver {
    fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (kept, stopping) = (bodies.clone(), stop.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut stream) = stream else { continue };
                if let Some(body) = read_request(&mut stream) {
                    kept.lock().unwrap().push(body);
                }
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                );
            }
        });
        Receiver {
            url: format!("http://{address}/hooks/T000/B000"),
            bodies,
            stop,
            address,
        }
    }

    /// The bodies received since the last call, parsed.
    fn take(&self) -> Vec<Value> {
        std::mem::take(&mut *self.bodies.lock().unwrap())
            .iter()
            .map(|body| serde_json::from_str(body).expect("every body is JSON"))
            .collect()
    }

    /// Every body received since the last `take`, as sent.
    fn raw(&self) -> Vec<String> {
        self.bodies.lock().unwrap().clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.address);
    }
}

/// One request's body (after its headers, `Content-Length` bytes).
fn read_request(stream: &mut TcpStream) -> Option<String> {
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .ok()?;
    let mut data = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let n = stream.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&data).to_string();
        let Some(end) = text.find("\r\n\r\n") else {
            continue;
        };
        let length: usize = text[..end]
            .lines()
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse().ok())?
            })
            .unwrap_or(0);
        if data.len() >= end + 4 + length {
            return Some(String::from_utf8_lossy(&data[end + 4..end + 4 + length]).to_string());
        }
    }
}

impl Quickstart {
    /// A copy of the quickstart whose rollout notifies with `notify_body`
    /// (the attributes of a `notify "hook"` block).
    fn with_notify(notify_body: &str) -> Quickstart {
        let quickstart = Quickstart::new();
        quickstart.edit_config(
            "  on_failure = \"rollback\"\n}",
            &format!(
                "  on_failure = \"rollback\"\n\n  notify \"hook\" {{\n{notify_body}\n  }}\n}}"
            ),
        );
        quickstart.edit_config(
            "variable \"version\" {",
            &format!(
                "variable \"api_token\" {{\n  type      = string\n  sensitive = true\n  default   = \"{TOKEN}\"\n}}\n\nvariable \"version\" {{"
            ),
        );
        quickstart.edit_config(
            "        VERSION='${var.version}'\n",
            "        VERSION='${var.version}'\n        API_TOKEN='${var.api_token}'\n",
        );
        quickstart
    }

    fn last_apply_id(&self) -> String {
        self.state().history.last().unwrap().apply_id.clone()
    }

    /// The health check fails from now on, printing the app's config file
    /// (which holds the sensitive value) first.
    fn break_health_check_printing_the_config(&self) {
        self.set_health_check(
            "#!/bin/sh\ncat config/hello.env >&2\necho 'health: always failing' >&2\nexit 1\n",
        );
    }
}

fn events(bodies: &[Value]) -> Vec<&str> {
    bodies
        .iter()
        .map(|b| b["event"].as_str().unwrap_or("(none)"))
        .collect()
}

fn assert_no_secret(receiver: &Receiver) {
    for body in receiver.raw() {
        assert!(!body.contains(TOKEN), "a payload holds the secret: {body}");
    }
}

#[test]
fn a_rolling_apply_sends_started_then_succeeded_with_versions_and_apply_id() {
    let receiver = Receiver::start();
    let quickstart = Quickstart::with_notify(&format!("    webhook = \"{}\"", receiver.url));

    let first = quickstart.apply("1.0.0");
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    assert_no_secret(&receiver);
    let bodies = receiver.take();
    assert_eq!(events(&bodies), ["started", "succeeded"], "{bodies:#?}");
    assert_eq!(bodies[0]["previous_version"], Value::Null);

    let upgrade = quickstart.apply("1.1.0");
    assert_eq!(upgrade.status.code(), Some(0), "{}", text(&upgrade));
    assert_no_secret(&receiver);
    let bodies = receiver.take();
    assert_eq!(events(&bodies), ["started", "succeeded"], "{bodies:#?}");
    let apply_id = quickstart.last_apply_id();
    for body in &bodies {
        assert_eq!(body["format_version"], 1);
        assert_eq!(body["deployment"], "deployment.hello");
        assert_eq!(body["environment"], "local");
        assert_eq!(body["service"], "service.hello");
        assert_eq!(body["rollout"], "rollout.rolling");
        assert_eq!(body["version"], "1.1.0");
        assert_eq!(body["previous_version"], "1.0.0");
        assert_eq!(body["apply_id"], apply_id.as_str());
        assert!(body["time"].as_str().is_some_and(|t| t.ends_with('Z')));
    }
    assert!(
        bodies[1]["duration_seconds"].as_f64().unwrap() > 0.0,
        "{:#}",
        bodies[1]
    );
    assert!(
        !text(&upgrade).contains("warning: notify"),
        "{}",
        text(&upgrade)
    );
}

#[test]
fn a_rolled_back_apply_sends_started_failed_rolled_back_in_order() {
    let receiver = Receiver::start();
    let quickstart = Quickstart::with_notify(&format!("    webhook = \"{}\"", receiver.url));
    let first = quickstart.apply("2.0.0");
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    receiver.take();

    quickstart.break_health_check_printing_the_config();
    let failed = quickstart.apply("3.0.0");
    let log = text(&failed);
    assert_eq!(failed.status.code(), Some(1), "{log}");
    assert_no_secret(&receiver);
    let bodies = receiver.take();
    assert_eq!(
        events(&bodies),
        ["started", "failed", "rolled_back"],
        "{bodies:#?}"
    );
    let apply_id = quickstart.last_apply_id();
    for body in &bodies {
        assert_eq!(body["version"], "3.0.0");
        assert_eq!(body["previous_version"], "2.0.0");
        assert_eq!(body["apply_id"], apply_id.as_str());
    }
    let message = bodies[1]["message"].as_str().unwrap();
    assert!(message.contains("host-1: health.http failed"), "{message}");
    assert!(
        message.contains("API_TOKEN='(sensitive)'"),
        "the host's words are in the message, masked: {message}"
    );
    assert_eq!(
        bodies[2]["message"],
        "deployment.hello in local rolled back to 2.0.0"
    );
}

#[test]
fn a_receiver_that_is_down_does_not_fail_the_apply() {
    let closed_port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let quickstart = Quickstart::with_notify(&format!(
        "    webhook = \"http://127.0.0.1:{closed_port}/hooks/T000/SECRETPATH\""
    ));
    let applied = quickstart.apply("1.0.0");
    let log = text(&applied);
    assert_eq!(applied.status.code(), Some(0), "{log}");
    assert!(
        log.contains("deployment.hello: warning: notify \"hook\": could not deliver \"started\""),
        "{log}"
    );
    assert!(log.contains("could not deliver \"succeeded\""), "{log}");
    assert!(
        !log.contains("SECRETPATH"),
        "the webhook's path is not shown: {log}"
    );
    assert_eq!(
        quickstart.state().history.last().unwrap().result,
        "succeeded"
    );
}

#[test]
fn on_sends_only_the_listed_events_in_the_slack_format() {
    let receiver = Receiver::start();
    let quickstart = Quickstart::with_notify(&format!(
        "    webhook = \"{}\"\n    format  = \"slack\"\n    on      = [\"failed\"]",
        receiver.url
    ));
    let first = quickstart.apply("1.0.0");
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    assert!(
        receiver.take().is_empty(),
        "a success sends nothing to a block that wants failures only"
    );

    quickstart.break_health_check_printing_the_config();
    let failed = quickstart.apply("2.0.0");
    assert_eq!(failed.status.code(), Some(1), "{}", text(&failed));
    assert_no_secret(&receiver);
    let bodies = receiver.take();
    assert_eq!(bodies.len(), 1, "{bodies:#?}");
    let slack = &bodies[0];
    assert!(
        slack["text"]
            .as_str()
            .unwrap()
            .starts_with(":x: Deploying deployment.hello 2.0.0 to local failed"),
        "{slack:#}"
    );
    assert!(slack["blocks"].is_array(), "{slack:#}");
}
