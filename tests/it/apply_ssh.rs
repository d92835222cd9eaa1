//! End-to-end apply through the real binary over SSH, to real sshd servers on
//! loopback (see `sshd/mod.rs`): a fresh install, an upgrade whose hosts finish
//! batch by batch as the plan scheduled them, a failed health check rolled back,
//! a host whose sshd goes away in the middle of a rollout, the state lock
//! against a concurrent apply, `plan -refresh` noticing a host changed
//! behind slipway's back, and an apply killed mid-rollout that plan reports and
//! the next apply finishes.
//!
//! Every test copies `ssh_fixtures/` (a tiny web app and its service) into a
//! temporary directory, adds the environment (the harness's hosts, key and
//! known_hosts) and a rollout, and runs `slipway` on it. Each host runs the app
//! on its own port (`base_port` + its position in the host list); the apps are
//! stopped when the test ends. Tests skip with a note when OpenSSH is not
//! installed (except under CI, where that is an error).

use crate::support::ssh_lab::{Lab, ENVIRONMENT, GREETING};
use crate::support::{drift_summaries, http_get, latest_results, text};

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::sshd::{HostOptions, SshHosts};
use slipway::state::{Backend, DeploymentStatus, HistoryResult, HostStatus, LocalBackend};

/// One host first, then half of the hosts per batch: 1, 2, 2 on five hosts.
const ROLLING_ROLLBACK: &str =
    "strategy   = \"rolling\"\n  batches    = [1, \"50%\"]\n  on_failure = \"rollback\"";

/// The same batches, but a failure leaves every host as it is.
const ROLLING_PAUSE: &str =
    "strategy   = \"rolling\"\n  batches    = [1, \"50%\"]\n  on_failure = \"pause\"";

/// A lab of `count` hosts, every one of them in the configuration with
/// `rollout` as the rollout's body.
fn start_lab(count: usize, rollout: &str) -> Option<Lab> {
    let lab = Lab::start(count, "apply-ssh-")?;
    lab.configure(&lab.all_hosts(), rollout);
    Some(lab)
}

/// What the SSH tests of this module observe on a lab.
impl Lab {
    fn spawn_apply(&self, version: &str) -> Child {
        let var = format!("version={version}");
        self.command(&["apply", ".", "-auto-approve", "-var", &var])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    fn plan(&self, version: &str, extra: &[&str]) -> Output {
        let var = format!("version={version}");
        let mut args = vec!["plan", ".", "-var", &var];
        args.extend(extra);
        self.slipway(&args)
    }

    /// `plan -json` (plus `extra`): the exit code and the document.
    fn plan_json(&self, version: &str, extra: &[&str]) -> (Option<i32>, serde_json::Value) {
        let mut args = vec!["-json"];
        args.extend(extra);
        let output = self.plan(version, &args);
        let document = serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|e| panic!("plan -json is not JSON ({e}):\n{}", text(&output)));
        (output.status.code(), document)
    }

    fn addresses(&self) -> Vec<String> {
        self.hosts.hosts.iter().map(|h| h.address.clone()).collect()
    }

    fn marker_path(&self, i: usize) -> PathBuf {
        self.install_dir(i).join(".slipway/release.json")
    }

    fn marker(&self, i: usize) -> serde_json::Value {
        let path = self.marker_path(i);
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        serde_json::from_str(&text).unwrap()
    }

    /// What the app on each host answers on `/`.
    fn served(&self) -> Vec<String> {
        (0..self.hosts.hosts.len())
            .map(|i| http_get(self.base_port + i as u16, "/"))
            .collect()
    }

    /// The answer of an app of `version` on host `i`.
    fn greeting(&self, i: usize, version: &str) -> String {
        format!("{GREETING} (version {version}, {})", self.address(i))
    }

    fn assert_serving(&self, version: &str) {
        let expected: Vec<String> = (0..self.hosts.hosts.len())
            .map(|i| self.greeting(i, version))
            .collect();
        assert_eq!(self.served(), expected, "every host serves {version}");
    }

    /// Wait until host `i`'s health check is being held; panics with the apply's
    /// output when `apply` ends first.
    fn wait_until_held(&self, i: usize, apply: &mut Child) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while !self.health_check_held(i) {
            if let Ok(Some(_)) = apply.try_wait() {
                self.release_health_check(i);
                panic!(
                    "apply ended before host {} reached its health check:\n{}",
                    self.address(i),
                    collect(apply)
                );
            }
            assert!(
                Instant::now() < deadline,
                "host {} did not reach its health check",
                self.address(i)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Make the health check of the next version fail (in the artifact).
    fn break_health_check(&self) {
        std::fs::write(
            self.root.join("app/bin/check.sh"),
            "#!/bin/sh\necho 'health: always failing' >&2\nexit 1\n",
        )
        .unwrap();
    }
}

/// Wait for a background apply; its exit code and output.
fn finish(apply: Child) -> (Option<i32>, String) {
    let output = apply.wait_with_output().unwrap();
    (output.status.code(), text(&output))
}

fn collect(apply: &mut Child) -> String {
    use std::io::Read;
    let mut all = String::new();
    if let Some(mut out) = apply.stdout.take() {
        let _ = out.read_to_string(&mut all);
    }
    if let Some(mut err) = apply.stderr.take() {
        let _ = err.read_to_string(&mut all);
    }
    all
}

/// The hosts of each step of the (only) scheduled deployment of a plan.
fn scheduled_batches(plan: &serde_json::Value) -> Vec<Vec<String>> {
    let steps = plan["schedule"]["waves"][0]["deployments"][0]["steps"]
        .as_array()
        .unwrap_or_else(|| panic!("no scheduled steps in the plan:\n{plan:#}"));
    steps
        .iter()
        .map(|step| {
            assert_eq!(step["kind"], "host_batch", "{step}");
            step["hosts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| h.as_str().unwrap().to_string())
                .collect()
        })
        .collect()
}

/// The hosts of the apply's "HOST: on VERSION" lines, in the order printed.
fn finish_order(log: &str, version: &str) -> Vec<String> {
    let suffix = format!(": on {version}");
    log.lines()
        .filter_map(|line| line.trim_end().strip_suffix(&suffix))
        .filter_map(|rest| rest.rsplit_once("deployment.app: "))
        .map(|(_, host)| host.to_string())
        .collect()
}

#[test]
fn fresh_install_reaches_every_host_and_a_second_plan_is_empty() {
    let Some(lab) = start_lab(5, ROLLING_ROLLBACK) else {
        return;
    };
    let applied = lab.apply("1.0.0");
    let log = text(&applied);
    assert_eq!(applied.status.code(), Some(0), "{log}");
    let mut finished = finish_order(&log, "1.0.0");
    finished.sort();
    let mut all = lab.addresses();
    all.sort();
    assert_eq!(finished, all, "every host reports its install:\n{log}");

    let plan = lab.plan("1.0.0", &[]);
    assert_eq!(
        plan.status.code(),
        Some(0),
        "a second plan shows no changes:\n{}",
        text(&plan)
    );
    lab.assert_serving("1.0.0");

    let state = lab.state();
    let deployment = &state.deployments["deployment.app"];
    assert_eq!(deployment.status, DeploymentStatus::Deployed);
    assert_eq!(deployment.version, "1.0.0");
    assert!(deployment.verified);
    assert_eq!(deployment.hosts.len(), 5);
    for (host, record) in &deployment.hosts {
        assert_eq!(
            (record.version.as_str(), record.status),
            ("1.0.0", HostStatus::Deployed),
            "{host}"
        );
    }
    assert_eq!(state.history.len(), 1);
    let apply_id = state.history[0].apply_id.as_str();
    assert_eq!(state.history[0].result, HistoryResult::Succeeded);
    assert!(
        log.contains(&format!("apply id {apply_id}")),
        "the apply announced the id state records:\n{log}"
    );
    for i in 0..5 {
        let marker = lab.marker(i);
        assert_eq!(marker["version"], "1.0.0", "{}", lab.address(i));
        assert_eq!(marker["apply_id"], apply_id, "{}", lab.address(i));
        assert_eq!(
            marker["sha256"].as_str(),
            deployment.artifact_sha256.as_deref()
        );
        assert_eq!(
            std::fs::read_link(lab.install_dir(i).join("current")).unwrap(),
            Path::new("releases/1.0.0")
        );
    }
}

#[test]
fn an_upgrade_finishes_hosts_batch_by_batch_as_planned() {
    let Some(lab) = start_lab(5, ROLLING_ROLLBACK) else {
        return;
    };
    let first = lab.apply("1.0.0");
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));

    let (code, plan) = lab.plan_json("2.0.0", &[]);
    assert_eq!(code, Some(2), "the upgrade is a change:\n{plan:#}");
    let batches = scheduled_batches(&plan);
    assert_eq!(
        batches.iter().map(Vec::len).collect::<Vec<_>>(),
        [1, 2, 2],
        "[1, \"50%\"] on five hosts: {batches:?}"
    );
    assert_eq!(
        batches.concat(),
        lab.addresses(),
        "every host once, in the order of the host list"
    );

    let upgrade = lab.apply("2.0.0");
    let log = text(&upgrade);
    assert_eq!(upgrade.status.code(), Some(0), "{log}");
    let finished = finish_order(&log, "2.0.0");
    let mut sorted = finished.clone();
    sorted.sort();
    let mut all = lab.addresses();
    all.sort();
    assert_eq!(sorted, all, "each host finishes once:\n{log}");
    let position = |host: &String| finished.iter().position(|h| h == host).unwrap();
    for pair in batches.windows(2) {
        let last_of_batch = pair[0].iter().map(position).max().unwrap();
        let first_of_next = pair[1].iter().map(position).min().unwrap();
        assert!(
            last_of_batch < first_of_next,
            "batch {:?} finishes before any host of {:?} does; finished: {finished:?}\n{log}",
            pair[0],
            pair[1]
        );
    }

    lab.assert_serving("2.0.0");
    let state = lab.state();
    let deployment = &state.deployments["deployment.app"];
    assert_eq!(deployment.status, DeploymentStatus::Deployed);
    assert!(deployment.hosts.values().all(|h| h.version == "2.0.0"));
    assert_eq!(state.history.len(), 2);
    for i in 0..5 {
        assert_eq!(
            lab.marker(i)["apply_id"],
            state.history[1].apply_id.as_str()
        );
    }
}

#[test]
fn a_failing_health_check_on_the_first_host_rolls_back_to_the_previous_version() {
    let Some(lab) = start_lab(5, ROLLING_ROLLBACK) else {
        return;
    };
    let good = lab.apply("2.0.0");
    assert_eq!(good.status.code(), Some(0), "{}", text(&good));

    lab.break_health_check();
    let failed = lab.apply("3.0.0");
    let log = text(&failed);
    assert_eq!(failed.status.code(), Some(1), "{log}");
    let first = lab.address(0);
    assert!(
        log.contains(&format!("{first}: health.http failed")),
        "the failure names the host and the step:\n{log}"
    );
    assert!(
        log.contains("health: always failing"),
        "the host's own words are shown:\n{log}"
    );
    // The fixture's check: retries = 3, all made on the host.
    assert!(
        log.contains("health: always failing after 4 attempt(s)"),
        "the failure says how many attempts were made:\n{log}"
    );
    for i in 1..5 {
        assert!(
            !log.contains(&format!("{}: on 3.0.0", lab.address(i))),
            "no host after the failed batch is updated:\n{log}"
        );
    }
    lab.assert_serving("2.0.0");

    let state = lab.state();
    let deployment = &state.deployments["deployment.app"];
    assert_eq!(deployment.status, DeploymentStatus::RolledBack);
    assert!(!deployment.verified);
    for (host, record) in &deployment.hosts {
        assert_eq!(record.version, "2.0.0", "{host}: {record:?}");
    }
    assert_eq!(deployment.hosts[first].status, HostStatus::RolledBack);
    assert_eq!(
        state.history.last().unwrap().result,
        HistoryResult::RolledBack
    );
    assert_eq!(
        std::fs::read_link(lab.install_dir(0).join("current")).unwrap(),
        Path::new("releases/2.0.0")
    );
    assert_eq!(lab.marker(0)["version"], "2.0.0");
    let plan = lab.plan("3.0.0", &[]);
    assert_eq!(
        plan.status.code(),
        Some(2),
        "the plan still shows the change:\n{}",
        text(&plan)
    );
}

#[test]
fn an_sshd_stopped_during_the_rollout_fails_that_host_and_a_later_apply_converges() {
    let Some(mut lab) = start_lab(5, ROLLING_PAUSE) else {
        return;
    };
    let first = lab.apply("1.0.0");
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let (_, plan) = lab.plan_json("2.0.0", &[]);
    let batches = scheduled_batches(&plan);
    let victim = 3;
    let victim_address = lab.address(victim).to_string();
    assert_eq!(
        batches.last().unwrap()[0],
        victim_address,
        "the host that goes away is in the last batch: {batches:?}"
    );

    // The host goes away while its health check runs: its update is under way.
    lab.hold_health_check(victim);
    let mut apply = lab.spawn_apply("2.0.0");
    lab.wait_until_held(victim, &mut apply);
    lab.hosts.stop_host(victim);
    lab.release_health_check(victim);
    let (code, log) = finish(apply);
    assert_eq!(code, Some(1), "{log}");
    assert!(
        log.contains(&format!("{victim_address}: health.http failed")),
        "the failure names the host and the step:\n{log}"
    );
    assert!(
        log.contains("connection"),
        "the failure says the connection went away:\n{log}"
    );
    let finished = finish_order(&log, "2.0.0");
    assert!(
        !finished.contains(&victim_address),
        "{victim_address} did not finish:\n{log}"
    );
    assert_eq!(finished.len(), 4, "the other hosts finished:\n{log}");

    let state = lab.state();
    let deployment = &state.deployments["deployment.app"];
    assert_ne!(deployment.status, DeploymentStatus::Deployed, "{log}");
    assert_ne!(deployment.status, DeploymentStatus::RolledBack, "{log}");
    assert!(!deployment.verified);
    for (i, address) in lab.addresses().iter().enumerate() {
        let record = &deployment.hosts[address];
        if i == victim {
            assert_eq!(record.status, HostStatus::Failed, "{address}: {record:?}");
            assert_eq!(lab.marker(i)["version"], "1.0.0", "no marker for 2.0.0");
        } else {
            assert_eq!(
                (record.version.as_str(), record.status),
                ("2.0.0", HostStatus::Deployed),
                "{address}: on_failure = \"pause\" keeps the finished hosts"
            );
            assert_eq!(lab.marker(i)["version"], "2.0.0");
        }
    }
    // A pause is a pause, in the output and in history.
    assert!(log.contains("Apply paused after a failure"), "{log}");
    assert!(!log.contains("Apply failed"), "{log}");
    assert_eq!(state.history.last().unwrap().result, HistoryResult::Paused);
    let pending = lab.plan("2.0.0", &[]);
    assert_eq!(
        pending.status.code(),
        Some(2),
        "the plan shows the host that remains:\n{}",
        text(&pending)
    );

    lab.hosts.start_host(victim);
    let again = lab.apply("2.0.0");
    let log = text(&again);
    assert_eq!(again.status.code(), Some(0), "{log}");
    assert!(
        finish_order(&log, "2.0.0").contains(&victim_address),
        "{log}"
    );
    lab.assert_serving("2.0.0");
    let state = lab.state();
    let deployment = &state.deployments["deployment.app"];
    assert_eq!(deployment.status, DeploymentStatus::Deployed);
    assert!(deployment
        .hosts
        .values()
        .all(|h| h.version == "2.0.0" && h.status == HostStatus::Deployed));
    for i in 0..5 {
        assert_eq!(lab.marker(i)["version"], "2.0.0");
    }
    let plan = lab.plan("2.0.0", &[]);
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan));
}

#[test]
fn a_host_down_before_its_batch_fails_to_connect_and_is_named() {
    let Some(mut lab) = start_lab(5, ROLLING_PAUSE) else {
        return;
    };
    let first = lab.apply("1.0.0");
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let victim = 3;
    let victim_address = lab.address(victim).to_string();
    lab.hosts.stop_host(victim);

    let failed = lab.apply("2.0.0");
    let log = text(&failed);
    assert_eq!(failed.status.code(), Some(1), "{log}");
    assert!(
        log.contains(&format!("{victim_address}: connect failed"))
            && log.contains("Connection refused"),
        "the failure names the host and says it could not connect:\n{log}"
    );
    let state = lab.state();
    let deployment = &state.deployments["deployment.app"];
    assert_eq!(deployment.hosts[&victim_address].status, HostStatus::Failed);
    for (i, address) in lab.addresses().iter().enumerate() {
        if i != victim {
            let record = &deployment.hosts[address];
            assert_eq!(
                (record.version.as_str(), record.status),
                ("2.0.0", HostStatus::Deployed),
                "{address}"
            );
        }
    }
    // Nothing was changed on the host that could not be reached.
    assert_eq!(lab.marker(victim)["version"], "1.0.0");
    assert_eq!(
        http_get(lab.base_port + victim as u16, "/"),
        lab.greeting(victim, "1.0.0")
    );
}

/// docs/language.md, rollout: "`pause` — stop where it is and record the
/// deployment as partial"; `DeploymentStatus::Partial` is "some targets are on
/// `version`, others are not (an apply stopped part-way)".
#[test]
fn a_paused_rollout_is_recorded_as_partial() {
    let rollout = "strategy   = \"rolling\"\n  batches    = [1]\n  on_failure = \"pause\"";
    let Some(mut lab) = start_lab(3, rollout) else {
        return;
    };
    let first = lab.apply("1.0.0");
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    lab.hosts.stop_host(1);
    let paused = lab.apply("2.0.0");
    assert_eq!(paused.status.code(), Some(1), "{}", text(&paused));
    let state = lab.state();
    let deployment = &state.deployments["deployment.app"];
    let statuses: Vec<(&str, HostStatus)> = deployment
        .hosts
        .values()
        .map(|h| (h.version.as_str(), h.status))
        .collect();
    assert_eq!(deployment.hosts[lab.address(0)].version, "2.0.0");
    assert_eq!(
        deployment.hosts[lab.address(0)].status,
        HostStatus::Deployed,
        "{statuses:?}"
    );
    assert_eq!(
        deployment.status,
        DeploymentStatus::Partial,
        "one host is on 2.0.0, the others are not: {statuses:?}"
    );
}

#[test]
fn a_second_apply_is_refused_while_the_state_is_locked() {
    let Some(lab) = start_lab(5, ROLLING_ROLLBACK) else {
        return;
    };
    // A lock held through the library.
    let backend = LocalBackend::new(lab.root.join(".slipway/state"));
    let guard = backend.lock(ENVIRONMENT, "apply").unwrap();
    let refused = lab.apply("1.0.0");
    let log = text(&refused);
    assert_eq!(refused.status.code(), Some(1), "{log}");
    assert!(
        log.contains("locked") && log.contains(&guard.info().id),
        "{log}"
    );
    assert!(
        (0..5).all(|i| !lab.install_dir(i).exists()),
        "nothing was deployed"
    );
    drop(guard);

    // Two applies at once: the first holds the lock while its first host's
    // health check waits; the second is refused and changes nothing.
    lab.hold_health_check(0);
    let mut running = lab.spawn_apply("1.0.0");
    lab.wait_until_held(0, &mut running);
    let second = lab.apply("1.0.0");
    let second_log = text(&second);
    lab.release_health_check(0);
    let (code, log) = finish(running);
    assert_eq!(code, Some(0), "the first apply completes:\n{log}");
    assert_eq!(second.status.code(), Some(1), "{second_log}");
    assert!(second_log.contains("locked"), "{second_log}");
    assert!(
        !second_log.contains("Applying"),
        "the refused apply did not start:\n{second_log}"
    );
    let state = lab.state();
    assert_eq!(state.history.len(), 1, "one apply ran");
    assert_eq!(state.history[0].result, HistoryResult::Succeeded);
    lab.assert_serving("1.0.0");
}

#[test]
fn plan_refresh_reports_hosts_changed_behind_slipways_back() {
    let Some(lab) = start_lab(5, ROLLING_ROLLBACK) else {
        return;
    };
    let applied = lab.apply("1.0.0");
    assert_eq!(applied.status.code(), Some(0), "{}", text(&applied));
    let (code, _) = lab.plan_json("1.0.0", &["-refresh"]);
    assert_eq!(code, Some(0), "no drift right after the apply");

    // Someone installs another version by hand on one host (its marker
    // still says 1.0.0), removes `current` on another, and wipes the marker
    // on a third, which still serves 1.0.0: that one has not drifted.
    let hotfix = lab.install_dir(1).join("releases/0.9.9-hotfix");
    std::fs::create_dir_all(&hotfix).unwrap();
    let current = lab.install_dir(1).join("current");
    std::fs::remove_file(&current).unwrap();
    std::os::unix::fs::symlink("releases/0.9.9-hotfix", &current).unwrap();
    std::fs::remove_file(lab.install_dir(2).join("current")).unwrap();
    std::fs::remove_file(lab.marker_path(3)).unwrap();

    let plain = lab.plan("1.0.0", &[]);
    assert_eq!(
        plain.status.code(),
        Some(0),
        "without -refresh the plan only reads state:\n{}",
        text(&plain)
    );
    let (code, plan) = lab.plan_json("1.0.0", &["-refresh"]);
    assert_eq!(code, Some(2), "{plan:#}");
    let change = plan["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["address"] == "deployment.app")
        .unwrap();
    assert_eq!(change["action"], "update", "{change:#}");
    let drift = drift_summaries(change);
    assert_eq!(drift.len(), 2, "{change:#}");
    assert!(
        drift
            .iter()
            .any(|s| s.contains(lab.address(1)) && s.contains("0.9.9-hotfix")),
        "{drift:?}"
    );
    assert!(
        drift
            .iter()
            .any(|s| s.contains(lab.address(2)) && s.contains("no release installed")),
        "{drift:?}"
    );
    assert!(
        drift
            .iter()
            .all(|s| !s.contains(lab.address(0)) && !s.contains(lab.address(3))),
        "only the hosts that run something else drift: {drift:?}"
    );
    let human = lab.plan("1.0.0", &["-refresh"]);
    assert_eq!(human.status.code(), Some(2));
    assert!(
        text(&human).contains(lab.address(1)),
        "the human plan names the host:\n{}",
        text(&human)
    );
}

/// Not a test: starts sshd hosts for `tests/bench/ansible_vs_slipway.sh` and
/// keeps them running while the file `hold` exists in `SLIPWAY_BENCH_DIR` (and,
/// when `SLIPWAY_BENCH_OWNER` names a process id, while that process runs, so
/// that a benchmark killed without cleaning up does not leave sshd servers
/// behind; at most six hours in any case). Writes `hosts.tsv` (index, address,
/// IP, port, root), `ssh.env` (port, identity file, known_hosts file),
/// `servers.tsv` (index, sshd log file, sshd process id) and then `ready` into
/// that directory.
///
/// Opt-in, for a test bed closer to real hosts: `SLIPWAY_BENCH_RC=FILE` makes
/// every session's shell source FILE (`BASH_ENV`, as a real `~/.bashrc` costs
/// each ssh session), and `SLIPWAY_BENCH_LOG_SESSIONS=1` logs a line per
/// session, each with its time, into the sshd logs (see [`HostOptions`]).
#[test]
#[ignore = "benchmark helper, run by tests/bench/ansible_vs_slipway.sh"]
fn bench_hosts() {
    let Some(dir) = std::env::var_os("SLIPWAY_BENCH_DIR").map(PathBuf::from) else {
        eprintln!("note: set SLIPWAY_BENCH_DIR (see tests/bench/ansible_vs_slipway.sh)");
        return;
    };
    let count = std::env::var("SLIPWAY_BENCH_HOSTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(50);
    let options = HostOptions {
        bash_env: std::env::var_os("SLIPWAY_BENCH_RC")
            .filter(|file| !file.is_empty())
            .map(PathBuf::from),
        log_sessions: std::env::var("SLIPWAY_BENCH_LOG_SESSIONS").is_ok_and(|v| v == "1"),
        own_network: false,
    };
    if let Some(file) = &options.bash_env {
        assert!(
            file.is_absolute() && file.is_file(),
            "SLIPWAY_BENCH_RC must name an existing file by its absolute path, not {}",
            file.display()
        );
    }
    let hosts = SshHosts::start_with(count, options).expect("the benchmark needs OpenSSH's sshd");
    let servers: String = (0..hosts.hosts.len())
        .map(|i| {
            format!(
                "{i}\t{}\t{}\n",
                hosts.log_file(i).display(),
                hosts.server_pid(i).unwrap_or(0)
            )
        })
        .collect();
    std::fs::write(dir.join("servers.tsv"), servers).unwrap();
    let mut table = String::new();
    for (i, host) in hosts.hosts.iter().enumerate() {
        let (ip, port) = host.address.split_once(':').unwrap();
        table.push_str(&format!(
            "{i}\t{}\t{ip}\t{port}\t{}\n",
            host.address,
            host.root.display()
        ));
    }
    std::fs::write(dir.join("hosts.tsv"), table).unwrap();
    std::fs::write(
        dir.join("ssh.env"),
        format!(
            "SSH_PORT={}\nIDENTITY_FILE={}\nKNOWN_HOSTS={}\n",
            hosts.port,
            hosts.identity_file().display(),
            hosts.known_hosts().display()
        ),
    )
    .unwrap();
    std::fs::write(dir.join("ready"), "").unwrap();
    let hold = dir.join("hold");
    let owner = std::env::var("SLIPWAY_BENCH_OWNER")
        .ok()
        .filter(|pid| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()))
        .map(|pid| PathBuf::from("/proc").join(pid));
    let owner_runs = || owner.as_ref().is_none_or(|proc_dir| proc_dir.exists());
    let deadline = Instant::now() + Duration::from_secs(6 * 3600);
    while hold.exists() && owner_runs() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// An apply killed (SIGKILL, at a chosen journal step) over SSH: once right
/// after host 1's update finished but before state recorded it, once right
/// after host 2's update was recorded as started. `plan` names the uncertain
/// host; the next apply takes the dead process's lock over, re-checks that
/// host's release marker and finishes the rollout, each host updated once.
#[test]
fn an_apply_killed_mid_rollout_is_reported_by_plan_and_finished_by_apply() {
    use std::os::unix::process::ExitStatusExt;
    let one_at_a_time = "strategy   = \"rolling\"\n  batches    = [1]\n  on_failure = \"rollback\"";
    let Some(lab) = start_lab(3, one_at_a_time) else {
        return;
    };
    let first = lab.apply("1.0.0");
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));

    // Crash points: 3 per host (started; done, not recorded; recorded).
    for (version, point, finished_by_killed) in [
        ("2.0.0", 2_usize, [true, false, false]),
        ("3.0.0", 4, [true, false, false]),
    ] {
        let var = format!("version={version}");
        let killed = lab
            .command(&["apply", ".", "-auto-approve", "-var", &var])
            .env("SLIPWAY_TEST_CRASH_AT", point.to_string())
            .output()
            .unwrap();
        assert_eq!(killed.status.signal(), Some(9), "{}", text(&killed));
        let state = lab.state();
        let killed_id = state.journal[0].apply_id.clone();
        let uncertain: Vec<String> = state
            .uncertain_steps()
            .filter_map(|e| e.host.clone())
            .collect();
        let expected_uncertain = lab.address(point.div_ceil(3) - 1).to_string();
        assert_eq!(
            uncertain,
            std::slice::from_ref(&expected_uncertain),
            "{:?}",
            state.journal
        );

        let plan = lab.plan(version, &[]);
        let plan_text = text(&plan);
        assert_eq!(plan.status.code(), Some(2), "{plan_text}");
        assert!(plan_text.contains("was interrupted"), "{plan_text}");
        assert!(
            plan_text.contains(&format!("reads {expected_uncertain}'s release marker")),
            "{plan_text}"
        );

        let resumed = lab.apply(version);
        let log = text(&resumed);
        assert_eq!(resumed.status.code(), Some(0), "{log}");
        assert!(log.contains("Took over the lock"), "{log}");
        lab.assert_serving(version);
        let state = lab.state();
        assert!(state.journal.is_empty());
        let last = latest_results(&state, 2);
        assert_eq!(last, ["succeeded", "interrupted"]);
        let resume_id = state.history.last().unwrap().apply_id.clone();
        for (i, by_killed) in finished_by_killed.into_iter().enumerate() {
            let expected = if by_killed { &killed_id } else { &resume_id };
            assert_eq!(
                lab.marker(i)["apply_id"].as_str(),
                Some(expected.as_str()),
                "host {i} at point {point}:\n{log}"
            );
            assert_eq!(lab.marker(i)["version"].as_str(), Some(version));
        }
    }
}

/// A terminal's Ctrl-C goes to the whole foreground process group: slipway and
/// every process it started. The ssh connections must outlive it, so that the
/// host in the middle of its update finishes and is recorded; the apply then
/// stops in order and the next one finishes the rollout.
#[test]
fn ctrl_c_to_the_whole_process_group_mid_batch_stops_in_order_and_apply_continues() {
    use std::os::unix::process::CommandExt;
    let two_at_a_time = "strategy   = \"rolling\"\n  batches    = [2]\n  on_failure = \"rollback\"";
    let Some(lab) = start_lab(4, two_at_a_time) else {
        return;
    };
    let first = lab.apply("1.0.0");
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));

    // Host 0 (batch 1) waits in its health check when the Ctrl-C comes.
    lab.hold_health_check(0);
    let mut running = lab
        .command(&["apply", ".", "-auto-approve", "-var", "version=2.0.0"])
        .process_group(0)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    lab.wait_until_held(0, &mut running);
    let group = format!("-{}", running.id());
    let sent = Command::new("kill").args(["-INT", "--", &group]).status();
    lab.release_health_check(0);
    assert!(sent.unwrap().success());
    let (code, log) = finish(running);
    assert_eq!(code, Some(130), "{log}");
    assert!(log.contains("Apply interrupted"), "{log}");

    let backend = LocalBackend::new(lab.root.join(".slipway/state"));
    assert_eq!(
        backend.current_lock(ENVIRONMENT).unwrap(),
        None,
        "lock released"
    );
    let state = lab.state();
    assert!(state.journal.is_empty(), "{:?}", state.journal);
    assert_eq!(
        state.history.last().unwrap().result,
        HistoryResult::Interrupted
    );
    let hosts = &state.deployments["deployment.app"].hosts;
    for i in 0..4 {
        let expected = if i < 2 { "2.0.0" } else { "1.0.0" };
        let record = &hosts[lab.address(i)];
        assert_eq!(
            (record.version.as_str(), record.status),
            (expected, HostStatus::Deployed),
            "host {i}: the batch in flight finished over its ssh connections:\n{log}"
        );
    }

    let resumed = lab.apply("2.0.0");
    let log = text(&resumed);
    assert_eq!(resumed.status.code(), Some(0), "{log}");
    for i in 0..2 {
        assert!(
            !log.contains(&format!("{}: on 2.0.0\n", lab.address(i))),
            "{log}"
        );
    }
    lab.assert_serving("2.0.0");
}

/// The sessions each host's update takes, counted in the hosts' own sshd
/// logs: a regression in round trips shows here. Steps that need nothing
/// from the runner in between share a session, so without a load balancer an
/// update is the checks (ending with whether the artifact is there), the
/// upload, and one session from the stop to the release marker with the
/// health check's attempts on the host; two when the artifact is already
/// there.
#[test]
fn a_host_update_takes_at_most_three_sessions() {
    let Some(lab) = start_lab(3, ROLLING_ROLLBACK) else {
        return;
    };
    // The sessions each host started for an apply of `version`.
    let sessions_of_apply = |version: &str| -> Vec<usize> {
        let before: Vec<usize> = (0..3).map(|i| lab.hosts.sessions(i)).collect();
        let apply = lab.apply(version);
        assert_eq!(apply.status.code(), Some(0), "{}", text(&apply));
        lab.assert_serving(version);
        (0..3).map(|i| lab.hosts.sessions(i) - before[i]).collect()
    };
    assert_eq!(sessions_of_apply("1.0.0"), [3, 3, 3], "fresh install");
    // The fixture's artifact is the same for both versions (the version is
    // a variable of its config file): it is on the hosts, nothing is sent.
    assert_eq!(sessions_of_apply("2.0.0"), [2, 2, 2], "upgrade");
}
