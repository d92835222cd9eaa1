//! End-to-end apply through the real binary with the local transport: real
//! processes answering real health checks on loopback, state after every
//! host, rollback on a failed health check, the lock, stale saved plans.
//!
//! Each test works on its own copy of `examples/quickstart` with its own
//! ports, and stops the processes it started when it ends.

use crate::moto;
use crate::support::quickstart::Quickstart;
use crate::support::{json_lines, text};

use slipway::state::{
    Backend, DeploymentStatus, HistoryOperation, HistoryResult, HostStatus, LocalBackend,
};

impl Quickstart {
    /// Put the hosts behind `target_group_arn` (served by moto at `endpoint`).
    fn behind_load_balancer(&mut self, moto: &moto::Moto, target_group_arn: &str) {
        self.env = moto.env();
        let endpoint = &moto.endpoint;
        self.edit_config(
            "    hosts     = [\"host-1\", \"host-2\", \"host-3\"]\n",
            &format!(
                "    hosts     = [\"host-1\", \"host-2\", \"host-3\"]\n\n    load_balancer {{\n      target_group_arn = \"{target_group_arn}\"\n      port             = 8080\n      region           = \"us-east-1\"\n      endpoint         = \"{endpoint}\"\n    }}\n"
            ),
        );
    }

    /// Make the app's health check fail from now on (for the next version).
    fn break_health_check(&self) {
        self.set_health_check("#!/bin/sh\necho 'health: always failing' >&2\nexit 1\n");
    }
}

#[test]
fn fresh_install_then_upgrade_then_a_second_apply_is_a_no_op() {
    let quickstart = Quickstart::new();
    let first = quickstart.apply("1.0.0");
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    for (i, answer) in quickstart.served().iter().enumerate() {
        assert_eq!(
            answer,
            &format!("Hello from slipway (version 1.0.0, host-{})", i + 1)
        );
    }
    let plan = quickstart.slipway(&["plan", ".", "-var", "version=1.0.0"]);
    assert_eq!(
        plan.status.code(),
        Some(0),
        "a second plan shows no changes: {}",
        text(&plan)
    );

    let upgrade = quickstart.apply("1.1.0");
    assert_eq!(upgrade.status.code(), Some(0), "{}", text(&upgrade));
    let log = text(&upgrade);
    let host_1 = log.find("host-1: on 1.1.0").expect("host-1 updated");
    let host_2 = log.find("host-2: on 1.1.0").expect("host-2 updated");
    assert!(
        host_1 < host_2,
        "the first batch (host-1) finishes before the second starts:\n{log}"
    );
    quickstart.assert_serving("1.1.0");

    let state = quickstart.state();
    let deployment = &state.deployments["deployment.hello"];
    assert_eq!(deployment.status, DeploymentStatus::Deployed);
    assert_eq!(deployment.version, "1.1.0");
    assert!(deployment.verified);
    assert!(deployment
        .hosts
        .values()
        .all(|h| h.version == "1.1.0" && h.status == HostStatus::Deployed));
    assert_eq!(state.history.len(), 2);
    assert_eq!(state.history[1].result, HistoryResult::Succeeded);
    // Every host's release marker names the apply that put it there.
    for host in ["host-1", "host-2", "host-3"] {
        let marker: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(quickstart.host_dir(host).join(".slipway/release.json"))
                .unwrap(),
        )
        .unwrap();
        assert_eq!(marker["version"], "1.1.0");
        assert_eq!(marker["apply_id"], state.history[1].apply_id.as_str());
    }
    let again = quickstart.apply("1.1.0");
    assert_eq!(again.status.code(), Some(0));
    assert!(
        text(&again).contains("Nothing to apply."),
        "{}",
        text(&again)
    );
}

#[test]
fn a_failing_health_check_rolls_every_host_back() {
    let quickstart = Quickstart::new();
    assert_eq!(quickstart.apply("2.0.0").status.code(), Some(0));
    quickstart.break_health_check();
    let failed = quickstart.apply("3.0.0");
    let log = text(&failed);
    assert_eq!(failed.status.code(), Some(1), "{log}");
    assert!(
        log.contains("host-1: health.http failed"),
        "the failure names host and step:\n{log}"
    );
    assert!(
        log.contains("health: always failing"),
        "the host's own words are shown:\n{log}"
    );
    assert!(
        !log.contains("host-2: on 3.0.0"),
        "no host after the failed batch is started:\n{log}"
    );
    quickstart.assert_serving("2.0.0");

    let state = quickstart.state();
    let deployment = &state.deployments["deployment.hello"];
    assert_eq!(deployment.status, DeploymentStatus::RolledBack);
    assert!(!deployment.verified);
    assert_eq!(deployment.hosts["host-1"].status, HostStatus::RolledBack);
    assert_eq!(deployment.hosts["host-1"].version, "2.0.0");
    assert_eq!(deployment.hosts["host-2"].version, "2.0.0");
    assert_eq!(
        state.history.last().unwrap().result,
        HistoryResult::RolledBack
    );
    let plan = quickstart.slipway(&["plan", ".", "-var", "version=3.0.0"]);
    assert_eq!(
        plan.status.code(),
        Some(2),
        "the plan still shows the change: {}",
        text(&plan)
    );
}

#[test]
fn a_held_lock_refuses_a_second_apply_and_changes_nothing() {
    let quickstart = Quickstart::new();
    let backend = LocalBackend::new(quickstart.root.join(".slipway/state"));
    let guard = backend.lock("local", "apply").unwrap();
    let refused = quickstart.apply("1.0.0");
    assert_eq!(refused.status.code(), Some(1));
    let log = text(&refused);
    assert!(
        log.contains("locked") && log.contains(&guard.info().id),
        "{log}"
    );
    assert!(
        !quickstart.root.join(".slipway/hosts").exists(),
        "nothing was deployed"
    );
    drop(guard);
    assert_eq!(quickstart.apply("1.0.0").status.code(), Some(0));
}

/// An operation without a value (here a port computed past the range of a
/// number, which hcl-rs once wrapped around silently) is refused at its
/// file:line:column before any host is touched: the hosts keep serving what
/// they served, with the same config file bytes, and state is as it was.
#[test]
fn arithmetic_without_a_value_is_refused_and_changes_nothing() {
    let quickstart = Quickstart::new();
    let first = quickstart.apply("1.0.0");
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let config_files = |quickstart: &Quickstart| -> Vec<Vec<u8>> {
        quickstart
            .host_names()
            .iter()
            .map(|host| std::fs::read(quickstart.host_dir(host).join("config/hello.env")).unwrap())
            .collect()
    };
    let files_before = config_files(&quickstart);
    let state_before = quickstart.state();

    quickstart.edit_config(
        "BASE_PORT=${var.base_port}",
        "BASE_PORT=${var.base_port * var.base_port * var.base_port * var.base_port * var.base_port}",
    );
    let refused = quickstart.apply("2.0.0");
    let log = text(&refused);
    assert_eq!(refused.status.code(), Some(1), "{log}");
    assert!(
        log.contains("main.hcl:48:21") && log.contains("the result is out of the range of a"),
        "{log}"
    );
    quickstart.assert_serving("1.0.0");
    assert_eq!(
        config_files(&quickstart),
        files_before,
        "config files unchanged"
    );
    assert_eq!(quickstart.state(), state_before, "state unchanged");
}

#[test]
fn a_stale_saved_plan_is_refused() {
    let quickstart = Quickstart::new();
    let planned = quickstart.slipway(&["plan", ".", "-out", "release.plan"]);
    assert_eq!(planned.status.code(), Some(2), "{}", text(&planned));
    assert_eq!(quickstart.apply("1.0.0").status.code(), Some(0));
    let stale = quickstart.slipway(&["apply", "release.plan", "-auto-approve"]);
    assert_eq!(stale.status.code(), Some(1));
    assert!(text(&stale).contains("stale"), "{}", text(&stale));

    let fresh = quickstart.slipway(&["plan", ".", "-var", "version=1.0.1", "-out", "next.plan"]);
    assert_eq!(fresh.status.code(), Some(2));
    let applied = quickstart.slipway(&[
        "apply",
        "next.plan",
        "-auto-approve",
        "-var",
        "version=1.0.1",
    ]);
    assert_eq!(applied.status.code(), Some(0), "{}", text(&applied));
    assert_eq!(
        quickstart.state().deployments["deployment.hello"].version,
        "1.0.1"
    );
}

#[test]
fn apply_without_a_terminal_needs_auto_approve() {
    let quickstart = Quickstart::new();
    let refused = quickstart.slipway(&["apply", "."]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        text(&refused).contains("-auto-approve"),
        "{}",
        text(&refused)
    );
    assert!(!quickstart.root.join(".slipway/hosts").exists());
}

#[test]
fn values_reach_the_host_as_literal_text() {
    let quickstart = Quickstart::new();
    let marker = quickstart.root.join("pwned");
    // No single quote here: the example app itself sources its config file
    // with the value inside single quotes. slipway's quoting of single quotes
    // is tested with a real shell in the step builders' unit tests.
    let hostile = format!(
        "$(touch {m}) `touch {m}` \"; touch {m}; \\",
        m = marker.display()
    );
    let main = std::fs::read_to_string(quickstart.root.join("main.hcl")).unwrap();
    let main = main.replace(
        "variables = { GREETING = \"Hello from slipway\" }",
        &format!(
            "variables = {{ GREETING = {} }}",
            serde_json::to_string(&hostile).unwrap()
        ),
    );
    std::fs::write(quickstart.root.join("main.hcl"), main).unwrap();
    let applied = quickstart.apply("1.0.0");
    assert_eq!(applied.status.code(), Some(0), "{}", text(&applied));
    let config =
        std::fs::read_to_string(quickstart.host_dir("host-1").join("config/hello.env")).unwrap();
    assert!(
        config.contains(&hostile),
        "the config file holds the value as written:\n{config}"
    );
    assert!(!marker.exists(), "no shell ran the value");
}

/// Target ids registered in `target_group_arn`, sorted.
fn registered_targets(moto: &moto::Moto, target_group_arn: &str) -> Vec<String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let health = moto
            .elbv2()
            .await
            .describe_target_health()
            .target_group_arn(target_group_arn)
            .send()
            .await
            .expect("describe target health");
        let mut ids: Vec<String> = health
            .target_health_descriptions()
            .iter()
            .filter_map(|d| d.target().and_then(|t| t.id()).map(str::to_string))
            .collect();
        ids.sort();
        ids
    })
}

fn alb_target_group(moto: &moto::Moto, name: &str) -> String {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime
        .block_on(moto.create_alb_with_two_target_groups(name, 8080))
        .blue_target_group_arn
}

#[test]
fn hosts_rejoin_the_target_group_after_an_upgrade_and_after_a_rollback() {
    let Some(moto) = moto::Moto::start() else {
        return;
    };
    let target_group = alb_target_group(&moto, "quickstart");
    let mut quickstart = Quickstart::new();
    quickstart.behind_load_balancer(&moto, &target_group);
    let hosts = ["host-1", "host-2", "host-3"];

    let first = quickstart.apply("1.0.0");
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    assert_eq!(registered_targets(&moto, &target_group), hosts);

    let upgrade = quickstart.apply("2.0.0");
    assert_eq!(upgrade.status.code(), Some(0), "{}", text(&upgrade));
    assert_eq!(registered_targets(&moto, &target_group), hosts);

    quickstart.break_health_check();
    let failed = quickstart.apply("3.0.0");
    let log = text(&failed);
    assert_eq!(failed.status.code(), Some(1), "{log}");
    assert!(log.contains("host-1: rolled back to 2.0.0"), "{log}");
    assert_eq!(
        registered_targets(&moto, &target_group),
        hosts,
        "the rolled-back host serves again:\n{log}"
    );
}

#[test]
fn a_host_that_fails_its_checks_stays_out_of_the_target_group_when_paused() {
    let Some(moto) = moto::Moto::start() else {
        return;
    };
    let target_group = alb_target_group(&moto, "quickstart-pause");
    let mut quickstart = Quickstart::new();
    quickstart.behind_load_balancer(&moto, &target_group);
    quickstart.edit_config("on_failure = \"rollback\"", "on_failure = \"pause\"");

    let first = quickstart.apply("1.0.0");
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    quickstart.break_health_check();
    let paused = quickstart.apply("2.0.0");
    let log = text(&paused);
    assert_eq!(paused.status.code(), Some(1), "{log}");
    assert_eq!(
        registered_targets(&moto, &target_group),
        ["host-2", "host-3"],
        "host-1 left before it stopped and did not come back:\n{log}"
    );
    let state = quickstart.state();
    assert_eq!(
        state.deployments["deployment.hello"].hosts["host-1"].status,
        HostStatus::Failed
    );
}

#[test]
fn an_approval_pauses_the_rollout_approve_continues_it_and_reject_rolls_back() {
    let quickstart = Quickstart::new();
    quickstart.edit_config(
        "  on_failure = \"rollback\"\n}",
        "  on_failure = \"rollback\"\n\n  approval \"release-manager\" {\n    after_step = 1\n  }\n}",
    );
    let address = "deployment.hello";

    // The first apply stops after step 1 (host-1) and says how to go on.
    let paused = quickstart.apply("1.0.0");
    let log = text(&paused);
    assert_eq!(paused.status.code(), Some(0), "{log}");
    assert!(log.contains("Apply paused"), "{log}");
    assert!(
        log.contains("waits for approval \"release-manager\" after step 1"),
        "{log}"
    );
    assert!(log.contains("slipway approve deployment.hello"), "{log}");
    let state = quickstart.state();
    let deployment = &state.deployments[address];
    assert_eq!(deployment.status, DeploymentStatus::Partial);
    assert_eq!(deployment.hosts.keys().collect::<Vec<_>>(), ["host-1"]);
    let waiting = deployment
        .waiting_approval()
        .expect("waits for the approval");
    assert_eq!(
        (waiting.name.as_str(), waiting.after_step),
        ("release-manager", 1)
    );
    assert!(state
        .history
        .last()
        .unwrap()
        .approvals
        .iter()
        .any(|a| a.name == "release-manager"));

    // Until someone approves, plan says so and apply changes nothing.
    let plan = quickstart.slipway(&["plan", ".", "-var", "version=1.0.0"]);
    let plan_text = text(&plan);
    assert_eq!(plan.status.code(), Some(2), "{plan_text}");
    assert!(
        plan_text.contains("waits for approval \"release-manager\""),
        "{plan_text}"
    );
    let serial = quickstart.state().serial;
    let again = quickstart.apply("1.0.0");
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert!(
        text(&again).contains("waits for approval"),
        "{}",
        text(&again)
    );
    assert_eq!(quickstart.state().deployments[address].hosts.len(), 1);
    assert_eq!(
        quickstart.served()[1],
        format!("(nothing on port {})", quickstart.base_port + 1)
    );
    assert!(
        quickstart.state().serial > serial,
        "the apply is in the history"
    );

    // A wrong gate name is refused; the right approval is recorded.
    let wrong = quickstart.slipway_exactly(&["approve", address, ".", "-gate", "qa"]);
    assert_eq!(wrong.status.code(), Some(1), "{}", text(&wrong));
    assert!(text(&wrong).contains("not \"qa\""), "{}", text(&wrong));
    let approve = quickstart.slipway_exactly(&["approve", "hello", "."]);
    assert_eq!(approve.status.code(), Some(0), "{}", text(&approve));
    assert!(text(&approve).contains("from step 2"), "{}", text(&approve));

    // The next apply continues from step 2: host-1 is not deployed again.
    let resumed = quickstart.apply("1.0.0");
    let log = text(&resumed);
    assert_eq!(resumed.status.code(), Some(0), "{log}");
    assert!(log.contains("Apply complete"), "{log}");
    assert!(
        !log.contains("host-1: on 1.0.0"),
        "host-1 was done before:\n{log}"
    );
    assert!(log.contains("step 2/2 done"), "{log}");
    for (i, answer) in quickstart.served().iter().enumerate() {
        assert_eq!(
            answer,
            &format!("Hello from slipway (version 1.0.0, host-{})", i + 1)
        );
    }
    let state = quickstart.state();
    assert_eq!(
        state.deployments[address].status,
        DeploymentStatus::Deployed
    );
    let approval = state
        .history
        .iter()
        .find(|e| e.operation == HistoryOperation::Approve)
        .expect("approve is in the history");
    assert_eq!(
        approval.approvals[0].status,
        slipway::state::ApprovalStatus::Approved
    );
    let approver = approval.approvals[0].decided_by.as_deref().unwrap();
    assert!(
        approver.ends_with(" (local user, not verified)"),
        "the approver is labelled as an unverified local user: {approver}"
    );
    let plan = quickstart.slipway(&["plan", ".", "-var", "version=1.0.0"]);
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan));

    // 1.1.0 stops after host-1 again; reject puts host-1 back on 1.0.0.
    let paused = quickstart.apply("1.1.0");
    assert_eq!(paused.status.code(), Some(0), "{}", text(&paused));
    assert!(quickstart.served()[0].contains("version 1.1.0"));
    assert!(quickstart.served()[1].contains("version 1.0.0"));
    let reject = quickstart.slipway(&["reject", address, ".", "-var", "version=1.1.0"]);
    let log = text(&reject);
    assert_eq!(reject.status.code(), Some(0), "{log}");
    assert!(
        log.contains("Rolled back deployment.hello (1 host(s))"),
        "{log}"
    );
    quickstart.assert_serving("1.0.0");
    let state = quickstart.state();
    let deployment = &state.deployments[address];
    assert_eq!(deployment.status, DeploymentStatus::RolledBack);
    assert_eq!(deployment.hosts["host-1"].version, "1.0.0");
    assert_eq!(deployment.hosts["host-1"].status, HostStatus::RolledBack);
    let rejected = state.history.last().unwrap();
    assert_eq!(
        (rejected.operation.as_str(), rejected.result.as_str()),
        ("reject", "rolled_back")
    );

    // The rejected version is not deployed again.
    let refused = quickstart.apply("1.1.0");
    let log = text(&refused);
    assert_eq!(refused.status.code(), Some(1), "{log}");
    assert!(
        log.contains("was rejected at approval \"release-manager\""),
        "{log}"
    );
    assert!(quickstart.served()[0].contains("version 1.0.0"));
}

/// Seconds since the apply started, from a plain progress line
/// (`[  12.3s] deployment.hello: ...`).
fn stamp_of(line: &str) -> Option<f64> {
    let rest = line.strip_prefix('[')?;
    let (stamp, _) = rest.split_once("s]")?;
    stamp.trim().parse().ok()
}

#[test]
fn a_bake_through_a_pipe_prints_a_heartbeat_with_the_time_left() {
    let quickstart = Quickstart::new();
    quickstart.edit_config(
        "  batches    = [1, \"100%\"]\n",
        "  batches    = [\"100%\"]\n  bake       = \"23s\"\n",
    );
    // Output goes to a pipe, as in CI: plain lines, no spinner.
    let applied = quickstart.apply("1.0.0");
    let log = text(&applied);
    assert_eq!(applied.status.code(), Some(0), "{log}");
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("deployment.hello:"))
        .collect();
    let start = lines
        .iter()
        .position(|l| l.contains("step 1/1: bake: waiting 23s"))
        .unwrap_or_else(|| panic!("the bake is announced with its length:\n{log}"));
    let left: Vec<&&str> = lines[start..]
        .iter()
        .filter(|l| l.contains("step 1/1: bake: ") && l.ends_with(" left"))
        .collect();
    assert!(
        left.len() >= 2,
        "a 23s bake prints the time left at least twice:\n{log}"
    );
    // From the announcement until the bake is over, no gap between lines is
    // longer than the heartbeat (plus scheduling slack).
    let stamps: Vec<f64> = lines[start..].iter().filter_map(|l| stamp_of(l)).collect();
    let last_bake_line = lines
        .iter()
        .rposition(|l| l.contains("step 1/1: bake"))
        .unwrap();
    for pair in stamps[..=last_bake_line - start].windows(2) {
        assert!(
            pair[1] - pair[0] <= 11.5,
            "{}s without a line during the bake:\n{log}",
            pair[1] - pair[0]
        );
    }
    let last_stamp = stamp_of(lines[last_bake_line]).unwrap();
    let first_stamp = stamp_of(lines[start]).unwrap();
    assert!(
        last_stamp - first_stamp >= 9.0,
        "the heartbeat lines span the bake:\n{log}"
    );
    quickstart.assert_serving("1.0.0");
}

/// `apply -json` through a pipe: every stdout line is one JSON object; the
/// plan comes first, then the start, progress events and heartbeats (`status`,
/// at least every 10 s during a bake) of the deployment, its end, and last the
/// outcome with the exit code. Without -auto-approve it refuses, changing
/// nothing; a failing apply ends with its failures.
#[test]
fn apply_json_prints_one_event_per_line_from_plan_to_outcome() {
    let quickstart = Quickstart::new();
    quickstart.edit_config(
        "  batches    = [1, \"100%\"]\n",
        "  batches    = [\"100%\"]\n  bake       = \"11s\"\n",
    );
    let refused = quickstart.slipway(&["apply", ".", "-json", "-var", "version=1.0.0"]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(
        text(&refused).contains("pass -auto-approve"),
        "{}",
        text(&refused)
    );
    assert!(
        quickstart.backend().read("local").unwrap().is_none(),
        "nothing ran"
    );

    let applied = quickstart.apply_json("1.0.0");
    assert_eq!(applied.status.code(), Some(0), "{}", text(&applied));
    let events = json_lines(&applied);
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(kinds.first(), Some(&"plan"), "{kinds:?}");
    assert_eq!(events[0]["plan"]["summary"]["create"], 1);
    assert_eq!(kinds[1], "apply_start");
    assert_eq!(kinds.last(), Some(&"apply_complete"), "{kinds:?}");
    let outcome = events.last().unwrap();
    assert_eq!(outcome["result"], "succeeded");
    assert_eq!(outcome["exit_code"], 0);
    assert_eq!(outcome["hosts_deployed"], 3);
    assert!(kinds.contains(&"deployment_done"), "{kinds:?}");
    let about_hello = |kind: &str| {
        events
            .iter()
            .filter(|e| e["type"] == kind && e["deployment"] == "deployment.hello")
            .count()
    };
    assert!(about_hello("progress") >= 3, "{kinds:?}");
    assert!(
        about_hello("status") >= 1,
        "an 11 s bake has a heartbeat: {kinds:?}"
    );
    // Progress lines carry the event as data, in the order it happened.
    let hello_events = |events: &[serde_json::Value]| -> Vec<serde_json::Value> {
        events
            .iter()
            .filter(|e| e["type"] == "progress" && e["deployment"] == "deployment.hello")
            .map(|e| e["event"].clone())
            .collect()
    };
    let happened = hello_events(&events);
    let of_kind = |events: &[serde_json::Value], kind: &str| -> Vec<serde_json::Value> {
        events
            .iter()
            .filter(|e| e["kind"] == kind)
            .cloned()
            .collect()
    };
    assert_eq!(
        happened.first(),
        Some(&serde_json::json!({
            "kind": "started", "action": "create", "version": "1.0.0", "strategy": "rolling",
        })),
        "{happened:?}"
    );
    let updated = of_kind(&happened, "host_updated");
    assert_eq!(
        updated.len(),
        3,
        "every host reported on 1.0.0: {happened:?}"
    );
    assert!(
        updated.iter().all(|e| e["version"] == "1.0.0"),
        "{updated:?}"
    );
    let waits = of_kind(&happened, "waiting");
    assert_eq!(waits.len(), 1, "{happened:?}");
    assert_eq!(waits[0]["seconds"], 11.0);
    let done = of_kind(&happened, "step_done");
    assert_eq!(done.len(), 1, "{happened:?}");
    assert_eq!(done[0]["hosts"].as_array().map(Vec::len), Some(3));
    assert_eq!(
        happened.last().map(|e| e["ended"].clone()),
        Some(serde_json::json!({"result": "deployed", "version": "1.0.0", "hosts": 3})),
        "{happened:?}"
    );
    for event in &events {
        assert!(
            event["@timestamp"]
                .as_str()
                .is_some_and(|t| t.ends_with('Z')),
            "{event}"
        );
        assert!(event["elapsed_seconds"].is_number(), "{event}");
    }
    quickstart.assert_serving("1.0.0");

    quickstart.break_health_check();
    let failed = quickstart.apply_json("2.0.0");
    assert_eq!(failed.status.code(), Some(1), "{}", text(&failed));
    let outcome = json_lines(&failed).pop().unwrap();
    assert_eq!(outcome["type"], "apply_complete");
    assert_eq!(
        (outcome["result"].as_str(), outcome["exit_code"].as_u64()),
        (Some("failed"), Some(1))
    );
    assert!(
        outcome["failures"]
            .as_array()
            .is_some_and(|f| !f.is_empty()),
        "{outcome}"
    );
    // The failure, then the rollback of every host the rollout moved.
    let happened = hello_events(&json_lines(&failed));
    let failed_hosts = of_kind(&happened, "host_failed");
    assert!(!failed_hosts.is_empty(), "{happened:?}");
    assert!(
        failed_hosts
            .iter()
            .all(|e| e["phase"].is_string() && e["host"].is_string()),
        "{failed_hosts:?}"
    );
    let rolling_back = of_kind(&happened, "rolling_back_hosts");
    assert_eq!(rolling_back.len(), 1, "{happened:?}");
    let moved = rolling_back[0]["hosts"].as_array().map_or(0, Vec::len);
    let rolled_back = of_kind(&happened, "host_rolled_back");
    assert_eq!(rolled_back.len(), moved, "{happened:?}");
    assert!(
        rolled_back.iter().all(|e| e["version"] == "1.0.0"),
        "{rolled_back:?}"
    );
    assert_eq!(
        happened.last().map(|e| e["ended"]["result"].clone()),
        Some(serde_json::json!("rolled_back")),
        "{happened:?}"
    );
    quickstart.assert_serving("1.0.0");
}

/// A configuration directory of its own, with an `app` artifact, for tests
/// that write their configuration whole; slipway runs in it.
struct Project {
    dir: tempfile::TempDir,
}

impl Project {
    fn new(config: &str) -> Project {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("app")).unwrap();
        std::fs::write(dir.path().join("app/README"), "an artifact\n").unwrap();
        std::fs::write(dir.path().join("main.hcl"), config).unwrap();
        Project { dir }
    }

    fn slipway(&self, args: &[&str]) -> std::process::Output {
        std::process::Command::new(env!("CARGO_BIN_EXE_slipway"))
            .args(args)
            .current_dir(self.dir.path())
            .stdin(std::process::Stdio::null())
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    }

    fn state(&self, environment: &str) -> slipway::state::State {
        LocalBackend::new(self.dir.path().join(".slipway/state"))
            .read(environment)
            .unwrap()
            .unwrap()
    }

    /// The scheduled deployment `address` of a `plan -json` document.
    fn scheduled<'a>(plan: &'a serde_json::Value, address: &str) -> &'a serde_json::Value {
        plan["schedule"]["waves"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|w| w["deployments"].as_array().unwrap())
            .find(|d| d["address"] == address)
            .unwrap_or_else(|| panic!("{address} scheduled: {plan:#}"))
    }
}

/// A service `name` installed in `/opt/name` whose health check runs
/// `health` (a shell command), on the local transport.
fn local_service(name: &str, health: &str) -> String {
    format!(
        "service \"{name}\" {{\n  version = var.version\n  artifact {{\n    source = \"./app\"\n  }}\n  vm {{\n    install_dir   = \"/opt/{name}\"\n    start_command = \"true\"\n    health \"check\" {{\n      command  = \"{health}\"\n      retries  = 1\n      interval = \"100ms\"\n    }}\n  }}\n}}\n"
    )
}

/// The local state backend, a `version` variable and environment `name`
/// with one local host, and an all-at-once rollout `once`.
fn local_preamble(environments: &[&str]) -> String {
    let mut text = String::from(
        "slipway {\n  backend \"local\" { path = \".slipway/state\" }\n}\n\nvariable \"version\" {\n  type = string\n}\n\nrollout \"once\" {\n  strategy   = \"all_at_once\"\n  on_failure = \"rollback\"\n}\n",
    );
    for name in environments {
        text.push_str(&format!(
            "\nenvironment \"{name}\" {{\n  vm_hosts {{\n    transport = \"local\"\n    root      = \".slipway/hosts-{name}\"\n    hosts     = [\"host-1\"]\n  }}\n}}\n"
        ));
    }
    text
}

/// Five deployments on the local transport: `bad` fails its health check in
/// the first wave, beside `base`. The plan says which later deployments wait
/// for which; apply then still runs `after-base` (it waits only for `base`)
/// and does not start `after-bad` nor `chained` (which waits for `after-bad`).
#[test]
fn a_failed_deployment_stops_only_the_deployments_that_wait_for_it() {
    let deployment = |name: &str, after: &[&str]| {
        let list: Vec<String> = after.iter().map(|a| format!("deployment.{a}")).collect();
        format!(
            "deployment \"{name}\" {{\n  service     = service.{name}\n  environment = environment.local\n  rollout     = rollout.once\n  depends_on  = [{}]\n}}\n",
            list.join(", ")
        )
    };
    let mut config = local_preamble(&["local"]);
    for name in ["base", "after-base", "after-bad", "chained"] {
        config.push_str(&local_service(name, "true"));
    }
    config.push_str(&local_service("bad", "false"));
    config.push_str(&deployment("bad", &[]));
    config.push_str(&deployment("base", &[]));
    config.push_str(&deployment("after-base", &["base"]));
    config.push_str(&deployment("after-bad", &["bad"]));
    config.push_str(&deployment("chained", &["after-bad"]));
    let project = Project::new(&config);

    let plan = project.slipway(&["plan", ".", "-json", "-var", "version=1.0.0"]);
    assert_eq!(plan.status.code(), Some(2), "{}", text(&plan));
    let json: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    let after = |address: &str| Project::scheduled(&json, address)["after"].clone();
    assert_eq!(
        after("deployment.after-base"),
        serde_json::json!(["deployment.base"])
    );
    assert_eq!(
        after("deployment.chained"),
        serde_json::json!(["deployment.after-bad", "deployment.bad"])
    );
    let human = text(&project.slipway(&["plan", ".", "-var", "version=1.0.0"]));
    assert!(
        human.contains("waits for deployment.base: not started if one of them fails"),
        "{human}"
    );

    let applied = project.slipway(&["apply", ".", "-auto-approve", "-var", "version=1.0.0"]);
    let log = text(&applied);
    assert_eq!(applied.status.code(), Some(1), "{log}");
    assert!(
        log.contains(
            "not started (waits for a deployment that failed): deployment.after-bad, deployment.chained"
        ),
        "{log}"
    );
    let state = project.state("local");
    let status = |address: &str| state.deployments.get(address).map(|d| d.status.clone());
    assert_eq!(status("deployment.base"), Some(DeploymentStatus::Deployed));
    assert_eq!(
        status("deployment.after-base"),
        Some(DeploymentStatus::Deployed)
    );
    assert_ne!(status("deployment.bad"), Some(DeploymentStatus::Deployed));
    assert_eq!(status("deployment.after-bad"), None, "never started");
    assert_eq!(status("deployment.chained"), None, "never started");
    // On the host: the independent deployment is installed, the skipped ones are not.
    let host = project.dir.path().join(".slipway/hosts-local/host-1/opt");
    assert!(host.join("after-base/current").exists());
    assert!(!host.join("after-bad").exists());
    assert!(!host.join("chained").exists());
}

/// dev → prod with `promote_from`, as one pipeline: a plan of the whole
/// configuration exits 2 (not 1) and marks prod "promoted when
/// deployment.dev verifies V in this apply"; one apply deploys dev, then
/// prod. When dev fails its health check, prod is not started and keeps
/// its version. A plan of prod alone still refuses an unverified version.
#[test]
fn a_whole_configuration_plan_promotes_in_the_same_apply() {
    let mut config = local_preamble(&["dev", "prod"]);
    // The health check fails while the file `broken` exists beside main.hcl.
    let health = "test ! -e $SLIPWAY_CONFIG_DIR/broken";
    config.push_str(&local_service("app", health).replace("$SLIPWAY_CONFIG_DIR", "{config_dir}"));
    config.push_str(
        "deployment \"dev\" {\n  service     = service.app\n  environment = environment.dev\n  rollout     = rollout.once\n}\n\ndeployment \"prod\" {\n  service      = service.app\n  environment  = environment.prod\n  rollout      = rollout.once\n  promote_from = deployment.dev\n}\n",
    );
    let project = Project::new("");
    let config_dir = project.dir.path().display().to_string();
    std::fs::write(
        project.dir.path().join("main.hcl"),
        config.replace("{config_dir}", &config_dir),
    )
    .unwrap();

    let plan = project.slipway(&["plan", ".", "-var", "version=1.0.0"]);
    let shown = text(&plan);
    assert_eq!(plan.status.code(), Some(2), "{shown}");
    assert!(
        shown.contains("promoted when deployment.dev verifies 1.0.0 in this apply"),
        "{shown}"
    );
    let alone = project.slipway(&["plan", ".", "-environment", "prod", "-var", "version=1.0.0"]);
    assert_eq!(alone.status.code(), Some(1), "{}", text(&alone));
    assert!(
        text(&alone).contains("has never been applied"),
        "{}",
        text(&alone)
    );

    let applied = project.slipway(&["apply", ".", "-auto-approve", "-var", "version=1.0.0"]);
    assert_eq!(applied.status.code(), Some(0), "{}", text(&applied));
    for environment in ["dev", "prod"] {
        let state = project.state(environment);
        let record = &state.deployments[&format!("deployment.{environment}")];
        assert_eq!(
            (record.version.as_str(), &record.status, record.verified),
            ("1.0.0", &DeploymentStatus::Deployed, true)
        );
    }

    std::fs::write(project.dir.path().join("broken"), "").unwrap();
    let failed = project.slipway(&["apply", ".", "-auto-approve", "-var", "version=2.0.0"]);
    let log = text(&failed);
    assert_eq!(failed.status.code(), Some(1), "{log}");
    assert!(
        log.contains("not started (waits for a deployment that failed): deployment.prod"),
        "{log}"
    );
    let prod = project.state("prod");
    assert_eq!(prod.deployments["deployment.prod"].version, "1.0.0");
    let marker = project
        .dir
        .path()
        .join(".slipway/hosts-prod/host-1/opt/app/current");
    assert!(std::fs::read_link(marker)
        .unwrap()
        .ends_with("releases/1.0.0"));
}

/// An `approvers` list with the local backend: the user it names may
/// decide (before, the recorded label was compared with the list, so no one
/// ever could), another user may not, and state records the name labelled
/// as a local, unverified user.
#[test]
fn a_listed_local_user_may_approve_and_another_may_not() {
    let quickstart = Quickstart::new();
    quickstart.edit_config(
        "  on_failure = \"rollback\"\n}",
        "  on_failure = \"rollback\"\n\n  approval \"release-manager\" {\n    after_step = 1\n    approvers  = [\"alice\"]\n  }\n}",
    );
    let paused = quickstart.apply("1.0.0");
    assert_eq!(paused.status.code(), Some(0), "{}", text(&paused));
    let approve_as = |user: &str| {
        quickstart
            .command_exactly(&["approve", "hello", "."])
            .env("USER", user)
            .output()
            .unwrap()
    };
    let refused = approve_as("mallory");
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(
        text(&refused)
            .contains("may be decided by alice only, not by mallory (local user, not verified)"),
        "{}",
        text(&refused)
    );
    let approved = approve_as("alice");
    assert_eq!(approved.status.code(), Some(0), "{}", text(&approved));
    let state = quickstart.state();
    assert_eq!(
        state.deployments["deployment.hello"].approvals[0]
            .decided_by
            .as_deref(),
        Some("alice (local user, not verified)")
    );
}
