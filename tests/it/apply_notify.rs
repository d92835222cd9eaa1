//! Notifications end to end: the real binary applies a copy of
//! `examples/quickstart` with the local transport while a webhook receiver
//! on loopback records every request body.
//!
//! The configuration carries a sensitive variable (written into the app's
//! config file, and echoed by a failing health check) whose value must never
//! appear in a notification.

use crate::support::quickstart::Quickstart;
use crate::support::text;
use crate::support::webhook::Receiver;

use std::net::TcpListener;

use serde_json::Value;
use slipway::state::HistoryResult;

/// The sensitive variable's value.
const TOKEN: &str = "tok-3c1f9e-never-in-a-payload";

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
    // The configuration has a sensitive value: of what the host printed
    // (the config file, then its own words) nothing is shown, only counted.
    assert!(
        message.contains("line(s) the host printed are not shown"),
        "{message}"
    );
    assert!(!message.contains("API_TOKEN"), "{message}");
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
        HistoryResult::Succeeded
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
