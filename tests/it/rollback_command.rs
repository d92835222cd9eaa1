//! `slipway rollback`, checked on the hosts: real sshd servers on loopback
//! running the fixture app of `ssh_fixtures/`.
//!
//! A rollback puts every host back on the verified release it keeps (the
//! release, its config files, the marker, what the app answers), changes
//! nothing when any host cannot go back, finishes after a kill -9 when run
//! again, and afterwards apply does not deploy the version it left.

use crate::support::ssh_lab::Lab;
use crate::support::text;

use slipway::state::{Backend, DeploymentStatus, HistoryOperation, HostStatus};

const ALL_AT_ONCE: &str = "strategy   = \"all_at_once\"\n  on_failure = \"rollback\"";

/// A lab of `count` hosts on which 1.0.0 and then 2.0.0 were applied.
fn lab_on_two_versions(count: usize, prefix: &str) -> Option<Lab> {
    let lab = Lab::start(count, prefix)?;
    lab.configure(&lab.all_hosts(), ALL_AT_ONCE);
    for version in ["1.0.0", "2.0.0"] {
        let applied = lab.apply(version);
        assert_eq!(applied.status.code(), Some(0), "{}", text(&applied));
    }
    for i in lab.all_hosts() {
        lab.assert_on(i, "2.0.0");
    }
    Some(lab)
}

/// The inode of host `i`'s release directory of `version`: the same before
/// and after shows nothing was transferred again.
fn release_inode(lab: &Lab, i: usize, version: &str) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(lab.install_dir(i).join("releases").join(version))
        .map(|m| m.ino())
        .unwrap_or(0)
}

fn rollback(lab: &Lab, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "rollback",
        "app",
        ".",
        "-auto-approve",
        "-var",
        "version=2.0.0",
    ];
    args.extend_from_slice(extra);
    lab.slipway(&args)
}

/// 2.0.0 is on three hosts; `slipway rollback` puts each back on 1.0.0's
/// pair (release kept on the host, config, marker), restarted and answering
/// as 1.0.0. State says deployed and verified on 1.0.0, history has the
/// rollback. Then apply refuses 2.0.0 (plan warns), 1.0.0 plans as no
/// change, and 3.0.0 deploys again.
#[test]
fn rollback_puts_every_host_on_the_previous_release_and_apply_keeps_off_the_version_it_left() {
    let Some(lab) = lab_on_two_versions(3, "rollback-command-") else {
        return;
    };
    let inodes: Vec<u64> = lab
        .all_hosts()
        .iter()
        .map(|&i| release_inode(&lab, i, "1.0.0"))
        .collect();
    let pids: Vec<String> = lab.all_hosts().iter().map(|&i| lab.app_pid(i)).collect();

    let rolled = rollback(&lab, &[]);
    let log = text(&rolled);
    assert_eq!(rolled.status.code(), Some(0), "{log}");
    assert!(log.contains("deployment.app: 2.0.0 -> 1.0.0"), "{log}");
    assert!(log.contains("nothing is transferred"), "{log}");
    for i in lab.all_hosts() {
        lab.assert_on(i, "1.0.0");
        assert_eq!(release_inode(&lab, i, "1.0.0"), inodes[i], "re-transferred");
        assert_ne!(lab.app_pid(i), pids[i], "host {i} was not restarted");
    }

    let state = lab.state();
    let deployment = &state.deployments["deployment.app"];
    assert_eq!(deployment.version, "1.0.0");
    assert_eq!(deployment.status, DeploymentStatus::Deployed);
    assert!(deployment.verified);
    assert_eq!(
        deployment
            .rolled_back_from
            .as_ref()
            .map(|r| r.version.as_str()),
        Some("2.0.0")
    );
    for host in deployment.hosts.values() {
        assert_eq!(
            (host.version.as_str(), host.status),
            ("1.0.0", HostStatus::Deployed)
        );
        assert_eq!(
            host.previous.as_ref().map(|p| p.version.as_str()),
            Some("2.0.0")
        );
    }
    let last = state.history.last().unwrap();
    assert_eq!(
        (last.operation.as_str(), last.result.as_str()),
        ("rollback", "succeeded")
    );
    assert!(state.journal.is_empty(), "{:?}", state.journal);

    // The version left is not deployed again...
    let plan = lab.slipway(&["plan", ".", "-var", "version=2.0.0"]);
    assert_eq!(plan.status.code(), Some(2), "{}", text(&plan));
    assert!(
        text(&plan).contains("was rolled back to 1.0.0"),
        "{}",
        text(&plan)
    );
    let refused = lab.apply("2.0.0");
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(
        text(&refused).contains("apply does not deploy it again"),
        "{}",
        text(&refused)
    );
    for i in lab.all_hosts() {
        lab.assert_on(i, "1.0.0");
    }
    // ...the version rolled back to is no change...
    let same = lab.slipway(&["plan", ".", "-var", "version=1.0.0"]);
    assert_eq!(same.status.code(), Some(0), "{}", text(&same));
    // ...and another version deploys.
    let next = lab.apply("3.0.0");
    assert_eq!(next.status.code(), Some(0), "{}", text(&next));
    for i in lab.all_hosts() {
        lab.assert_on(i, "3.0.0");
    }
    assert!(lab.state().deployments["deployment.app"]
        .rolled_back_from
        .is_none());

    // -to names an older release; the newest before 3.0.0 would be 2.0.0.
    let back = lab.slipway(&[
        "rollback",
        "app",
        ".",
        "-auto-approve",
        "-to",
        "1.0.0",
        "-var",
        "version=3.0.0",
    ]);
    assert_eq!(back.status.code(), Some(0), "{}", text(&back));
    for i in lab.all_hosts() {
        lab.assert_on(i, "1.0.0");
    }
}

/// One host lost release 1.0.0 (removed by hand), another cannot be
/// reached: the rollback is refused naming both, and no host, no state
/// record and no history changed.
#[test]
fn rollback_changes_nothing_when_a_host_cannot_go_back() {
    let Some(mut lab) = lab_on_two_versions(3, "rollback-refused-") else {
        return;
    };
    std::fs::remove_dir_all(lab.install_dir(1).join("releases/1.0.0")).unwrap();
    lab.hosts.stop_host(2);
    let before = lab.state();
    let observed: Vec<_> = [0, 1]
        .iter()
        .map(|&i| (lab.observed(i), lab.app_pid(i)))
        .collect();

    let refused = rollback(&lab, &[]);
    let log = text(&refused);
    assert_eq!(refused.status.code(), Some(1), "{log}");
    assert!(log.contains("nothing was changed"), "{log}");
    let host1 = lab.address(1);
    assert!(
        log.contains(&format!("{host1}: rollback.check failed"))
            && log.contains("release 1.0.0 is not installed on this host"),
        "{log}"
    );
    assert!(
        log.contains(&format!("{}: cannot connect", lab.address(2))),
        "{log}"
    );
    let after: Vec<_> = [0, 1]
        .iter()
        .map(|&i| (lab.observed(i), lab.app_pid(i)))
        .collect();
    assert_eq!(after, observed);
    lab.assert_on(0, "2.0.0");
    let state = lab.state();
    assert_eq!(state.deployments, before.deployments);
    assert_eq!(state.history, before.history);
}

/// The rollback is killed (SIGKILL) right after it journaled its first
/// host; state says so. Run again, it finishes the same rollback: every
/// host on 1.0.0, the killed run marked interrupted in history, the
/// journal empty, and 2.0.0 still refused by apply.
#[test]
fn a_rollback_killed_part_way_is_finished_by_running_it_again() {
    let Some(lab) = lab_on_two_versions(3, "rollback-killed-") else {
        return;
    };
    let killed = lab
        .command(&[
            "rollback",
            "app",
            ".",
            "-auto-approve",
            "-var",
            "version=2.0.0",
            "-parallelism",
            "1",
        ])
        .env("SLIPWAY_TEST_CRASH_AT", "4")
        .output()
        .unwrap();
    assert_eq!(killed.status.code(), None, "killed: {}", text(&killed));
    let state = lab.state();
    let deployment = &state.deployments["deployment.app"];
    assert_eq!(deployment.version, "1.0.0");
    assert_eq!(deployment.status, DeploymentStatus::InProgress);
    // The host whose switch had begun is not recorded as settled on either
    // release: it may have moved.
    let open: Vec<&str> = state
        .uncertain_steps()
        .filter_map(|e| e.host.as_deref())
        .collect();
    assert_eq!(open.len(), 1, "{:?}", state.journal);
    assert_eq!(deployment.hosts[open[0]].status, HostStatus::InProgress);

    let finished = rollback(&lab, &[]);
    let log = text(&finished);
    assert_eq!(finished.status.code(), Some(0), "{log}");
    assert!(
        log.contains("an interrupted rollback to this release is finished"),
        "{log}"
    );
    for i in lab.all_hosts() {
        lab.assert_on(i, "1.0.0");
    }
    let state = lab.state();
    let deployment = &state.deployments["deployment.app"];
    assert_eq!(deployment.status, DeploymentStatus::Deployed);
    assert_eq!(
        deployment
            .rolled_back_from
            .as_ref()
            .map(|r| r.version.as_str()),
        Some("2.0.0")
    );
    let results: Vec<(&str, &str)> = state
        .history
        .iter()
        .filter(|e| e.operation == HistoryOperation::Rollback)
        .map(|e| (e.operation.as_str(), e.result.as_str()))
        .collect();
    assert_eq!(
        results,
        [("rollback", "interrupted"), ("rollback", "succeeded")]
    );
    assert!(state.journal.is_empty(), "{:?}", state.journal);
    let refused = lab.apply("2.0.0");
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
}

/// On a protected environment rollback needs `-approve NAME` like apply
/// (without it, and without a terminal, nothing changes); a deployment with
/// one verified release has nothing to go back to, and says what to do.
#[test]
fn rollback_asks_for_protected_environments_and_explains_an_empty_history() {
    let quickstart = crate::support::quickstart::Quickstart::new();
    quickstart.edit_config(
        "environment \"local\" {\n",
        "environment \"local\" {\n  protected = true\n",
    );
    let apply = |version: &str| {
        let var = format!("version={version}");
        quickstart.slipway(&[
            "apply",
            ".",
            "-auto-approve",
            "-approve",
            "local",
            "-var",
            &var,
        ])
    };
    let first = apply("1.0.0");
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let nothing = quickstart.slipway(&["rollback", "hello", ".", "-auto-approve"]);
    assert_eq!(nothing.status.code(), Some(1), "{}", text(&nothing));
    assert!(
        text(&nothing).contains("has no verified release before 1.0.0")
            && text(&nothing).contains("nothing was changed"),
        "{}",
        text(&nothing)
    );
    let second = apply("2.0.0");
    assert_eq!(second.status.code(), Some(0), "{}", text(&second));
    let before = quickstart.backend().read("local").unwrap().unwrap();

    let refused = quickstart.slipway(&["rollback", "hello", ".", "-auto-approve"]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(
        text(&refused).contains("environment local is protected: approve it with -approve local"),
        "{}",
        text(&refused)
    );
    let after = quickstart.backend().read("local").unwrap().unwrap();
    assert_eq!(after.deployments, before.deployments);
    assert_eq!(after.serial, before.serial);

    let approved = quickstart.slipway(&[
        "rollback",
        "hello",
        ".",
        "-auto-approve",
        "-approve",
        "local",
    ]);
    assert_eq!(approved.status.code(), Some(0), "{}", text(&approved));
    for port in quickstart.base_port..quickstart.base_port + 3 {
        assert!(
            crate::support::http_get(port, "/").contains("1.0.0"),
            "{}",
            crate::support::http_get(port, "/")
        );
    }
}
