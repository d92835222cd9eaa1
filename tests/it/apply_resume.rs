//! Crash safety and resume through the real binary, with the local
//! transport: an apply killed with SIGKILL at many points of a ten-host
//! rolling rollout (chosen by step count through the test-only
//! `SLIPWAY_TEST_CRASH_AT`, never by time) leaves a state that `plan` reads
//! truthfully and that `apply` finishes, every host updated exactly once; an
//! apply killed while rolling back has its rollback finished; a SIGINT in the
//! middle of a batch stops in order; a corrupted state file is reported with
//! its backup and left alone.
//!
//! Each test works on its own copy of `examples/quickstart` with ten hosts
//! and its own ports, and stops the processes it started when it ends.

use crate::support::quickstart::Quickstart;
use crate::support::{latest_results, text};

use std::collections::BTreeMap;
use std::ops::Deref;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use slipway::state::{Backend, DeploymentStatus, HistoryResult, HostStatus};

const HOSTS: usize = 10;

/// The quickstart with ten hosts, whose runs take the version as an argument
/// and crash only when told to.
struct Sandbox {
    quickstart: Quickstart,
}

impl Deref for Sandbox {
    type Target = Quickstart;

    fn deref(&self) -> &Quickstart {
        &self.quickstart
    }
}

impl Sandbox {
    /// The quickstart with ten hosts updated in `batches`, and quick health
    /// check retries.
    fn new(batches: &str) -> Sandbox {
        let quickstart = Quickstart::with_hosts(HOSTS);
        quickstart.edit_config(
            "batches    = [1, \"100%\"]",
            &format!("batches    = {batches}"),
        );
        quickstart.edit_config(
            "retries  = 10\n      interval = \"1s\"",
            "retries  = 100\n      interval = \"50ms\"",
        );
        Sandbox { quickstart }
    }

    /// A health check that only asks whether the started server process
    /// runs (no Python start-up per check), so that twenty rollouts stay fast.
    fn quick_health_check(&self) {
        self.set_health_check("#!/bin/sh\nset -eu\nkill -0 \"$(cat run/hello.pid)\"\n");
    }

    fn command(&self, args: &[&str], version: &str) -> Command {
        let version = format!("version={version}");
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["-var", &version]);
        let mut command = self.quickstart.command(&all);
        command.env_remove("SLIPWAY_TEST_CRASH_AT");
        command
    }

    fn apply(&self, version: &str) -> Output {
        self.command(&["apply", ".", "-auto-approve"], version)
            .output()
            .unwrap()
    }

    /// An apply that kills itself with SIGKILL at its `point`th crash point.
    fn apply_crashing_at(&self, version: &str, point: usize) -> Output {
        self.command(&["apply", ".", "-auto-approve"], version)
            .env("SLIPWAY_TEST_CRASH_AT", point.to_string())
            .output()
            .unwrap()
    }

    fn plan(&self, version: &str) -> Output {
        self.command(&["plan", "."], version).output().unwrap()
    }

    /// Each host's release marker: (version, apply id).
    fn markers(&self) -> BTreeMap<String, (String, String)> {
        self.host_names()
            .into_iter()
            .map(|host| {
                let text =
                    std::fs::read_to_string(self.host_dir(&host).join(".slipway/release.json"))
                        .unwrap_or_else(|e| panic!("{host} has a release marker: {e}"));
                let marker: serde_json::Value = serde_json::from_str(&text).unwrap();
                let pair = (
                    marker["version"].as_str().unwrap().to_string(),
                    marker["apply_id"].as_str().unwrap().to_string(),
                );
                (host, pair)
            })
            .collect()
    }
}

/// Crash points of a ten-host rollout one host at a time: three per host
/// (journal entry started; work done but not recorded; recorded).
const CRASH_POINTS: [usize; 20] = [
    1, 2, 3, 4, 5, 6, 8, 9, 10, 13, 14, 15, 17, 20, 22, 23, 25, 27, 28, 29,
];

#[test]
fn an_apply_killed_at_any_step_is_reported_by_plan_and_finished_by_apply() {
    let sandbox = Sandbox::new("[1]");
    sandbox.quick_health_check();
    let first = sandbox.apply("1.0.0");
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));

    for (round, point) in CRASH_POINTS.into_iter().enumerate() {
        let version = format!("2.{round}.0");
        let killed = sandbox.apply_crashing_at(&version, point);
        assert_eq!(
            killed.status.signal(),
            Some(9),
            "point {point}: the apply killed itself: {}",
            text(&killed)
        );

        // What the killed apply left: its lock, and a journal.
        let holder = sandbox
            .backend()
            .current_lock("local")
            .unwrap()
            .expect("a killed apply leaves its lock");
        let state = sandbox.state();
        let killed_id = state.journal[0].apply_id.clone();
        let done: Vec<String> = state
            .journal
            .iter()
            .filter(|e| e.finished_at.is_some() && e.action.as_str() == "deploy")
            .filter_map(|e| e.host.clone())
            .collect();
        let uncertain: Vec<String> = state
            .uncertain_steps()
            .filter_map(|e| e.host.clone())
            .collect();
        assert!(uncertain.len() <= 1, "point {point}: {:?}", state.journal);
        assert_eq!(
            done.len() + uncertain.len(),
            point.div_ceil(3),
            "point {point}: one journal entry per host reached"
        );

        // plan says what happened and what apply will do.
        let plan = sandbox.plan(&version);
        let plan_text = text(&plan);
        assert_eq!(plan.status.code(), Some(2), "point {point}: {plan_text}");
        assert!(
            plan_text.contains(&format!("apply {killed_id}"))
                && plan_text.contains("was interrupted"),
            "point {point}: {plan_text}"
        );
        for host in &done {
            assert!(
                plan_text.contains(&format!("on {host}: deploy {version} (deployed)")),
                "point {point}: {host} is known done:\n{plan_text}"
            );
        }
        match uncertain.first() {
            Some(host) => assert!(
                plan_text.contains("Uncertain (started, may or may not have happened)")
                    && plan_text.contains(&format!("reads {host}'s release marker")),
                "point {point}: {plan_text}"
            ),
            None => assert!(
                plan_text.contains("No step is uncertain"),
                "point {point}: {plan_text}"
            ),
        }

        // apply takes the dead process's lock over and finishes the rollout.
        let resumed = sandbox.apply(&version);
        let log = text(&resumed);
        assert_eq!(resumed.status.code(), Some(0), "point {point}: {log}");
        assert!(
            log.contains("Took over the lock") && log.contains(&holder.id),
            "point {point}: {log}"
        );
        let state = sandbox.state();
        assert!(
            state.journal.is_empty(),
            "point {point}: {:?}",
            state.journal
        );
        let deployment = &state.deployments["deployment.hello"];
        assert_eq!(
            deployment.status,
            DeploymentStatus::Deployed,
            "point {point}"
        );
        assert!(deployment
            .hosts
            .values()
            .all(|h| h.version == version && h.status == HostStatus::Deployed));
        let history: Vec<(&str, &str)> = state
            .history
            .iter()
            .rev()
            .take(2)
            .map(|h| (h.apply_id.as_str(), h.result.as_str()))
            .collect();
        let resume_id = history[0].0;
        assert_eq!(
            history,
            [
                (resume_id, "succeeded"),
                (killed_id.as_str(), "interrupted")
            ],
            "point {point}"
        );

        // Every host is on the new version, put there exactly once: a host the
        // killed apply finished keeps its marker; no other host has one of it.
        for (host, (marker_version, marker_apply)) in sandbox.markers() {
            assert_eq!(marker_version, version, "point {point}: {host}");
            let updated_by_resume = log.contains(&format!("{host}: on {version}\n"));
            if done.contains(&host) {
                assert_eq!(marker_apply, killed_id, "point {point}: {host}");
                assert!(!updated_by_resume, "point {point}: {host} redone:\n{log}");
            } else if uncertain.contains(&host) {
                // Finished by the killed apply (only re-checked) or updated again.
                // Either way the log says it was re-checked.
                assert!(
                    log.contains(&format!("{host}: re-checked")),
                    "point {point}: {host}:\n{log}"
                );
                let rechecked = log.contains("the interrupted apply");
                let expected = if rechecked { &killed_id } else { resume_id };
                assert_eq!(&marker_apply, expected, "point {point}: {host}:\n{log}");
                assert_ne!(rechecked, updated_by_resume, "point {point}: {log}");
            } else {
                assert_eq!(marker_apply, resume_id, "point {point}: {host}");
                assert!(updated_by_resume, "point {point}: {host}:\n{log}");
            }
        }
        // Right before an entry is written as finished the release marker
        // exists: the re-check finds the host done.
        if point % 3 == 2 {
            assert!(
                log.contains("the interrupted apply"),
                "point {point}: {log}"
            );
        }
        let after = sandbox.plan(&version);
        assert_eq!(
            after.status.code(),
            Some(0),
            "point {point}: {}",
            text(&after)
        );
    }
}

#[test]
fn sigint_in_the_middle_of_a_batch_stops_in_order_and_apply_continues() {
    let sandbox = Sandbox::new("[2, 4]");
    let first = sandbox.apply("1.0.0");
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));

    let child = sandbox
        .command(&["apply", ".", "-auto-approve"], "2.0.0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until a host of step 2 (hosts 3-6) has started, then interrupt.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(Instant::now() < deadline, "step 2 never started");
        let in_step_2 = sandbox
            .backend()
            .read("local")
            .ok()
            .flatten()
            .is_some_and(|s| {
                s.journal
                    .iter()
                    .any(|e| e.step == 2 && e.finished_at.is_none())
            });
        if in_step_2 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap()
        .success());
    let interrupted = child.wait_with_output().unwrap();
    let log = text(&interrupted);
    assert_eq!(interrupted.status.code(), Some(130), "{log}");
    assert!(log.contains("Apply interrupted"), "{log}");
    assert!(log.contains("Run `slipway apply` again"), "{log}");
    assert_eq!(
        sandbox.backend().current_lock("local").unwrap(),
        None,
        "the lock is released"
    );

    // State: steps 1 and 2 done, step 3 not started, nothing uncertain.
    let state = sandbox.state();
    assert!(state.journal.is_empty(), "{:?}", state.journal);
    let last = state.history.last().unwrap();
    assert_eq!(last.result, HistoryResult::Interrupted);
    let deployment = &state.deployments["deployment.hello"];
    assert_eq!(deployment.status, DeploymentStatus::Partial);
    for (i, host) in sandbox.host_names().iter().enumerate() {
        let record = &deployment.hosts[host];
        let expected = if i < 6 { "2.0.0" } else { "1.0.0" };
        assert_eq!(
            (record.version.as_str(), record.status),
            (expected, HostStatus::Deployed),
            "{host}:\n{log}"
        );
    }
    assert!(!log.contains("step 3/3"), "step 3 never started:\n{log}");

    let plan = sandbox.plan("2.0.0");
    let plan_text = text(&plan);
    assert_eq!(plan.status.code(), Some(2), "{plan_text}");
    assert!(plan_text.contains("was interrupted"), "{plan_text}");

    let resumed = sandbox.apply("2.0.0");
    let log = text(&resumed);
    assert_eq!(resumed.status.code(), Some(0), "{log}");
    for host in sandbox.host_names().iter().take(6) {
        assert!(!log.contains(&format!("{host}: on 2.0.0\n")), "{log}");
    }
    assert!(sandbox
        .markers()
        .values()
        .all(|(version, _)| version == "2.0.0"));
    let state = sandbox.state();
    assert_eq!(
        state.deployments["deployment.hello"].status,
        DeploymentStatus::Deployed
    );
    assert_eq!(
        state.history.last().unwrap().result,
        HistoryResult::Succeeded
    );
}

#[test]
fn a_corrupted_state_file_is_reported_with_its_backup_and_left_alone() {
    let sandbox = Sandbox::new("[\"100%\"]");
    assert_eq!(sandbox.apply("1.0.0").status.code(), Some(0));
    assert_eq!(sandbox.apply("1.1.0").status.code(), Some(0));
    let path = sandbox.root.join(".slipway/state/local.json");
    let backup = sandbox.root.join(".slipway/state/local.json.backup");
    let whole = std::fs::read(&path).unwrap();
    std::fs::write(&path, &whole[..whole.len() / 2]).unwrap();
    let truncated = std::fs::read(&path).unwrap();
    let backup_before = std::fs::read(&backup).unwrap();

    for output in [sandbox.plan("1.2.0"), sandbox.apply("1.2.0")] {
        let log = text(&output);
        assert_eq!(output.status.code(), Some(1), "{log}");
        assert!(log.contains("is unreadable"), "{log}");
        assert!(
            log.contains("the last good backup is ./.slipway/state/local.json.backup"),
            "{log}"
        );
    }
    assert_eq!(
        std::fs::read(&path).unwrap(),
        truncated,
        "nothing overwritten"
    );
    assert_eq!(std::fs::read(&backup).unwrap(), backup_before);
    assert!(
        sandbox
            .markers()
            .values()
            .all(|(version, _)| version == "1.1.0"),
        "no host was touched"
    );
    assert_eq!(
        sandbox.backend().current_lock("local").unwrap(),
        None,
        "the lock is released"
    );
}

#[test]
fn an_apply_killed_while_rolling_back_has_its_rollback_finished() {
    let sandbox = Sandbox::new("[1]");
    sandbox.quick_health_check();
    let first = sandbox.apply("1.0.0");
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    std::fs::write(
        sandbox.root.join("app/bin/check.sh"),
        "#!/bin/sh\necho 'health: always failing' >&2\nexit 1\n",
    )
    .unwrap();
    // host-1: started (1), failed but not recorded (2), recorded (3); its
    // rollback started (4).
    let killed = sandbox.apply_crashing_at("2.0.0", 4);
    assert_eq!(killed.status.signal(), Some(9), "{}", text(&killed));
    let state = sandbox.state();
    let uncertain: Vec<(&str, Option<&str>)> = state
        .uncertain_steps()
        .map(|e| (e.action.as_str(), e.host.as_deref()))
        .collect();
    assert_eq!(uncertain, [("rollback", Some("host-1"))]);

    let plan = sandbox.plan("2.0.0");
    let plan_text = text(&plan);
    assert!(
        plan_text.contains("was rolling back after a failed step")
            && plan_text.contains("finishes the rollback"),
        "{plan_text}"
    );

    let resumed = sandbox.apply("2.0.0");
    let log = text(&resumed);
    assert_eq!(resumed.status.code(), Some(1), "{log}");
    assert!(log.contains("finishing its rollback"), "{log}");
    assert!(log.contains("host-1: rolled back to 1.0.0"), "{log}");
    assert!(
        !log.contains("host-2: on"),
        "nothing new is deployed:\n{log}"
    );
    let state = sandbox.state();
    let deployment = &state.deployments["deployment.hello"];
    assert_eq!(deployment.status, DeploymentStatus::RolledBack);
    for host in sandbox.host_names() {
        let record = &deployment.hosts[&host];
        assert_eq!(record.version, "1.0.0", "{host}");
        let current = std::fs::read_link(sandbox.host_dir(&host).join("current")).unwrap();
        assert!(current.ends_with("1.0.0"), "{host}: {}", current.display());
    }
    assert_eq!(deployment.hosts["host-1"].status, HostStatus::RolledBack);
    let results = latest_results(&state, 2);
    assert_eq!(results, ["rolled_back", "interrupted"]);
    assert!(state.journal.is_empty());
}
