//! VM rollouts across applies, checked on the hosts: real sshd servers on
//! loopback (see `sshd/mod.rs`) and the fixture app of `ssh_fixtures/`.
//!
//! A rollback must put every host the rollout moved — whichever apply of the
//! rollout moved it — back on the release pair (code release, config files)
//! it served before the rollout began, leave the hosts the rollout did not
//! move alone, and record a host it cannot reach as not rolled back. Each
//! test reads what the hosts have (`current`, the config file's bytes, the
//! release marker, what the app answers) as well as state. And nothing
//! slipway starts (ssh masters) outlives it, even after `kill -9`.

use crate::support::ssh_lab::Lab;
use crate::support::{drift_summaries, processes_naming, text};

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use slipway::state::{DeploymentStatus, HostStatus, StepOutcome};

const ROLLBACK_BY_TWO: &str =
    "strategy   = \"rolling\"\n  batches    = [2]\n  on_failure = \"rollback\"";

const ROLLBACK_BY_TWO_WITH_APPROVAL: &str = "strategy   = \"rolling\"\n  batches    = [2]\n  on_failure = \"rollback\"\n\n  approval \"release-manager\" {\n    after_step = 1\n  }";

/// Five hosts on 1.0.0; the rollout of 2.0.0 moves hosts 1-2 in a first
/// apply and stops at an approval; after the approval a second apply moves
/// host 3 and fails to reach host 4 (its sshd is gone), and host 2 cannot be
/// reached either any more. The rollback puts hosts 1 and 3 — moved by two
/// different applies — back on 1.0.0's pair (release, config, marker), names
/// host 2 as not rolled back and records it so, and leaves hosts 4 and 5
/// (never moved) alone.
#[test]
fn a_rollback_after_an_approval_restores_every_moved_host_and_names_the_unreachable_one() {
    let Some(mut lab) = Lab::start(5, "rollback-pairs-") else {
        return;
    };
    lab.configure(&[0, 1, 2, 3, 4], ROLLBACK_BY_TWO);
    let first = lab.apply("1.0.0");
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    for i in 0..5 {
        lab.assert_on(i, "1.0.0");
    }
    let untouched = [lab.observed(3), lab.observed(4)];
    let pids = [lab.app_pid(3), lab.app_pid(4)];

    lab.configure(&[0, 1, 2, 3, 4], ROLLBACK_BY_TWO_WITH_APPROVAL);
    let paused = lab.apply("2.0.0");
    assert_eq!(paused.status.code(), Some(0), "{}", text(&paused));
    assert!(
        text(&paused).contains("waits for approval"),
        "{}",
        text(&paused)
    );
    lab.assert_on(0, "2.0.0");
    lab.assert_on(1, "2.0.0");
    let approve = Command::new(env!("CARGO_BIN_EXE_slipway"))
        .args(["approve", "app", "."])
        .current_dir(&lab.root)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(approve.status.code(), Some(0), "{}", text(&approve));

    lab.hosts.stop_host(1);
    lab.hosts.stop_host(3);
    let failed = lab.apply("2.0.0");
    let log = text(&failed);
    assert_eq!(failed.status.code(), Some(1), "{log}");

    // Moved by the first apply and by the second: back on 1.0.0's pair.
    lab.assert_on(0, "1.0.0");
    lab.assert_on(2, "1.0.0");
    // Never moved: not touched, not restarted.
    assert_eq!([lab.observed(3), lab.observed(4)], untouched);
    assert_eq!([lab.app_pid(3), lab.app_pid(4)], pids);
    // Unreachable during the rollback: named, not counted as rolled back.
    let host2 = lab.address(1);
    assert!(
        log.contains(&format!("rollback of {host2}: cannot connect"))
            && log.contains("NOT rolled back"),
        "{log}"
    );
    assert!(log.contains("2 rolled back, 1 NOT rolled back"), "{log}");
    assert_eq!(
        lab.observed(1).0,
        "releases/2.0.0",
        "host 2 still runs 2.0.0"
    );

    let state = lab.state();
    let deployment = &state.deployments["deployment.app"];
    assert_eq!(deployment.status, DeploymentStatus::Failed);
    let record = |i: usize| {
        let r = &deployment.hosts[lab.address(i)];
        (r.version.clone(), r.status)
    };
    assert_eq!(record(0), ("1.0.0".into(), HostStatus::RolledBack));
    assert_eq!(record(1), ("2.0.0".into(), HostStatus::RollbackFailed));
    assert_eq!(record(2), ("1.0.0".into(), HostStatus::RolledBack));
    // Could not be reached to update: failed, still on (and recorded on) 1.0.0.
    assert_eq!(record(3), ("1.0.0".into(), HostStatus::Failed));
    assert_eq!(record(4), ("1.0.0".into(), HostStatus::Deployed));
    assert_eq!(
        deployment.hosts[host2]
            .previous
            .as_ref()
            .map(|p| p.version.as_str()),
        Some("1.0.0"),
        "host 2 still knows what to go back to"
    );
}

/// The apply of 2.0.0 is killed (SIGKILL) right after its first batch
/// (hosts 1-2) is recorded; the next apply resumes the rollout, moves host 3
/// and cannot reach host 4. The rollback puts hosts 1-2 (moved by the killed
/// apply) and host 3 back on 1.0.0's pair; host 5 is not touched.
#[test]
fn a_rollback_after_a_kill_restores_the_hosts_the_killed_apply_moved() {
    let Some(mut lab) = Lab::start(5, "rollback-pairs-") else {
        return;
    };
    lab.configure(&[0, 1, 2, 3, 4], ROLLBACK_BY_TWO);
    let first = lab.apply("1.0.0");
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let untouched = (lab.observed(4), lab.app_pid(4));

    // Crash points 1-2: both hosts' updates start; 3-6: each is recorded
    // finished (before and after the write).
    let killed = lab
        .command(&["apply", ".", "-auto-approve", "-var", "version=2.0.0"])
        .env("SLIPWAY_TEST_CRASH_AT", "6")
        .output()
        .unwrap();
    assert_eq!(killed.status.code(), None, "killed:\n{}", text(&killed));
    lab.assert_on(0, "2.0.0");
    lab.assert_on(1, "2.0.0");

    lab.hosts.stop_host(3);
    let resumed = lab.apply("2.0.0");
    let log = text(&resumed);
    assert_eq!(resumed.status.code(), Some(1), "{log}");
    for i in 0..3 {
        lab.assert_on(i, "1.0.0");
    }
    assert_eq!((lab.observed(4), lab.app_pid(4)), untouched);
    let state = lab.state();
    let deployment = &state.deployments["deployment.app"];
    assert_eq!(deployment.status, DeploymentStatus::RolledBack, "{log}");
    for i in 0..3 {
        let record = &deployment.hosts[lab.address(i)];
        assert_eq!(
            (record.version.as_str(), record.status),
            ("1.0.0", HostStatus::RolledBack),
            "{}",
            lab.address(i)
        );
    }
    // What the hosts run is what state says: refresh finds no drift (the
    // rollback rewrote the markers too).
    let refreshed = lab.slipway(&["plan", ".", "-refresh", "-json", "-var", "version=1.0.0"]);
    let plan: serde_json::Value = serde_json::from_slice(&refreshed.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", text(&refreshed)));
    let drift: Vec<&serde_json::Value> = plan["deployments"][0]["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            r["kind"] == "drift" && !r["summary"].as_str().unwrap().contains(lab.address(3))
        })
        .collect();
    assert!(drift.is_empty(), "{drift:#?}");
    for i in 0..3 {
        assert_eq!(lab.observed(i).2, "1.0.0", "marker of {}", lab.address(i));
    }
    // Host 3 was deployed and rolled back: it counts as rolled back only.
    assert!(
        log.contains("hosts: 0 deployed, 1 failed, 3 rolled back"),
        "{log}"
    );
}

/// A deployed environment (1.0.0, then 2.0.0) gets a new host that cannot
/// be reached. The apply that should install it fails at once and the
/// rollout moved no host: the healthy hosts are not restarted, keep 2.0.0's
/// pair and are not recorded as rolled back.
#[test]
fn an_unreachable_new_host_leaves_the_deployed_hosts_alone() {
    let Some(mut lab) = Lab::start(4, "rollback-pairs-") else {
        return;
    };
    lab.configure(&[0, 1, 2], ROLLBACK_BY_TWO);
    for version in ["1.0.0", "2.0.0"] {
        let applied = lab.apply(version);
        assert_eq!(applied.status.code(), Some(0), "{}", text(&applied));
    }
    let before: Vec<_> = (0..3).map(|i| (lab.observed(i), lab.app_pid(i))).collect();

    lab.hosts.stop_host(3);
    lab.configure(&[0, 1, 2, 3], ROLLBACK_BY_TWO);
    let failed = lab.apply("2.0.0");
    let log = text(&failed);
    assert_eq!(failed.status.code(), Some(1), "{log}");
    assert!(
        log.contains(lab.address(3)),
        "the new host is named:\n{log}"
    );
    assert!(
        log.contains("the rollout moved no host, nothing to roll back"),
        "{log}"
    );
    let after: Vec<_> = (0..3).map(|i| (lab.observed(i), lab.app_pid(i))).collect();
    assert_eq!(after, before, "the deployed hosts were not touched");
    for i in 0..3 {
        lab.assert_on(i, "2.0.0");
    }
    let state = lab.state();
    let deployment = &state.deployments["deployment.app"];
    for i in 0..3 {
        let record = &deployment.hosts[lab.address(i)];
        assert_eq!(
            (record.version.as_str(), record.status),
            ("2.0.0", HostStatus::Deployed),
            "{}",
            lab.address(i)
        );
    }
    assert_ne!(deployment.status, DeploymentStatus::RolledBack);
}

/// `kill -9` of an apply in the middle of a host's update: the ssh master of
/// every host it had connected to ends within seconds, and its temporary
/// directory (control socket and log) is removed.
#[test]
fn no_ssh_master_outlives_an_apply_killed_with_sigkill() {
    let Some(lab) = Lab::start(3, "rollback-pairs-") else {
        return;
    };
    lab.configure(&[0, 1, 2], "strategy = \"all_at_once\"");
    // The masters' control directories go under this apply's own TMPDIR.
    let tmp = tempfile::Builder::new()
        .prefix("slipway-tmp-")
        .tempdir()
        .unwrap();
    let tmpdir = tmp.path().display().to_string();
    lab.hold_health_check(1);
    let mut apply = lab
        .command(&["apply", ".", "-auto-approve", "-var", "version=1.0.0"])
        .env("TMPDIR", &tmpdir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !lab.health_check_held(1) {
        assert!(
            Instant::now() < deadline,
            "host 2 never reached its health check"
        );
        assert!(apply.try_wait().unwrap().is_none(), "the apply ended early");
        std::thread::sleep(Duration::from_millis(50));
    }
    let masters = processes_naming(&tmpdir);
    assert!(
        masters
            .iter()
            .any(|p| p.contains("ssh") && p.contains("-M")),
        "the apply runs ssh masters under {tmpdir}: {masters:#?}"
    );
    apply.kill().unwrap();
    apply.wait().unwrap();
    let killed_at = Instant::now();
    lab.release_health_check(1);

    loop {
        let left = processes_naming(&tmpdir);
        let dirs: Vec<String> = std::fs::read_dir(&tmpdir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().to_string())
            .filter(|name| name.starts_with(".ssh-connection"))
            .collect();
        if left.is_empty() && dirs.is_empty() {
            break;
        }
        assert!(
            killed_at.elapsed() < Duration::from_secs(30),
            "30s after kill -9, still running: {left:#?}; still there: {dirs:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!(
        "ssh masters and their directories gone {:.1}s after kill -9",
        killed_at.elapsed().as_secs_f64()
    );
}

/// `kill -9` of an apply while its ssh master is still logging in: the login
/// goes on without slipway and the master it starts must end too. (Found by
/// the random operation sequences: a watchdog started once a login had
/// returned never saw a master whose login was under way when slipway died.)
/// A proxy in front of the host's sshd holds every connection for two
/// seconds before it passes it on, and the apply is killed in that time.
#[test]
fn no_ssh_master_outlives_an_apply_killed_while_it_logs_in() {
    use std::io::Write as _;
    use std::net::{TcpListener, TcpStream};
    let Some(mut lab) = Lab::start(1, "rollback-pairs-") else {
        return;
    };
    let sshd = lab.address(0).to_string();
    let proxy = TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy_port = proxy.local_addr().unwrap().port();
    let (accepted, connection_seen) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for client in proxy.incoming().flatten() {
            let _ = accepted.send(());
            let sshd = sshd.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_secs(2));
                let Ok(server) = TcpStream::connect(&sshd) else {
                    return;
                };
                let (mut c2, mut s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let (mut c, mut s) = (client, server);
                std::thread::spawn(move || std::io::copy(&mut c2, &mut s2));
                let _ = std::io::copy(&mut s, &mut c);
            });
        }
    });
    // The proxy stands for the host: its address, the host's key.
    let key = lab.hosts.host_key(0);
    let mut known_hosts = std::fs::OpenOptions::new()
        .append(true)
        .open(lab.hosts.known_hosts())
        .unwrap();
    writeln!(known_hosts, "[127.0.0.1]:{proxy_port} {key}").unwrap();
    lab.hosts.hosts[0].address = format!("127.0.0.1:{proxy_port}");
    lab.configure(&[0], "strategy = \"all_at_once\"");

    let tmp = tempfile::Builder::new()
        .prefix("slipway-tmp-")
        .tempdir()
        .unwrap();
    let tmpdir = tmp.path().display().to_string();
    let mut apply = lab
        .command(&["apply", ".", "-auto-approve", "-var", "version=1.0.0"])
        .env("TMPDIR", &tmpdir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    connection_seen
        .recv_timeout(Duration::from_secs(120))
        .expect("the apply connects to the host");
    std::thread::sleep(Duration::from_millis(500));
    apply.kill().unwrap();
    apply.wait().unwrap();
    let killed_at = Instant::now();

    // The login finishes about 1.5 s after the kill; the master it leaves
    // must end soon after.
    std::thread::sleep(Duration::from_secs(3));
    loop {
        let left = processes_naming(&tmpdir);
        let dirs: Vec<String> = std::fs::read_dir(&tmpdir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().to_string())
            .collect();
        if left.is_empty() && dirs.is_empty() {
            break;
        }
        assert!(
            killed_at.elapsed() < Duration::from_secs(30),
            "30s after kill -9, still running: {left:#?}; still there: {dirs:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A config file edited by hand on one host, `current` untouched: `plan
/// -refresh` names that host (and only it) as drifted, and plans its update.
/// (Found by the random operation sequences: refresh read only `current`,
/// so a host serving a config no apply wrote looked in order.)
#[test]
fn plan_refresh_names_a_host_whose_config_file_was_edited() {
    let Some(lab) = Lab::start(3, "rollback-pairs-") else {
        return;
    };
    lab.configure(&[0, 1, 2], ROLLBACK_BY_TWO);
    let applied = lab.apply("1.0.0");
    assert_eq!(applied.status.code(), Some(0), "{}", text(&applied));
    let config = lab.install_dir(1).join("config/app.env");
    let mut edited = std::fs::read_to_string(&config).unwrap();
    edited.push_str("DEBUG=1\n");
    std::fs::write(&config, edited).unwrap();

    let plan = |extra: &[&str]| {
        let mut args = vec!["plan", ".", "-json", "-var", "version=1.0.0"];
        args.extend(extra);
        let output = lab.slipway(&args);
        let document: serde_json::Value = serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", text(&output)));
        (output.status.code(), document)
    };
    assert_eq!(plan(&[]).0, Some(0), "without -refresh only state is read");
    let (code, document) = plan(&["-refresh"]);
    assert_eq!(code, Some(2), "{document:#}");
    let drift = drift_summaries(&document["deployments"][0]);
    assert_eq!(drift.len(), 1, "{drift:?}");
    assert!(
        drift[0].contains(lab.address(1)) && drift[0].contains("config files"),
        "{drift:?}"
    );
    let scheduled: Vec<&str> = document["schedule"]["waves"][0]["deployments"][0]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["hosts"].as_array().unwrap())
        .map(|h| h.as_str().unwrap())
        .collect();
    assert_eq!(scheduled, [lab.address(1)], "{document:#}");
}

/// The pair a rollback goes back to is not pruned. Host 1's update to
/// 2.0.0 is cut off by kill -9 in its health check (it is recorded in
/// progress; the last pair it served well is 1.0.0). The rollout of 3.0.0
/// then moves host 1 and fails on host 2: host 1 goes back to 1.0.0, which
/// its update to 3.0.0 must not have pruned (`keep_releases = 1` keeps only
/// the newest release, `current` and the one before the switch, 2.0.0).
/// (Found by the random operation sequences: the rollback said "release
/// 1.0.0 is not installed on this host" and left host 1 on 3.0.0.)
#[test]
fn a_release_a_rollback_needs_is_not_pruned() {
    let Some(mut lab) = Lab::start(2, "rollback-pairs-") else {
        return;
    };
    let main = lab.root.join("main.hcl");
    let hcl = std::fs::read_to_string(&main).unwrap().replace(
        "    install_dir   = \"/opt/app\"\n",
        "    install_dir   = \"/opt/app\"\n    keep_releases = 1\n",
    );
    assert!(hcl.contains("keep_releases = 1"));
    std::fs::write(&main, hcl).unwrap();
    lab.configure(
        &[0, 1],
        "strategy   = \"rolling\"\n  batches    = [1]\n  on_failure = \"rollback\"",
    );
    let first = lab.apply("1.0.0");
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));

    lab.hold_health_check(0);
    let mut killed = lab
        .command(&["apply", ".", "-auto-approve", "-var", "version=2.0.0"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !lab.health_check_held(0) {
        assert!(
            Instant::now() < deadline,
            "host 1 never reached its health check"
        );
        assert!(
            killed.try_wait().unwrap().is_none(),
            "the apply ended early"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    killed.kill().unwrap();
    killed.wait().unwrap();
    // The host's session goes with it (a session left alone would finish
    // the update on the host: the switch, its checks and the release marker
    // are one session).
    lab.hosts.stop_host(0);
    lab.hosts.start_host(0);
    lab.release_health_check(0);
    let record = lab.state().deployments["deployment.app"].hosts[lab.address(0)].clone();
    assert_eq!(record.status, HostStatus::InProgress);

    // 3.0.0 fails its health check on host 2 only.
    let address = lab.address(1).to_string();
    let check = lab.root.join("app/bin/check.sh");
    let original = std::fs::read_to_string(&check).unwrap();
    std::fs::write(
        &check,
        original.replacen(
            "set -eu\n",
            &format!("set -eu\nif [ \"${{SLIPWAY_HOST:-}}\" = '{address}' ]; then exit 1; fi\n"),
            1,
        ),
    )
    .unwrap();
    let failed = lab.apply("3.0.0");
    let log = text(&failed);
    assert_eq!(failed.status.code(), Some(1), "{log}");
    assert!(!log.contains("is not installed"), "{log}");
    lab.assert_on(0, "1.0.0");
    let record = &lab.state().deployments["deployment.app"].hosts[lab.address(0)];
    assert_eq!(
        (record.version.as_str(), record.status),
        ("1.0.0", HostStatus::RolledBack),
        "{log}"
    );
}

/// An update of the config alone (same version) killed after its first
/// batch: the next apply updates the hosts still on the config before,
/// rather than finding every host "deployed on 1.0.0" and doing nothing.
/// (Found by the random operation sequences: the apply succeeded and plan
/// showed no changes while half the hosts served the old config.)
#[test]
fn a_config_only_update_cut_off_part_way_is_finished_by_the_next_apply() {
    let Some(lab) = Lab::start(4, "rollback-pairs-") else {
        return;
    };
    lab.configure(&[0, 1, 2, 3], ROLLBACK_BY_TWO);
    let first = lab.apply("1.0.0");
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));

    let main = lab.root.join("main.hcl");
    let hcl = std::fs::read_to_string(&main).unwrap().replace(
        "VERSION='${var.version}'\n",
        "VERSION='${var.version}'\n        LEVEL=2\n",
    );
    assert!(hcl.contains("LEVEL=2"));
    std::fs::write(&main, hcl).unwrap();
    // Crash points 1-2: the first batch's updates start; 3-6: each is
    // recorded finished (before and after the write).
    let killed = lab
        .command(&["apply", ".", "-auto-approve", "-var", "version=1.0.0"])
        .env("SLIPWAY_TEST_CRASH_AT", "6")
        .output()
        .unwrap();
    assert_eq!(killed.status.code(), None, "killed:\n{}", text(&killed));
    let config =
        |i: usize| std::fs::read_to_string(lab.install_dir(i).join("config/app.env")).unwrap();
    assert!(config(0).contains("LEVEL=2") && !config(3).contains("LEVEL=2"));

    let plan = lab.slipway(&["plan", ".", "-var", "version=1.0.0"]);
    assert_eq!(plan.status.code(), Some(2), "{}", text(&plan));
    let resumed = lab.apply("1.0.0");
    assert_eq!(resumed.status.code(), Some(0), "{}", text(&resumed));
    for i in 0..4 {
        assert!(config(i).contains("LEVEL=2"), "host {i}: {}", config(i));
    }
    let again = lab.slipway(&["plan", ".", "-var", "version=1.0.0"]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
}

const ONE_BY_ONE: &str =
    "strategy   = \"rolling\"\n  batches    = [1]\n  on_failure = \"rollback\"";

/// Two applies of different versions killed in a row on the same host: the
/// first (2.0.0) after host 1's update finished but before it was recorded,
/// the second (3.0.0) right after it journaled its own update of host 1.
/// The second first re-checks what the first left open there (its release
/// marker: done), so the host never has two uncertain steps, and its record
/// says it served 2.0.0's pair when the 3.0.0 rollout moved it. When 3.0.0
/// then fails on host 2, the rollback puts host 1 back on 2.0.0's pair, the
/// one it really served before that rollout, and host 2 on 1.0.0's.
#[test]
fn a_host_left_uncertain_by_two_killed_applies_is_rechecked_once_and_rolled_back_to_what_it_served()
{
    let Some(lab) = Lab::start(2, "rollback-pairs-") else {
        return;
    };
    lab.configure(&[0, 1], ONE_BY_ONE);
    let first = lab.apply("1.0.0");
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let kill_at = |version: &str, point: &str| {
        let var = format!("version={version}");
        let killed = lab
            .command(&["apply", ".", "-auto-approve", "-var", &var])
            .env("SLIPWAY_TEST_CRASH_AT", point)
            .output()
            .unwrap();
        assert_eq!(killed.status.code(), None, "killed:\n{}", text(&killed));
    };
    let host1 = lab.address(0).to_string();
    let open_on = |state: &slipway::state::State, host: &str| -> Vec<(String, String)> {
        state
            .uncertain_steps()
            .filter(|e| e.host.as_deref() == Some(host))
            .map(|e| (e.apply_id.clone(), e.version.clone()))
            .collect()
    };

    // Crash point 1: host 1's update is journaled as started; 2: it is done
    // (marker written) and not yet recorded.
    kill_at("2.0.0", "2");
    lab.assert_on(0, "2.0.0");
    let state = lab.state();
    let open = open_on(&state, &host1);
    assert_eq!(open.len(), 1, "{:?}", state.journal);
    let (killed_first, _) = open[0].clone();

    // Crash points 1-2: the re-check of host 1 is about to be recorded, and
    // is; 3: the update of host 1 to 3.0.0 is journaled as started.
    kill_at("3.0.0", "3");
    lab.assert_on(0, "2.0.0");
    let state = lab.state();
    let open = open_on(&state, &host1);
    assert_eq!(
        open.len(),
        1,
        "one uncertain step on host 1: {:#?}",
        state.journal
    );
    assert_eq!(open[0].1, "3.0.0");
    let killed_second = open[0].0.clone();
    assert_ne!(killed_second, killed_first);
    let settled = state
        .journal
        .iter()
        .find(|e| e.apply_id == killed_first && e.action.as_str() == "deploy")
        .unwrap();
    assert_eq!(
        settled.result.as_ref().map(ToString::to_string),
        Some(format!(
            "deployed (release marker; re-checked by {killed_second})"
        )),
        "{:#?}",
        state.journal
    );
    assert!(
        state.journal.iter().any(|e| e.apply_id == killed_second
            && e.action.as_str() == "recheck"
            && e.ended_as(StepOutcome::Done)),
        "{:#?}",
        state.journal
    );
    let record = &state.deployments["deployment.app"].hosts[host1.as_str()];
    assert_eq!(
        (record.version.as_str(), record.status),
        ("3.0.0", HostStatus::InProgress)
    );
    assert_eq!(
        record.previous.as_ref().map(|p| p.version.as_str()),
        Some("2.0.0"),
        "host 1 served 2.0.0 when the 3.0.0 rollout moved it"
    );
    // plan says what the next apply does about it.
    let plan = lab.slipway(&["plan", ".", "-var", "version=3.0.0"]);
    let plan_text = text(&plan);
    assert!(
        plan_text.contains(&format!(
            "reads {host1}'s release marker: if it names apply {killed_second} and 3.0.0"
        )),
        "{plan_text}"
    );

    // 3.0.0 fails its health check on host 2.
    let address = lab.address(1).to_string();
    let check = lab.root.join("app/bin/check.sh");
    let original = std::fs::read_to_string(&check).unwrap();
    std::fs::write(
        &check,
        original.replacen(
            "set -eu\n",
            &format!("set -eu\nif [ \"${{SLIPWAY_HOST:-}}\" = '{address}' ]; then exit 1; fi\n"),
            1,
        ),
    )
    .unwrap();
    let failed = lab.apply("3.0.0");
    let log = text(&failed);
    assert_eq!(failed.status.code(), Some(1), "{log}");
    assert!(
        log.contains(&format!(
            "{host1}: re-checked: apply {killed_second} had not finished its update to 3.0.0"
        )),
        "{log}"
    );
    lab.assert_on(0, "2.0.0");
    lab.assert_on(1, "1.0.0");
    let state = lab.state();
    assert!(state.journal.is_empty(), "{:#?}", state.journal);
    let results: Vec<(&str, &str)> = state
        .history
        .iter()
        .rev()
        .take(3)
        .map(|h| (h.apply_id.as_str(), h.result.as_str()))
        .collect();
    assert_eq!(
        &results[1..],
        [
            (killed_second.as_str(), "interrupted"),
            (killed_first.as_str(), "interrupted")
        ],
        "{results:?}"
    );
}

/// An update of the config alone (same version) killed right after it
/// journaled host 1's update: host 1 still runs 1.0.0 with the config
/// before, and has no snapshot of the pair state records for it (in
/// progress). `plan -refresh` cannot tell which config it has and says so
/// (drift, `config_unknown`), rather than taking the record at its word;
/// host 2, not reached, is not named. The next apply puts it right.
#[test]
fn refresh_says_it_cannot_tell_the_config_of_a_host_whose_update_was_cut_off() {
    let Some(lab) = Lab::start(2, "rollback-pairs-") else {
        return;
    };
    lab.configure(&[0, 1], ONE_BY_ONE);
    let first = lab.apply("1.0.0");
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let main = lab.root.join("main.hcl");
    let hcl = std::fs::read_to_string(&main).unwrap().replace(
        "VERSION='${var.version}'\n",
        "VERSION='${var.version}'\n        LEVEL=2\n",
    );
    std::fs::write(&main, hcl).unwrap();
    // Crash point 1: host 1's update is journaled as started.
    let killed = lab
        .command(&["apply", ".", "-auto-approve", "-var", "version=1.0.0"])
        .env("SLIPWAY_TEST_CRASH_AT", "1")
        .output()
        .unwrap();
    assert_eq!(killed.status.code(), None, "killed:\n{}", text(&killed));
    lab.assert_on(0, "1.0.0");
    let host1 = lab.address(0).to_string();
    let record = lab.state().deployments["deployment.app"].hosts[host1.as_str()].clone();
    assert_eq!(
        (record.version.as_str(), record.status),
        ("1.0.0", HostStatus::InProgress)
    );

    let refreshed = lab.slipway(&["plan", ".", "-refresh", "-json", "-var", "version=1.0.0"]);
    let plan: serde_json::Value = serde_json::from_slice(&refreshed.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", text(&refreshed)));
    let drift = drift_summaries(&plan["deployments"][0]);
    assert_eq!(drift.len(), 1, "{drift:#?}");
    assert!(
        drift[0].starts_with(&format!(
            "drift: {host1} runs 1.0.0, but which config files it has cannot be told"
        )),
        "{drift:#?}"
    );
    assert_eq!(
        plan["drift"],
        serde_json::json!([{
            "deployment": "deployment.app",
            "host": host1,
            "found": "config_unknown",
            "version": "1.0.0"
        }])
    );

    let resumed = lab.apply("1.0.0");
    assert_eq!(resumed.status.code(), Some(0), "{}", text(&resumed));
    for i in 0..2 {
        let config = std::fs::read_to_string(lab.install_dir(i).join("config/app.env")).unwrap();
        assert!(config.contains("LEVEL=2"), "host {i}: {config}");
    }
    let again = lab.slipway(&["plan", ".", "-refresh", "-var", "version=1.0.0"]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
}

/// A rollout's rollback killed (SIGKILL) right after it journaled the
/// rollback of its host: that host's record is in progress, not "deployed"
/// on the version it may already have left, and the next apply finishes the
/// rollback (the host back on 1.0.0, as it shows).
#[test]
fn a_host_whose_rollback_was_cut_off_is_not_recorded_as_settled() {
    use std::os::unix::process::ExitStatusExt;
    let Some(mut lab) = Lab::start(2, "rollback-cut-") else {
        return;
    };
    lab.configure(
        &[0, 1],
        "strategy   = \"all_at_once\"\n  on_failure = \"rollback\"",
    );
    let first = lab.apply("1.0.0");
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    // Host 2 cannot be reached: the step fails after host 1 moved to 2.0.0
    // (crash points 1-3), and the rollback of host 1 begins (crash point 4).
    lab.hosts.stop_host(1);
    let killed = lab
        .command(&["apply", ".", "-auto-approve", "-var", "version=2.0.0"])
        .env("SLIPWAY_TEST_CRASH_AT", "4")
        .output()
        .unwrap();
    assert_eq!(killed.status.signal(), Some(9), "{}", text(&killed));
    let state = lab.state();
    let open: Vec<_> = state.uncertain_steps().collect();
    assert_eq!(open.len(), 1, "{:?}", state.journal);
    assert_eq!(
        (open[0].action.as_str(), open[0].host.as_deref()),
        ("rollback", Some(lab.address(0)))
    );
    let record = &state.deployments["deployment.app"].hosts[lab.address(0)];
    assert_eq!(record.status, HostStatus::InProgress, "{record:?}");

    lab.hosts.start_host(1);
    let finished = lab.apply("2.0.0");
    let log = text(&finished);
    assert_eq!(finished.status.code(), Some(1), "{log}");
    assert!(log.contains("finished the rollback"), "{log}");
    lab.assert_on(0, "1.0.0");
    lab.assert_on(1, "1.0.0");
}

/// `current` pointed by hand at a directory slipway did not install (a
/// hotfix copied in, without slipway's completion marker and here without a
/// stop script): `plan -refresh` names the host as drifted, and the apply
/// that would repair it does not pretend the hand-made release is stopped.
/// Its stop command fails, the host is left as it is, and the failure says
/// what `current` names and what to do. Once `current` is put back by hand,
/// the next apply repairs the host. (The random operation sequences found
/// the bare `sh: cannot open current/bin/stop.sh` there.)
#[test]
fn a_current_made_by_hand_is_drift_and_its_failed_stop_says_what_to_do() {
    let Some(lab) = Lab::start(2, "hand-made-current-") else {
        return;
    };
    lab.configure(&[0, 1], ROLLBACK_BY_TWO);
    let applied = lab.apply("1.0.0");
    assert_eq!(applied.status.code(), Some(0), "{}", text(&applied));
    let dir = lab.install_dir(1);
    std::fs::create_dir_all(dir.join("releases/1.0.0-hotfix")).unwrap();
    std::fs::remove_file(dir.join("current")).unwrap();
    std::os::unix::fs::symlink("releases/1.0.0-hotfix", dir.join("current")).unwrap();

    let plan = lab.slipway(&["plan", ".", "-refresh", "-json", "-var", "version=1.0.0"]);
    assert_eq!(plan.status.code(), Some(2), "{}", text(&plan));
    let document: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    let drift = drift_summaries(&document["deployments"][0]);
    assert_eq!(drift.len(), 1, "{drift:?}");
    assert!(drift[0].contains(lab.address(1)), "{drift:?}");

    let repair = lab.slipway(&[
        "apply",
        ".",
        "-refresh",
        "-auto-approve",
        "-var",
        "version=1.0.0",
    ]);
    let log = text(&repair);
    assert_ne!(repair.status.code(), Some(0), "{log}");
    assert!(
        log.contains("current points at releases/1.0.0-hotfix, which slipway did not install"),
        "{log}"
    );
    assert_eq!(
        std::fs::read_link(dir.join("current")).unwrap(),
        Path::new("releases/1.0.0-hotfix"),
        "the hand-made release is left as it is"
    );
    lab.assert_on(0, "1.0.0");

    std::fs::remove_file(dir.join("current")).unwrap();
    std::os::unix::fs::symlink("releases/1.0.0", dir.join("current")).unwrap();
    let repaired = lab.slipway(&[
        "apply",
        ".",
        "-refresh",
        "-auto-approve",
        "-var",
        "version=1.0.0",
    ]);
    assert_eq!(repaired.status.code(), Some(0), "{}", text(&repaired));
    lab.assert_on(1, "1.0.0");
}
