//! Saved plans are the plan, checked on real sshd hosts (`support::ssh_lab`):
//! `apply FILE` executes the saved plan — drift repairs of `plan -refresh`
//! included — with the input values the plan carries (no `-var` typed
//! again but a sensitive one, checked against the plan's digest and never
//! printed), refuses a plan whose state moved on, and `apply -refresh`
//! refreshes, plans and applies in one go. Each test looks at the hosts
//! themselves: where `current` points, the release marker, the config files
//! and what the app answers.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use crate::support::ssh_lab::{Lab, GREETING};
use crate::support::{http_get, text};

/// What the tests of this module observe on a lab.
impl Lab {
    /// slipway in the configuration directory with exactly `args` (no
    /// `-var base_port`: a saved plan carries it).
    fn exactly(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_slipway"))
            .args(args)
            .current_dir(&self.root)
            .stdin(Stdio::null())
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    }

    /// Where host `i`'s `current` points (`releases/VERSION`), or a note.
    fn current_link(&self, i: usize) -> String {
        std::fs::read_link(self.install_dir(i).join("current"))
            .map(|p| p.display().to_string())
            .unwrap_or_else(|e| format!("(no current: {e})"))
    }

    /// Host `i`'s release marker: (version, apply id).
    fn marker_of(&self, i: usize) -> (String, String) {
        let marker: serde_json::Value =
            std::fs::read_to_string(self.install_dir(i).join(".slipway/release.json"))
                .ok()
                .and_then(|t| serde_json::from_str(&t).ok())
                .unwrap_or_default();
        (
            marker["version"].as_str().unwrap_or("").to_string(),
            marker["apply_id"].as_str().unwrap_or("").to_string(),
        )
    }

    /// Repoint host `i`'s `current` at `releases/VERSION` by hand, as an
    /// operator would (the app keeps running until something restarts it).
    fn repoint_current(&self, i: usize, version: &str) {
        let dir = self.install_dir(i);
        let _ = std::fs::remove_file(dir.join("current"));
        std::os::unix::fs::symlink(format!("releases/{version}"), dir.join("current")).unwrap();
    }

    /// Host `i` serves `version`: `current`, marker and the app's answer.
    fn assert_host_serves(&self, i: usize, version: &str) {
        assert_eq!(
            (self.current_link(i), self.marker_of(i).0),
            (format!("releases/{version}"), version.to_string()),
            "host {}",
            self.address(i)
        );
        assert_eq!(
            http_get(self.base_port + i as u16, "/"),
            format!("{GREETING} (version {version}, {})", self.address(i)),
            "what host {} serves",
            self.address(i)
        );
    }

    fn saved_plan_path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }
}

/// The saved plan's JSON, through `slipway show -json`.
fn show(lab: &Lab, file: &str) -> serde_json::Value {
    let shown = lab.exactly(&["show", "-json", file]);
    assert_eq!(shown.status.code(), Some(0), "{}", text(&shown));
    serde_json::from_slice(&shown.stdout).unwrap()
}

/// The hosts of every step of the plan's schedule, in order.
fn scheduled_hosts(plan: &serde_json::Value) -> Vec<Vec<String>> {
    plan["schedule"]["waves"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|w| w["deployments"].as_array().unwrap().clone())
        .flat_map(|d| d["steps"].as_array().unwrap().clone())
        .map(|s| {
            s["hosts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| h.as_str().unwrap().to_string())
                .collect()
        })
        .collect()
}

/// A host changed by hand (`current` repointed at the older release) shows
/// as drift in `plan -refresh -out`; `apply FILE` executes that plan — it
/// updates that host again, and only it — without any `-var`. A plan whose
/// state moved on since is refused and changes nothing; `apply -refresh`
/// finds and repairs the next change by hand in one command.
#[test]
fn a_refreshed_saved_plan_repairs_the_host_changed_by_hand() {
    let Some(lab) = Lab::start(3, "saved-plan-drift-") else {
        return;
    };
    lab.configure(&lab.all_hosts(), "strategy = \"all_at_once\"");
    for version in ["1.0.0", "2.0.0"] {
        let applied = lab.apply(version);
        assert_eq!(applied.status.code(), Some(0), "{}", text(&applied));
    }
    for i in 0..3 {
        lab.assert_host_serves(i, "2.0.0");
    }
    let deployed_by = lab.marker_of(0).1;

    // By hand: host 1 is pointed back at 1.0.0.
    lab.repoint_current(1, "1.0.0");
    let planned = lab.slipway(&[
        "plan",
        ".",
        "-refresh",
        "-var",
        "version=2.0.0",
        "-out",
        "repair.plan",
    ]);
    assert_eq!(planned.status.code(), Some(2), "{}", text(&planned));
    let plan = show(&lab, "repair.plan");
    let reasons = plan["deployments"][0]["reasons"].as_array().unwrap();
    assert!(
        reasons.iter().any(|r| r["kind"] == "drift"
            && r["summary"]
                .as_str()
                .unwrap()
                .contains(&format!("{} runs 1.0.0", lab.address(1)))),
        "{reasons:#?}"
    );
    assert_eq!(
        scheduled_hosts(&plan),
        vec![vec![lab.address(1).to_string()]],
        "the repair updates host 1 only"
    );
    assert_eq!(
        plan["drift"],
        serde_json::json!([{
            "deployment": "deployment.app",
            "host": lab.address(1),
            "found": "release",
            "version": "1.0.0",
        }])
    );

    // Applied with no -var and no -environment: the plan carries them.
    let applied = lab.exactly(&["apply", "repair.plan", "-auto-approve"]);
    let log = text(&applied);
    assert_eq!(applied.status.code(), Some(0), "{log}");
    assert!(!log.contains("Nothing to apply"), "{log}");
    assert!(log.contains("Applying the saved plan repair.plan"), "{log}");
    lab.assert_host_serves(1, "2.0.0");
    assert_ne!(lab.marker_of(1).1, deployed_by, "host 1 was updated again");
    let recorded = &lab.state().deployments["deployment.app"].hosts[lab.address(1)];
    assert_eq!(
        (recorded.version.as_str(), &recorded.status),
        ("2.0.0", &slipway::state::HostStatus::Deployed)
    );
    assert_eq!(
        recorded.previous.as_ref().map(|p| p.version.as_str()),
        Some("1.0.0"),
        "the repair started from what host 1 was found running"
    );
    for i in [0, 2] {
        lab.assert_host_serves(i, "2.0.0");
        assert_eq!(lab.marker_of(i).1, deployed_by, "host {i} was not touched");
    }
    let refreshed = lab.slipway(&["plan", ".", "-refresh", "-var", "version=2.0.0"]);
    assert_eq!(refreshed.status.code(), Some(0), "{}", text(&refreshed));

    // A plan made, then state moves on (an apply repairs host 0 first):
    // the plan is stale and refused before anything changes.
    lab.repoint_current(0, "1.0.0");
    lab.repoint_current(2, "1.0.0");
    let planned = lab.slipway(&[
        "plan",
        ".",
        "-refresh",
        "-var",
        "version=2.0.0",
        "-out",
        "late.plan",
    ]);
    assert_eq!(planned.status.code(), Some(2), "{}", text(&planned));
    let serial_then = lab.state().serial;
    let refreshed = lab.slipway(&[
        "apply",
        ".",
        "-refresh",
        "-auto-approve",
        "-var",
        "version=2.0.0",
    ]);
    let log = text(&refreshed);
    assert_eq!(refreshed.status.code(), Some(0), "{log}");
    assert!(
        log.contains("drift"),
        "apply -refresh shows the drift: {log}"
    );
    for i in 0..3 {
        lab.assert_host_serves(i, "2.0.0");
    }
    let repaired_by = lab.marker_of(0).1;
    assert_eq!(lab.marker_of(2).1, repaired_by, "one apply repaired both");

    let stale = lab.exactly(&["apply", "late.plan", "-auto-approve"]);
    let log = text(&stale);
    assert_eq!(stale.status.code(), Some(1), "{log}");
    assert!(
        log.contains("late.plan is stale")
            && log.contains(&format!(
                "environment lab: state changed since the plan (serial {serial_then} then, {} now)",
                lab.state().serial
            ))
            && log.contains("nothing was changed"),
        "{log}"
    );
    assert_eq!(
        lab.marker_of(0).1,
        repaired_by,
        "the stale plan changed nothing"
    );
    assert!(lab.saved_plan_path("late.plan").exists());
}

/// A sensitive variable the service writes into a config file on the hosts.
const TOKEN: &str = "variable \"token\" {\n  type      = string\n  sensitive = true\n}\n";

/// A saved plan carries its non-sensitive values (`version`, `base_port`);
/// the sensitive `token` must be given again and match the plan's digest.
/// Every refusal says what to pass, never prints a secret, and leaves the
/// hosts untouched; the accepted apply installs exactly the planned values.
#[test]
fn a_saved_plan_carries_its_values_and_checks_the_sensitive_one_again() {
    let Some(lab) = Lab::start(2, "saved-plan-inputs-") else {
        return;
    };
    lab.configure(&lab.all_hosts(), "strategy = \"all_at_once\"");
    std::fs::write(lab.root.join("token.hcl"), TOKEN).unwrap();
    let main = lab.root.join("main.hcl");
    let with_token = std::fs::read_to_string(&main).unwrap().replace(
        "    health \"http\" {",
        "    config_file \"token\" {\n      destination = \"/opt/app/config/token\"\n      content     = var.token\n    }\n\n    health \"http\" {",
    );
    std::fs::write(&main, with_token).unwrap();
    let secret = "first-Secret-4711";

    let planned = lab.slipway(&[
        "plan",
        ".",
        "-var",
        "version=1.0.0",
        "-var",
        &format!("token={secret}"),
        "-out",
        "release.plan",
    ]);
    let log = text(&planned);
    assert_eq!(planned.status.code(), Some(2), "{log}");
    assert!(!log.contains(secret), "{log}");
    assert!(
        log.contains("Apply it with: slipway apply release.plan -var token=... ("),
        "{log}"
    );
    let saved = std::fs::read_to_string(lab.saved_plan_path("release.plan")).unwrap();
    assert!(!saved.contains(secret), "the plan file holds the secret");
    let plan = show(&lab, "release.plan");
    let variables = plan["inputs"]["variables"].as_array().unwrap();
    let by_name = |name: &str| {
        variables
            .iter()
            .find(|v| v["name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(by_name("version")["value"], "1.0.0");
    assert_eq!(by_name("base_port")["value"], lab.base_port);
    assert_eq!(by_name("token")["sensitive"], true);
    assert_eq!(by_name("token")["value"], serde_json::Value::Null);
    assert_eq!(by_name("token")["sha256"].as_str().unwrap().len(), 64);

    let untouched = |lab: &Lab| {
        for i in 0..2 {
            assert!(
                !lab.install_dir(i).join("current").exists(),
                "host {} was changed",
                lab.address(i)
            );
        }
    };
    // The sensitive value not given again: say how to pass it.
    let missing = lab.exactly(&["apply", "release.plan", "-auto-approve"]);
    let log = text(&missing);
    assert_eq!(missing.status.code(), Some(1), "{log}");
    assert!(
        log.contains("variable \"token\" is sensitive")
            && log.contains("-var token=VALUE")
            && log.contains("SLIPWAY_VAR_token")
            && log.contains("nothing was changed"),
        "{log}"
    );
    untouched(&lab);

    // Another value: refused by digest; neither value printed.
    let other = "other-Secret-0815";
    let different = lab.exactly(&[
        "apply",
        "release.plan",
        "-auto-approve",
        "-var",
        &format!("token={other}"),
    ]);
    let log = text(&different);
    assert_eq!(different.status.code(), Some(1), "{log}");
    assert!(
        log.contains("variable \"token\"") && log.contains("digest"),
        "{log}"
    );
    assert!(!log.contains(other) && !log.contains(secret), "{log}");
    untouched(&lab);

    // The same value from the environment, but another version by -var:
    // the plan's value is named, with what to do.
    let mut command = Command::new(env!("CARGO_BIN_EXE_slipway"));
    let retyped = command
        .args([
            "apply",
            "release.plan",
            "-auto-approve",
            "-var",
            "version=1.0.1",
        ])
        .current_dir(&lab.root)
        .stdin(Stdio::null())
        .env("SLIPWAY_VAR_token", secret)
        .output()
        .unwrap();
    let log = text(&retyped);
    assert_eq!(retyped.status.code(), Some(1), "{log}");
    assert!(
        log.contains(
            "variable \"version\": the plan was made with \"1.0.0\", but -var gives \"1.0.1\""
        ) && log.contains("leave it out"),
        "{log}"
    );
    assert!(!log.contains(secret), "{log}");
    untouched(&lab);

    // Another environment selection than the plan's.
    let selected = lab.exactly(&[
        "apply",
        "release.plan",
        "-auto-approve",
        "-environment",
        "elsewhere",
        "-var",
        &format!("token={secret}"),
    ]);
    let log = text(&selected);
    assert_eq!(selected.status.code(), Some(1), "{log}");
    assert!(log.contains("leave out -environment"), "{log}");
    untouched(&lab);

    // The same secret: the plan is applied as made.
    let applied = lab.exactly(&[
        "apply",
        "release.plan",
        "-auto-approve",
        "-var",
        &format!("token={secret}"),
    ]);
    let log = text(&applied);
    assert_eq!(applied.status.code(), Some(0), "{log}");
    assert!(!log.contains(secret), "{log}");
    for i in 0..2 {
        lab.assert_host_serves(i, "1.0.0");
        assert_eq!(
            std::fs::read_to_string(lab.install_dir(i).join("config/token")).unwrap(),
            secret,
            "the token on host {}",
            lab.address(i)
        );
    }

    // Applied once, the plan is stale.
    let again = lab.exactly(&[
        "apply",
        "release.plan",
        "-auto-approve",
        "-var",
        &format!("token={secret}"),
    ]);
    let log = text(&again);
    assert_eq!(again.status.code(), Some(1), "{log}");
    assert!(
        log.contains("release.plan is stale")
            && log.contains("environment lab: the plan was made against empty state"),
        "{log}"
    );
}

// ---------------------------------------------------------------------------
// Messages and exit codes, on the quickstart (local transport)
// ---------------------------------------------------------------------------

use crate::support::quickstart::Quickstart;

/// A plan made with a var file and `-environment` applies without either;
/// another value than the plan's, or `-refresh` with a plan file, is refused
/// with exit 1 and what to do; nothing is deployed by a refusal.
#[test]
fn saved_plan_refusals_say_what_to_pass_or_leave_out() {
    let quickstart = Quickstart::new();
    let vars = quickstart.root.join("release.vars");
    std::fs::write(&vars, "version = \"1.0.1\"\n").unwrap();
    let planned = quickstart.slipway(&[
        "plan",
        ".",
        "-var-file",
        "release.vars",
        "-environment",
        "local",
        "-out",
        "release.plan",
    ]);
    assert_eq!(planned.status.code(), Some(2), "{}", text(&planned));
    std::fs::remove_file(&vars).unwrap();
    let nothing_deployed = |quickstart: &Quickstart| {
        assert!(
            !quickstart.root.join(".slipway/hosts").exists(),
            "a refused apply deployed something"
        );
    };

    let refresh =
        quickstart.slipway_exactly(&["apply", "release.plan", "-auto-approve", "-refresh"]);
    let log = text(&refresh);
    assert_eq!(refresh.status.code(), Some(1), "{log}");
    assert!(
        log.contains("slipway plan -refresh -out release.plan")
            && log.contains("slipway apply -refresh DIR"),
        "{log}"
    );
    nothing_deployed(&quickstart);

    // Another value than the plan's, named with both.
    let unplanned = quickstart.slipway_exactly(&[
        "apply",
        "release.plan",
        "-auto-approve",
        "-var",
        "base_port=1",
    ]);
    let log = text(&unplanned);
    assert_eq!(unplanned.status.code(), Some(1), "{log}");
    assert!(
        log.contains(&format!(
            "variable \"base_port\": the plan was made with {}, but -var gives 1",
            quickstart.base_port
        )),
        "{log}"
    );
    nothing_deployed(&quickstart);

    let applied = quickstart.slipway_exactly(&["apply", "release.plan", "-auto-approve"]);
    assert_eq!(applied.status.code(), Some(0), "{}", text(&applied));
    quickstart.assert_serving("1.0.1");
    assert_eq!(
        quickstart.state().deployments["deployment.hello"].version,
        "1.0.1"
    );
}

/// A variable the plan was made without (its default applied) given at
/// apply is refused; a plan of format 1.0 (no inputs) still applies with the
/// values given again, and says so when they are not.
#[test]
fn a_value_the_plan_lacks_is_refused_and_old_plans_take_values_again() {
    let quickstart = Quickstart::new();
    let planned = quickstart.slipway(&["plan", ".", "-out", "release.plan"]);
    assert_eq!(planned.status.code(), Some(2), "{}", text(&planned));
    let extra = quickstart.slipway_exactly(&[
        "apply",
        "release.plan",
        "-auto-approve",
        "-var",
        "version=1.0.0",
    ]);
    let log = text(&extra);
    assert_eq!(extra.status.code(), Some(1), "{log}");
    assert!(
        log.contains("variable \"version\": the plan was made without a value for it (its default applied), but -var gives one"),
        "{log}"
    );

    // The same plan as format 1.0 wrote it.
    let path = quickstart.root.join("release.plan");
    let mut document: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    document["format_version"] = "1.0".into();
    document.as_object_mut().unwrap().remove("inputs");
    std::fs::write(&path, serde_json::to_string_pretty(&document).unwrap()).unwrap();
    let without = quickstart.slipway_exactly(&["apply", "release.plan", "-auto-approve"]);
    let log = text(&without);
    assert_eq!(without.status.code(), Some(1), "{log}");
    assert!(
        log.contains("is stale") && log.contains("a plan of format 1.0 carries no input values"),
        "{log}"
    );
    let with = quickstart.slipway(&["apply", "release.plan", "-auto-approve"]);
    assert_eq!(with.status.code(), Some(0), "{}", text(&with));
    quickstart.assert_serving("1.0.0");
}

/// The configuration digest counts paths inside the configuration directory
/// relative to it: a plan made in one checkout applies in another.
#[test]
fn a_saved_plan_applies_in_another_checkout() {
    let made_in = Quickstart::new();
    let planned = made_in.slipway(&["plan", ".", "-var", "version=1.0.1", "-out", "release.plan"]);
    assert_eq!(planned.status.code(), Some(2), "{}", text(&planned));
    let elsewhere = tempfile::tempdir().unwrap();
    let checkout = elsewhere.path().join("checkout");
    crate::support::copy_dir(&made_in.root, &checkout);
    // From elsewhere without -dir: say which directory to name.
    let lost = Command::new(env!("CARGO_BIN_EXE_slipway"))
        .args(["apply"])
        .arg(checkout.join("release.plan"))
        .arg("-auto-approve")
        .current_dir(elsewhere.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let log = text(&lost);
    assert_eq!(lost.status.code(), Some(1), "{log}");
    assert!(
        log.contains("holds no configuration (*.hcl)") && log.contains("-dir DIR"),
        "{log}"
    );
    let applied = Command::new(env!("CARGO_BIN_EXE_slipway"))
        .args(["apply", "release.plan", "-auto-approve", "-dir"])
        .arg(&checkout)
        .current_dir(&checkout)
        .stdin(Stdio::null())
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let log = text(&applied);
    assert_eq!(applied.status.code(), Some(0), "{log}");
    let state = slipway::state::LocalBackend::new(checkout.join(".slipway/state"));
    let version = slipway::state::Backend::read(&state, "local")
        .unwrap()
        .expect("state")
        .deployments["deployment.hello"]
        .version
        .clone();
    assert_eq!(version, "1.0.1");
    for port in made_in.base_port..made_in.base_port + 3 {
        assert!(http_get(port, "/").contains("version 1.0.1"), "port {port}");
    }
    // The hosts of that checkout run until its apps are stopped.
    for host in ["host-1", "host-2", "host-3"] {
        let pid = checkout
            .join(".slipway/hosts")
            .join(host)
            .join("opt/hello/run/hello.pid");
        if let Ok(pid) = std::fs::read_to_string(pid) {
            let _ = Command::new("kill").arg(pid.trim()).status();
        }
    }
}
