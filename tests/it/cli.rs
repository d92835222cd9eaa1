//! End-to-end tests of the `slipway` binary: exit codes, what each command
//! prints, flags, saved plans, state commands and locks.
//!
//! Every test that writes (state, plan files, formatting) works on a copy of
//! an example in a temporary directory.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;
use slipway::plan::{saved, Action, Plan, States};
use slipway::state::{Backend, DeploymentState, LocalBackend, State};

// ---------------------------------------------------------------------------
// Running the binary
// ---------------------------------------------------------------------------

/// The binary, run in `cwd`, with no `SLIPWAY_VAR_*` or `NO_COLOR` inherited
/// from the environment that runs the tests.
fn slipway_in(cwd: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_slipway"));
    command.current_dir(cwd);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("SLIPWAY_VAR_") {
            command.env_remove(name);
        }
    }
    command.env_remove("NO_COLOR");
    command
}

#[derive(Debug)]
struct Output {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Output {
    /// stdout and stderr together, for "never printed" checks.
    fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    fn assert_code(&self, code: i32) -> &Output {
        assert_eq!(
            self.code, code,
            "exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }

    fn plan(&self) -> Plan {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not a plan ({e}):\n{}", self.stdout))
    }
}

fn output_of(command: &mut Command) -> Output {
    let output = command.output().expect("the slipway binary runs");
    Output {
        code: output.status.code().expect("exited, not killed"),
        stdout: String::from_utf8(output.stdout).expect("UTF-8 stdout"),
        stderr: String::from_utf8(output.stderr).expect("UTF-8 stderr"),
    }
}

fn run(cwd: &Path, args: &[&str]) -> Output {
    output_of(slipway_in(cwd).args(args))
}

fn run_env(cwd: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut command = slipway_in(cwd);
    command.args(args);
    for (name, value) in env {
        command.env(name, value);
    }
    output_of(&mut command)
}

/// A copy of `examples/NAME` as `<tempdir>/NAME`.
struct Workspace {
    temp: tempfile::TempDir,
    name: &'static str,
}

impl Workspace {
    fn of(name: &'static str) -> Workspace {
        let temp = tempfile::tempdir().expect("a temporary directory");
        copy_dir(&example_dir(name), &temp.path().join(name));
        Workspace { temp, name }
    }

    /// The directory holding the copy; commands run here.
    fn cwd(&self) -> &Path {
        self.temp.path()
    }

    /// The configuration directory, absolute.
    fn dir(&self) -> PathBuf {
        self.temp.path().join(self.name)
    }

    fn run(&self, args: &[&str]) -> Output {
        run(self.cwd(), args)
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.temp.path().join(relative)
    }

    /// Put the states of a fixture directory where the example's backend reads them.
    fn install_states(&self, fixture: &str, state_dir: &str) {
        let target = self.dir().join(state_dir);
        std::fs::create_dir_all(&target).unwrap();
        for entry in std::fs::read_dir(state_fixture_dir(fixture)).unwrap() {
            let path = entry.unwrap().path();
            std::fs::copy(&path, target.join(path.file_name().unwrap())).unwrap();
        }
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        // Never copy state or host directories a local run may have left.
        if name == ".slipway" || name == "state" {
            continue;
        }
        let target = to.join(&name);
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

const QUICKSTART_STATE: &str = ".slipway/state";
const VM_MYAPP_VARS: &str = "vm-myapp/vars/example.vars.hcl";

fn has_ansi(text: &str) -> bool {
    text.contains('\u{1b}')
}

// ---------------------------------------------------------------------------
// Help and version
// ---------------------------------------------------------------------------

/// Every command line whose `--help` must teach with an example.
const COMMANDS_WITH_HELP: &[&[&str]] = &[
    &[],
    &["init"],
    &["validate"],
    &["fmt"],
    &["plan"],
    &["apply"],
    &["show"],
    &["graph"],
    &["output"],
    &["state"],
    &["state", "list"],
    &["state", "show"],
    &["state", "pull"],
    &["state", "push"],
    &["state", "rm"],
    &["state", "history"],
    &["approve"],
    &["reject"],
    &["force-unlock"],
    &["version"],
];

#[test]
fn help_of_every_command_shows_an_example() {
    let root = root();
    for command in COMMANDS_WITH_HELP {
        let mut args = command.to_vec();
        args.push("--help");
        let out = run(&root, &args);
        out.assert_code(0);
        assert!(
            out.stdout.contains("Example"),
            "slipway {} --help has no example:\n{}",
            command.join(" "),
            out.stdout
        );
        assert!(out.stdout.contains("slipway "), "{}", out.stdout);
    }
}

#[test]
fn help_of_version_and_state_shows_an_example() {
    for command in [["version", "--help"], ["state", "--help"]] {
        let out = run(&root(), &command);
        out.assert_code(0);
        assert!(
            out.stdout.contains("Example"),
            "slipway {} has no example:\n{}",
            command.join(" "),
            out.stdout
        );
    }
}

/// Every `slipway ...` line of every `--help` that uses `examples/`, run in a
/// copy of the repository's examples (with the states the `state` examples need).
/// Placeholder files (`-var-file prod.vars.hcl`) are not the examples' and
/// are left out.
#[test]
fn output_prints_the_configuration_outputs_and_never_a_sensitive_one() {
    let work = Workspace::of("quickstart");
    let out = work.run(&["output", "-dir", "quickstart", "-var", "version=1.2.0"]);
    out.assert_code(0);
    assert_eq!(out.stdout, "version = \"1.2.0\"\n");
    let out = work.run(&[
        "output",
        "version",
        "-raw",
        "-dir",
        "quickstart",
        "-var",
        "version=1.2.0",
    ]);
    out.assert_code(0);
    assert_eq!(out.stdout, "1.2.0\n");
    let out = work.run(&["output", "-json", "-dir", "quickstart"]);
    out.assert_code(0);
    let value: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        value,
        serde_json::json!({"version": {"value": "1.0.0", "sensitive": false}})
    );

    // An unknown name, and a directory given where a name goes, say what to do.
    let out = work.run(&["output", "versoin", "-dir", "quickstart"]);
    out.assert_code(1);
    assert!(
        out.stderr.contains("did you mean \"version\""),
        "{}",
        out.stderr
    );
    let out = work.run(&["output", "quickstart"]);
    out.assert_code(1);
    assert!(
        out.stderr.contains("pass -dir quickstart"),
        "{}",
        out.stderr
    );

    // A sensitive output: its value is never printed, in any form.
    std::fs::write(
        work.dir().join("secret.hcl"),
        "variable \"token\" {\n  type      = string\n  sensitive = true\n}\n\noutput \"token\" {\n  value     = var.token\n  sensitive = true\n}\n",
    )
    .unwrap();
    let secret = "s3cr3t-Value-4f9";
    let token = format!("token={secret}");
    for args in [
        &["output", "-dir", "quickstart", "-var", &token][..],
        &["output", "-json", "-dir", "quickstart", "-var", &token],
        &["output", "token", "-dir", "quickstart", "-var", &token],
        &[
            "output",
            "token",
            "-raw",
            "-dir",
            "quickstart",
            "-var",
            &token,
        ],
    ] {
        let out = work.run(args);
        assert!(!out.stdout.contains(secret), "{args:?}: {}", out.stdout);
        assert!(!out.stderr.contains(secret), "{args:?}: {}", out.stderr);
    }
    let out = work.run(&["output", "token", "-dir", "quickstart", "-var", &token]);
    out.assert_code(1);
    assert!(out.stderr.contains("sensitive"), "{}", out.stderr);
    let out = work.run(&["output", "-dir", "quickstart", "-var", &token]);
    assert!(
        out.stdout.contains("token   = (sensitive)"),
        "{}",
        out.stdout
    );
}

#[test]
fn help_examples_that_use_the_examples_work() {
    let temp = tempfile::tempdir().unwrap();
    copy_dir(&root().join("examples"), &temp.path().join("examples"));
    copy_dir(&root().join("modules"), &temp.path().join("modules"));
    let state = temp.path().join("examples/vm-myapp/state");
    std::fs::create_dir_all(&state).unwrap();
    for entry in std::fs::read_dir(state_fixture_dir("vm-myapp-applied")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, state.join(path.file_name().unwrap())).unwrap();
    }
    let mut failures = Vec::new();
    let mut ran = 0;
    for command in COMMANDS_WITH_HELP {
        let mut args = command.to_vec();
        args.push("--help");
        let help = run(temp.path(), &args).stdout;
        for line in help.lines() {
            let line = line.trim();
            let Some(example) = line.strip_prefix("slipway ") else {
                continue;
            };
            // The command alone: no pipes, redirections, `&&` or comments.
            let example = example
                .split(['|', '>', '#'])
                .next()
                .unwrap()
                .split("&&")
                .next()
                .unwrap();
            let words: Vec<&str> = example.split_whitespace().collect();
            let placeholder = words
                .iter()
                .any(|w| w.ends_with(".hcl") && !w.starts_with("examples/"));
            // apply changes the world (it starts the quickstart's servers), and
            // approve and reject need a rollout that waits: tests/apply_local.rs
            // runs them on ports of its own.
            let changes_the_world =
                matches!(words.first(), Some(&("apply" | "approve" | "reject")));
            if !example.contains("examples/") || placeholder || changes_the_world {
                continue;
            }
            let out = run(temp.path(), &words);
            ran += 1;
            if out.code != 0 {
                failures.push(format!("slipway {example}\n{}", out.stderr));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(ran >= 7, "only {ran} help examples use the examples");
}

#[test]
fn help_flags_take_one_dash_or_two() {
    let single = run(&root(), &["plan", "-help"]);
    let double = run(&root(), &["plan", "--help"]);
    single.assert_code(0);
    assert_eq!(single.stdout, double.stdout);
    assert!(
        single.stdout.contains("Usage: slipway plan"),
        "{}",
        single.stdout
    );
}

#[test]
fn version_prints_slipway_and_format_versions() {
    let out = run(&root(), &["version"]);
    out.assert_code(0);
    assert_eq!(
        out.stdout,
        format!(
            "slipway {}\nplan format {}\nstate format {}\n",
            env!("CARGO_PKG_VERSION"),
            slipway::plan::FORMAT_VERSION,
            slipway::state::STATE_VERSION
        )
    );
    for flag in ["--version", "-version"] {
        let out = run(&root(), &[flag]);
        out.assert_code(0);
        assert_eq!(
            out.stdout.trim(),
            format!("slipway {}", env!("CARGO_PKG_VERSION"))
        );
    }
}

// ---------------------------------------------------------------------------
// validate
// ---------------------------------------------------------------------------

#[test]
fn validate_accepts_the_examples() {
    let root = root();
    let cases: [&[&str]; 2] = [
        &["validate", "examples/quickstart"],
        &[
            "validate",
            "examples/vm-myapp",
            "-var-file",
            "examples/vm-myapp/vars/example.vars.hcl",
        ],
    ];
    let ecs = root.join("examples/ecs-workshop");
    let ecs = [
        "validate",
        ecs.to_str().unwrap(),
        "-var",
        "backend_version=1.4.0",
        "-var",
        "frontend_version=1.4.0",
    ];
    for args in cases.into_iter().chain([&ecs[..]]) {
        let out = run(&root, args);
        out.assert_code(0);
        assert!(
            out.stdout.starts_with("The configuration is valid"),
            "{}",
            out.stdout
        );
        // vm-myapp's deploy key is not on this machine: the only diagnostic
        // allowed is the warning that names it.
        let unexpected: Vec<&str> = out
            .stderr
            .lines()
            .filter(|l| l.starts_with("warning[") || l.starts_with("error["))
            .filter(|l| !l.starts_with("warning[identity-file]"))
            .collect();
        assert!(unexpected.is_empty(), "{}", out.stderr);
        assert!(!out.stderr.contains("error"), "{}", out.stderr);
    }
}

/// The README's command, run from the repository root: the module source
/// `../../modules/ecs-web-service` is relative to `examples/ecs-workshop`.
#[test]
fn module_sources_resolve_from_a_relative_configuration_directory() {
    let out = run(
        &example_dir("ecs-workshop"),
        &[
            "validate",
            ".",
            "-var",
            "backend_version=1.4.0",
            "-var",
            "frontend_version=1.4.0",
        ],
    );
    out.assert_code(0);
    let out = run(
        &root(),
        &[
            "validate",
            "examples/ecs-workshop",
            "-var",
            "backend_version=1.4.0",
            "-var",
            "frontend_version=1.4.0",
        ],
    );
    out.assert_code(0);
}

#[test]
fn validate_rejects_an_invalid_configuration_naming_file_line_and_column() {
    let work = Workspace::of("quickstart");
    let main = work.dir().join("main.hcl");
    let text = std::fs::read_to_string(&main).unwrap();
    let (line, column) = position_of(&text, "start_command =");
    std::fs::write(&main, text.replace("start_command =", "start_comand =")).unwrap();

    let out = work.run(&["validate", "quickstart"]);
    out.assert_code(1);
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    assert!(
        out.stderr.contains(&format!(
            "error[unknown-attribute]: quickstart/main.hcl:{line}:{column}"
        )),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("start_command"), "did you mean");
    assert!(out.stderr.contains("1 error; nothing was changed."));
    assert!(!has_ansi(&out.stderr), "{}", out.stderr);
}

/// 1-based line and column of the first occurrence of `needle`.
fn position_of(text: &str, needle: &str) -> (usize, usize) {
    let offset = text.find(needle).expect("needle in text");
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = offset - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, column)
}

#[test]
fn validate_reports_every_error_of_a_run() {
    let out = run(&root(), &["validate", "examples/vm-myapp"]);
    out.assert_code(1);
    for variable in ["version", "artifact_sha256", "db_password"] {
        assert!(
            out.stderr
                .contains(&format!("no value for required variable \"{variable}\"")),
            "{}",
            out.stderr
        );
    }
    assert!(out.stderr.contains("3 errors; nothing was changed."));
}

// ---------------------------------------------------------------------------
// plan: exit codes and views
// ---------------------------------------------------------------------------

#[test]
fn plan_exits_2_when_there_are_changes() {
    let work = Workspace::of("quickstart");
    let out = work.run(&["plan", "quickstart"]);
    out.assert_code(2);
    assert!(out
        .stdout
        .contains("Plan: 1 to create, 0 to update, 0 to destroy."));
    // plan writes nothing: no state directory, no plan file.
    assert!(!work.dir().join(QUICKSTART_STATE).exists());
}

#[test]
fn plan_exits_0_without_changes() {
    let work = Workspace::of("quickstart");
    work.install_states("quickstart-applied", QUICKSTART_STATE);
    let out = work.run(&["plan", "quickstart"]);
    out.assert_code(0);
    assert!(
        out.stdout
            .contains("No changes. Deployments match the configuration and state."),
        "{}",
        out.stdout
    );

    let work = Workspace::of("vm-myapp");
    work.install_states("vm-myapp-applied", "state");
    let out = work.run(&["plan", "vm-myapp", "-var-file", VM_MYAPP_VARS, "-json"]);
    out.assert_code(0);
    let plan = out.plan();
    assert_eq!(plan.summary.no_op, 4);
    assert!(plan.deployments.iter().all(|d| d.action == Action::NoOp));
}

#[test]
fn usage_errors_exit_1_not_the_changes_code() {
    let work = Workspace::of("quickstart");
    // A typo must never read as "changes present" (2) in a CI script.
    for args in [
        &["plan", "quickstart", "-no-such-flag"][..],
        &["plan", "quickstart", "-environment"],
        &["no-such-command"],
        &["apply", "quickstart", "-parallelism", "many"],
    ] {
        let out = work.run(args);
        out.assert_code(1);
        assert!(out.stderr.contains("error:"), "{args:?}: {}", out.stderr);
        assert!(out.stdout.is_empty(), "{args:?}: {}", out.stdout);
    }
    // Help and version are not errors.
    work.run(&["plan", "-help"]).assert_code(0);
    work.run(&["--version"]).assert_code(0);
}

#[test]
fn terraform_habits_are_accepted_by_plan() {
    let work = Workspace::of("quickstart");
    for extra in [
        &["-detailed-exitcode"][..],
        &["-input=false"],
        &["--input", "false"],
        &["-lock-timeout", "30s"],
        &["-detailed-exitcode", "-input=false", "-lock-timeout=5m"],
    ] {
        let mut args = vec!["plan", "quickstart"];
        args.extend_from_slice(extra);
        let out = work.run(&args);
        out.assert_code(2);
        assert!(
            out.stdout.contains("Plan: 1 to create"),
            "{extra:?}: {}",
            out.stdout
        );
    }
    let out = work.run(&["plan", "quickstart", "-lock-timeout", "soon"]);
    out.assert_code(1);
    assert!(out.stderr.contains("soon"), "{}", out.stderr);
}

#[test]
fn apply_with_input_false_never_asks_and_changes_nothing() {
    let work = Workspace::of("quickstart");
    let out = work.run(&["apply", "quickstart", "-input=false"]);
    out.assert_code(1);
    assert!(out.stderr.contains("pass -auto-approve"), "{}", out.stderr);
    // The backend's directory may exist; no state, lock or host was written.
    let state_dir = work.dir().join(QUICKSTART_STATE);
    let written: Vec<_> = std::fs::read_dir(&state_dir)
        .map(|entries| entries.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    assert!(written.is_empty(), "{written:?}");
    assert!(!work.dir().join(".slipway/hosts").exists());
}

#[test]
fn plan_exits_1_on_errors() {
    // An invalid configuration.
    let work = Workspace::of("quickstart");
    std::fs::write(work.dir().join("broken.hcl"), "deployment \"x\" {\n").unwrap();
    let out = work.run(&["plan", "quickstart"]);
    out.assert_code(1);
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    assert!(
        out.stderr.contains("quickstart/broken.hcl:"),
        "{}",
        out.stderr
    );

    // A refused promotion: qa planned without dev, which never ran 2.4.1.
    let work = Workspace::of("vm-myapp");
    let out = work.run(&[
        "plan",
        "vm-myapp",
        "-var-file",
        VM_MYAPP_VARS,
        "-environment",
        "qa",
    ]);
    out.assert_code(1);
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    assert!(out.stderr.contains("error[promotion]"), "{}", out.stderr);
    assert!(
        out.stderr.contains("1 error; nothing was changed."),
        "{}",
        out.stderr
    );
    // The whole pipeline in one plan is no error: each stage is promoted in the apply.
    let out = work.run(&["plan", "vm-myapp", "-var-file", VM_MYAPP_VARS]);
    out.assert_code(2);
    assert!(
        out.stdout
            .contains("promoted when deployment.myapp-dev verifies 2.4.1 in this apply"),
        "{}",
        out.stdout
    );

    // An environment that does not exist.
    let out = work.run(&[
        "plan",
        "vm-myapp",
        "-var-file",
        VM_MYAPP_VARS,
        "-environment",
        "prod",
    ]);
    out.assert_code(1);
    assert!(
        out.stderr
            .contains("-environment prod: no such environment"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("production"), "{}", out.stderr);

    // A state file that is not JSON.
    let work = Workspace::of("quickstart");
    let state = work.dir().join(QUICKSTART_STATE);
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(state.join("local.json"), "{ not json").unwrap();
    let out = work.run(&["plan", "quickstart"]);
    out.assert_code(1);
    assert!(out.stderr.contains("unreadable"), "{}", out.stderr);
}

#[test]
fn plan_environment_filter_plans_only_that_environment() {
    let work = Workspace::of("vm-myapp");
    let out = work.run(&[
        "plan",
        "vm-myapp",
        "-var-file",
        VM_MYAPP_VARS,
        "-environment",
        "dev",
        "-json",
    ]);
    out.assert_code(2);
    let plan = out.plan();
    let addresses: Vec<&str> = plan
        .deployments
        .iter()
        .map(|d| d.address.as_str())
        .collect();
    assert_eq!(addresses, ["deployment.myapp-dev"]);
    assert_eq!(plan.environments.len(), 1);
}

#[test]
fn plan_json_and_markdown_views() {
    let work = Workspace::of("quickstart");
    let json = work.run(&["plan", "quickstart", "-json"]);
    json.assert_code(2);
    let plan = json.plan();
    assert_eq!(plan.format_version, slipway::plan::FORMAT_VERSION);
    assert_eq!(plan.slipway_version, env!("CARGO_PKG_VERSION"));
    assert_eq!(plan.summary.create, 1);
    assert_eq!(plan.deployments[0].address, "deployment.hello");
    assert_eq!(plan.deployments[0].action, Action::Create);
    assert_eq!(plan.environments[0].name, "local");
    assert_eq!(plan.environments[0].state_serial, None);
    assert_eq!(plan.schedule.waves.len(), 1);
    assert_eq!(plan.outputs[0].name, "version");
    assert_eq!(plan.outputs[0].value, "1.0.0");
    // The document is the plan as serde writes it, field for field.
    assert_eq!(json.json(), serde_json::to_value(&plan).unwrap());

    for args in [
        ["plan", "quickstart", "-format", "json"],
        ["plan", "quickstart", "--format", "json"],
    ] {
        assert_eq!(work.run(&args).stdout, json.stdout);
    }

    let markdown = work.run(&["plan", "quickstart", "-markdown"]);
    markdown.assert_code(2);
    assert_eq!(
        markdown.stdout.lines().next(),
        Some("**Plan: 1 to create, 0 to update, 0 to destroy.**")
    );
    assert_eq!(
        work.run(&["plan", "quickstart", "-format", "markdown"])
            .stdout,
        markdown.stdout
    );

    work.install_states("quickstart-applied", QUICKSTART_STATE);
    let markdown = work.run(&["plan", "quickstart", "-markdown"]);
    markdown.assert_code(0);
    assert_eq!(
        markdown.stdout.lines().next(),
        Some("**No changes. Deployments match the configuration and state.**")
    );
}

#[test]
fn plan_refresh_reports_hosts_changed_behind_slipways_back() {
    let work = Workspace::of("quickstart");
    work.install_states("quickstart-applied", QUICKSTART_STATE);
    // The fixture says every host runs 1.0.0. On the hosts themselves, host-1
    // agrees, host-2 was downgraded by hand (its `current` points at 0.9.0,
    // though its marker still says 1.0.0: what runs is what counts) and
    // host-3 has nothing installed.
    let install = |host: &str, current: &str, marker: &str| {
        let dir = work
            .dir()
            .join(".slipway/hosts")
            .join(host)
            .join("opt/hello");
        std::fs::create_dir_all(dir.join(".slipway")).unwrap();
        std::fs::create_dir_all(dir.join("releases").join(current)).unwrap();
        std::os::unix::fs::symlink(format!("releases/{current}"), dir.join("current")).unwrap();
        let text = format!(r#"{{"version":"{marker}","sha256":"x","time":"t","apply_id":"a"}}"#);
        std::fs::write(dir.join(".slipway/release.json"), text).unwrap();
    };
    install("host-1", "1.0.0", "1.0.0");
    install("host-2", "0.9.0", "1.0.0");
    let without = work.run(&["plan", "quickstart"]);
    without.assert_code(0);

    let out = work.run(&["plan", "quickstart", "-refresh", "-json"]);
    out.assert_code(2);
    let plan = out.plan();
    let change = plan.deployment("deployment.hello").expect("planned");
    let drift: Vec<&str> = change
        .reasons
        .iter()
        .filter(|r| r.kind == slipway::plan::ReasonKind::Drift)
        .map(|r| r.summary.as_str())
        .collect();
    assert_eq!(drift.len(), 2, "{drift:?}");
    assert!(drift[0].contains("host-2 runs 0.9.0"), "{drift:?}");
    assert!(drift[1].contains("host-3 has no release"), "{drift:?}");
    let scheduled: Vec<&slipway::plan::StepKind> = plan.schedule.waves[0].deployments[0]
        .steps
        .iter()
        .map(|s| &s.kind)
        .collect();
    assert_eq!(
        scheduled,
        [
            &slipway::plan::StepKind::HostBatch {
                hosts: vec!["host-2".into()]
            },
            &slipway::plan::StepKind::HostBatch {
                hosts: vec!["host-3".into()]
            },
        ],
        "only the drifted hosts are scheduled, in the rollout's batches (1, then the rest)"
    );
}

#[test]
fn output_is_never_coloured_off_a_terminal_or_with_no_color() {
    let work = Workspace::of("quickstart");
    let plan_file = work.path("release.plan");
    let plan_file = plan_file.to_str().unwrap();
    for args in [
        &["plan", "quickstart"][..],
        &["plan", "quickstart", "-no-color"],
        &["plan", "quickstart", "--no-color"],
        &["plan", "quickstart", "-markdown"],
        &["plan", "quickstart", "-out", plan_file],
        &["show", plan_file],
        &["show", plan_file, "-no-color"],
        &["validate", "quickstart"],
        &["graph", "quickstart"],
    ] {
        let out = work.run(args);
        assert!(out.code == 0 || out.code == 2, "{args:?}: {}", out.stderr);
        assert!(!has_ansi(&out.all()), "{args:?}: {}", out.all());
    }
    // Diagnostics on stderr too (a promotion refused for qa alone).
    let work = Workspace::of("vm-myapp");
    for args in [
        &[
            "plan",
            "vm-myapp",
            "-var-file",
            VM_MYAPP_VARS,
            "-environment",
            "qa",
        ][..],
        &[
            "plan",
            "vm-myapp",
            "-var-file",
            VM_MYAPP_VARS,
            "-environment",
            "qa",
            "-no-color",
        ],
        &["validate", "vm-myapp"],
    ] {
        let out = work.run(args);
        out.assert_code(1);
        assert!(!has_ansi(&out.stderr), "{args:?}: {}", out.stderr);
    }
    // NO_COLOR is respected as well.
    let out = run_env(work.cwd(), &[("NO_COLOR", "1")], &["validate", "vm-myapp"]);
    assert!(!has_ansi(&out.stderr));
}

// ---------------------------------------------------------------------------
// Saved plans
// ---------------------------------------------------------------------------

#[test]
fn plan_out_then_show_renders_the_same_plan() {
    let work = Workspace::of("vm-myapp");
    work.install_states("vm-myapp-drifted", "state");
    let file = work.path("release.plan");
    let file_arg = file.to_str().unwrap();

    let human = work.run(&[
        "plan",
        "vm-myapp",
        "-var-file",
        VM_MYAPP_VARS,
        "-out",
        file_arg,
    ]);
    human.assert_code(2);
    assert!(
        human.stderr.contains("Saved the plan to") && human.stderr.contains("slipway show"),
        "{}",
        human.stderr
    );
    assert!(file.is_file());

    let show = work.run(&["show", file_arg]);
    show.assert_code(0);
    assert_eq!(show.stdout, human.stdout);

    let show_json = work.run(&["show", file_arg, "-json"]);
    show_json.assert_code(0);
    assert_eq!(show_json.stdout, std::fs::read_to_string(&file).unwrap());
    let plan_json = work.run(&["plan", "vm-myapp", "-var-file", VM_MYAPP_VARS, "-json"]);
    assert_eq!(show_json.stdout, plan_json.stdout);

    let plan = show_json.plan();
    assert_eq!(plan, saved::read(&file).unwrap());
    assert_eq!(plan.summary.update, 2);
    assert_eq!(plan.summary.no_op, 2);
    let production = plan.deployment("deployment.myapp-production").unwrap();
    assert_eq!(production.version_before.as_deref(), Some("2.4.0"));
    assert_eq!(production.version_after.as_deref(), Some("2.4.1"));
    let basis: Vec<(&str, Option<u64>)> = plan
        .environments
        .iter()
        .map(|e| (e.name.as_str(), e.state_serial))
        .collect();
    assert_eq!(
        basis,
        [
            ("dev", Some(3)),
            ("production", Some(3)),
            ("qa", Some(3)),
            ("staging", Some(3))
        ]
    );
    assert_eq!(
        plan.environments[0].state_lineage.as_deref(),
        Some(fixture_lineage("dev").as_str())
    );

    let show_markdown = work.run(&["show", file_arg, "-markdown"]);
    show_markdown.assert_code(0);
    assert_eq!(
        show_markdown.stdout.lines().next(),
        Some("**Plan: 0 to create, 2 to update, 0 to destroy.**")
    );
}

#[test]
fn show_rejects_a_file_that_is_not_a_plan() {
    let work = Workspace::of("quickstart");
    let file = work.path("not.plan");
    std::fs::write(&file, "{\"hello\": 1}").unwrap();
    let out = work.run(&["show", file.to_str().unwrap()]);
    out.assert_code(1);
    assert!(
        out.stderr.contains("is not a slipway plan"),
        "{}",
        out.stderr
    );
    let out = work.run(&["show", work.path("missing.plan").to_str().unwrap()]);
    out.assert_code(1);
    assert!(
        out.stderr.contains("cannot read plan file"),
        "{}",
        out.stderr
    );
}

/// The digest and states apply would compare a saved plan with.
fn current_basis(dir: &Path, vars: &[&str], state_dir: &Path) -> (String, States) {
    let config = load_config(dir, vars, &[]);
    let backend = LocalBackend::new(state_dir);
    let mut states = States::new();
    for name in environment_names(&config)
        .into_iter()
        .chain(backend.environments().unwrap())
    {
        let state = backend.read(&name).unwrap();
        states.insert(name, state);
    }
    (config.digest, states)
}

#[test]
fn saved_plan_is_stale_after_state_changes() {
    let work = Workspace::of("quickstart");
    let dir = work.dir();
    let state_dir = dir.join(QUICKSTART_STATE);
    let file = work.path("release.plan");
    let dir_arg = dir.to_str().unwrap();
    let file_arg = file.to_str().unwrap();

    work.run(&["plan", dir_arg, "-out", file_arg])
        .assert_code(2);
    let plan = saved::read(&file).unwrap();
    let (digest, states) = current_basis(&dir, &[], &state_dir);
    assert_eq!(
        saved::check_fresh(&plan, &digest, &states),
        Vec::<String>::new()
    );

    // Someone applies: state now exists.
    let backend = LocalBackend::new(&state_dir);
    let mut state = applied_state(&quickstart(&[]), "local");
    backend.write(&mut state).unwrap();
    let (digest, states) = current_basis(&dir, &[], &state_dir);
    let problems = saved::check_fresh(&plan, &digest, &states);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("empty state"), "{problems:?}");

    // A plan against that state goes stale when the state is written again.
    work.run(&["plan", dir_arg, "-out", file_arg])
        .assert_code(0);
    let plan = saved::read(&file).unwrap();
    assert_eq!(plan.environments[0].state_serial, Some(state.serial));
    let (digest, states) = current_basis(&dir, &[], &state_dir);
    assert!(saved::check_fresh(&plan, &digest, &states).is_empty());
    backend.write(&mut state).unwrap();
    let (digest, states) = current_basis(&dir, &[], &state_dir);
    let problems = saved::check_fresh(&plan, &digest, &states);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].contains(&format!(
            "serial {} then, {} now",
            state.serial - 1,
            state.serial
        )),
        "{problems:?}"
    );

    // A different state (new lineage) in its place.
    let mut replaced = State::new("local");
    backend.write(&mut replaced).unwrap();
    let (digest, states) = current_basis(&dir, &[], &state_dir);
    let problems = saved::check_fresh(&plan, &digest, &states);
    assert!(problems[0].contains("lineage"), "{problems:?}");
}

#[test]
fn saved_plan_is_stale_after_configuration_or_input_changes() {
    let work = Workspace::of("quickstart");
    let dir = work.dir();
    let state_dir = dir.join(QUICKSTART_STATE);
    let file = work.path("release.plan");
    let dir_arg = dir.to_str().unwrap();
    let file_arg = file.to_str().unwrap();

    work.run(&["plan", dir_arg, "-out", file_arg])
        .assert_code(2);
    let plan = saved::read(&file).unwrap();
    let (digest, states) = current_basis(&dir, &[], &state_dir);
    assert!(saved::check_fresh(&plan, &digest, &states).is_empty());

    // Other input values.
    let (digest, states) = current_basis(&dir, &["version=1.0.1"], &state_dir);
    let problems = saved::check_fresh(&plan, &digest, &states);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("configuration"), "{problems:?}");

    // An edited file.
    let main = dir.join("main.hcl");
    let text = std::fs::read_to_string(&main).unwrap();
    std::fs::write(
        &main,
        text.replace("Hello from slipway", "Hello again from slipway"),
    )
    .unwrap();
    let (digest, states) = current_basis(&dir, &[], &state_dir);
    let problems = saved::check_fresh(&plan, &digest, &states);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("configuration"), "{problems:?}");
}

// ---------------------------------------------------------------------------
// Input variables and flags
// ---------------------------------------------------------------------------

/// The `version` output of the quickstart plan, as JSON.
fn quickstart_version(work: &Workspace, env: &[(&str, &str)], args: &[&str]) -> String {
    let mut all = vec!["plan", "quickstart", "-json"];
    all.extend_from_slice(args);
    let out = run_env(work.cwd(), env, &all);
    out.assert_code(2);
    let plan = out.plan();
    let output = plan
        .outputs
        .iter()
        .find(|o| o.name == "version")
        .expect("the version output");
    output.value.as_str().expect("a string").to_string()
}

#[test]
fn variable_precedence_environment_then_var_files_then_var_flags() {
    let work = Workspace::of("quickstart");
    std::fs::write(work.path("one.vars.hcl"), "version = \"from-file-1\"\n").unwrap();
    std::fs::write(work.path("two.vars.hcl"), "version = \"from-file-2\"\n").unwrap();
    let env = [("SLIPWAY_VAR_version", "from-env")];

    assert_eq!(quickstart_version(&work, &[], &[]), "1.0.0");
    assert_eq!(quickstart_version(&work, &env, &[]), "from-env");
    assert_eq!(
        quickstart_version(&work, &env, &["-var-file", "one.vars.hcl"]),
        "from-file-1"
    );
    assert_eq!(
        quickstart_version(
            &work,
            &env,
            &["-var-file", "one.vars.hcl", "-var-file", "two.vars.hcl"]
        ),
        "from-file-2"
    );
    assert_eq!(
        quickstart_version(
            &work,
            &env,
            &["-var-file", "one.vars.hcl", "-var", "version=from-flag"]
        ),
        "from-flag"
    );
    // Precedence is by source, not by position on the command line.
    assert_eq!(
        quickstart_version(
            &work,
            &env,
            &["-var", "version=from-flag", "-var-file", "two.vars.hcl"]
        ),
        "from-flag"
    );
    assert_eq!(
        quickstart_version(
            &work,
            &[],
            &["-var", "version=first", "-var", "version=last"]
        ),
        "last"
    );
}

#[test]
fn flags_take_one_dash_or_two() {
    let work = Workspace::of("quickstart");
    let single = work.run(&[
        "plan",
        "quickstart",
        "-json",
        "-var",
        "version=1.2.3",
        "-environment",
        "local",
    ]);
    single.assert_code(2);
    assert_eq!(single.plan().outputs[0].value, "1.2.3");
    for args in [
        &[
            "plan",
            "quickstart",
            "--json",
            "--var",
            "version=1.2.3",
            "--environment",
            "local",
        ][..],
        &[
            "plan",
            "quickstart",
            "-json",
            "-var=version=1.2.3",
            "-environment=local",
        ],
        &[
            "plan",
            "quickstart",
            "--json",
            "--var=version=1.2.3",
            "--environment=local",
        ],
        &[
            "plan",
            "quickstart",
            "-format=json",
            "-var",
            "version=1.2.3",
            "-environment",
            "local",
        ],
    ] {
        let out = work.run(args);
        out.assert_code(2);
        assert_eq!(out.stdout, single.stdout, "{args:?}");
    }

    std::fs::write(work.path("v.vars.hcl"), "version = \"9.9.9\"\n").unwrap();
    for flag in ["-var-file", "--var-file"] {
        let out = work.run(&["plan", "quickstart", "-json", flag, "v.vars.hcl"]);
        assert_eq!(out.plan().outputs[0].value, "9.9.9", "{flag}");
    }

    for flag in ["-out", "--out"] {
        let file = work.path(&format!("{flag}.plan"));
        work.run(&["plan", "quickstart", flag, file.to_str().unwrap()])
            .assert_code(2);
        assert!(file.is_file(), "{flag}");
    }
    let plan_file = work.path("-out.plan");
    for flag in ["-json", "--json"] {
        let out = work.run(&["show", plan_file.to_str().unwrap(), flag]);
        out.assert_code(0);
        out.plan();
    }
}

// ---------------------------------------------------------------------------
// graph, fmt, init
// ---------------------------------------------------------------------------

#[test]
fn graph_prints_dot_with_the_dependency_edges() {
    let out = run(
        &root(),
        &[
            "graph",
            "examples/vm-myapp",
            "-var-file",
            "examples/vm-myapp/vars/example.vars.hcl",
        ],
    );
    out.assert_code(0);
    assert!(
        out.stdout.starts_with("digraph slipway {"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.trim_end().ends_with('}'), "{}", out.stdout);
    for (from, to) in [("dev", "qa"), ("qa", "staging"), ("staging", "production")] {
        let edge = format!("\"deployment.myapp-{from}\" -> \"deployment.myapp-{to}\"");
        assert!(out.stdout.contains(&edge), "{edge}\n{}", out.stdout);
    }
    assert_eq!(out.stdout.matches(" -> ").count(), 3, "{}", out.stdout);

    let ecs = root().join("examples/ecs-workshop");
    let out = run(
        &root(),
        &[
            "graph",
            ecs.to_str().unwrap(),
            "-var",
            "backend_version=1.4.0",
            "-var",
            "frontend_version=1.4.0",
        ],
    );
    out.assert_code(0);
    for edge in [
        "\"deployment.backend-dev\" -> \"deployment.frontend-dev\";",
        "\"deployment.backend-prod\" -> \"deployment.frontend-prod\";",
        "\"deployment.backend-dev\" -> \"deployment.backend-prod\" [style = dashed, label = \"promote\"];",
        "\"deployment.frontend-dev\" -> \"deployment.frontend-prod\" [style = dashed, label = \"promote\"];",
    ] {
        assert!(out.stdout.contains(edge), "{edge}\n{}", out.stdout);
    }
}

#[test]
fn fmt_check_exits_3_on_an_unformatted_file_and_0_after_fmt() {
    let work = Workspace::of("quickstart");
    let main = work.dir().join("main.hcl");
    let canonical = std::fs::read_to_string(&main).unwrap();
    let messy = canonical
        .replace("  version = var.version", "version=var.version")
        .replace("    install_dir = ", "      install_dir   =   ");
    assert_ne!(messy, canonical);
    std::fs::write(&main, &messy).unwrap();

    for check in ["-check", "--check"] {
        let out = work.run(&["fmt", check, "quickstart"]);
        out.assert_code(3);
        assert_eq!(out.stdout.trim(), "quickstart/main.hcl");
        assert_eq!(
            std::fs::read_to_string(&main).unwrap(),
            messy,
            "-check writes nothing"
        );
    }

    let out = work.run(&["fmt", "quickstart"]);
    out.assert_code(0);
    assert_eq!(out.stdout.trim(), "quickstart/main.hcl");
    assert_eq!(std::fs::read_to_string(&main).unwrap(), canonical);

    let out = work.run(&["fmt", "-check", "quickstart"]);
    out.assert_code(0);
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    work.run(&["validate", "quickstart"]).assert_code(0);
}

#[test]
fn fmt_check_accepts_the_examples_and_modules() {
    for dir in ["examples", "modules"] {
        let out = run(&root(), &["fmt", "-check", "-recursive", dir]);
        out.assert_code(0);
        assert!(out.stdout.is_empty(), "not formatted:\n{}", out.stdout);
    }
}

#[test]
fn fmt_exits_1_on_a_file_that_does_not_parse() {
    let temp = tempfile::tempdir().unwrap();
    std::fs::write(temp.path().join("bad.hcl"), "service \"x\" {\n").unwrap();
    let out = run(temp.path(), &["fmt", "-check", "."]);
    out.assert_code(1);
    assert!(out.stderr.contains("bad.hcl"), "{}", out.stderr);
}

#[test]
fn init_creates_the_state_directory() {
    let work = Workspace::of("quickstart");
    let state_dir = work.dir().join(QUICKSTART_STATE);
    assert!(!state_dir.exists());
    let out = work.run(&["init", "quickstart"]);
    out.assert_code(0);
    assert!(state_dir.is_dir());
    assert!(out.stdout.contains("local: no state yet"), "{}", out.stdout);
    assert!(
        out.stdout
            .contains("slipway is ready. Next: slipway plan quickstart"),
        "{}",
        out.stdout
    );

    work.install_states("quickstart-applied", QUICKSTART_STATE);
    let out = work.run(&["init", "quickstart"]);
    out.assert_code(0);
    assert!(
        out.stdout.contains(&format!(
            "local: serial 3, lineage {}",
            fixture_lineage("local")
        )),
        "{}",
        out.stdout
    );

    // An invalid configuration: no state directory.
    let work = Workspace::of("vm-myapp");
    work.run(&["init", "vm-myapp"]).assert_code(1);
    assert!(!work.dir().join("state").exists());
}

// ---------------------------------------------------------------------------
// state and force-unlock
// ---------------------------------------------------------------------------

#[test]
fn state_list_and_show() {
    let work = Workspace::of("vm-myapp");
    work.install_states("vm-myapp-removed", "state");

    let out = work.run(&["state", "list", "vm-myapp"]);
    out.assert_code(0);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines,
        [
            "deployment.myapp-dev\tdev\t2.4.1\tdeployed",
            "deployment.reports-dev\tdev\t0.9.3\tdeployed",
            "deployment.myapp-production\tproduction\t2.4.1\tdeployed",
            "deployment.myapp-qa\tqa\t2.4.1\tdeployed",
            "deployment.myapp-sandbox\tsandbox\t2.4.1\tdeployed",
            "deployment.myapp-staging\tstaging\t2.4.1\tdeployed",
        ]
    );
    let out = work.run(&["state", "list", "vm-myapp", "-environment", "dev"]);
    out.assert_code(0);
    assert_eq!(out.stdout.lines().count(), 2, "{}", out.stdout);

    let out = work.run(&["state", "show", "deployment.myapp-production", "vm-myapp"]);
    out.assert_code(0);
    assert!(
        out.stdout
            .starts_with("# deployment.myapp-production (environment production, state serial 3)"),
        "{}",
        out.stdout
    );
    for expected in [
        "service      service.myapp",
        "version      2.4.1",
        &format!("artifact     sha256:{SHA_2_4_1}"),
        "rollout      rollout.canary-with-verification",
        "host prod-vm-10.internal: 2.4.1 Deployed at 2024-05-02T09:30:00Z",
        "config file  /opt/myapp/config/app.properties",
    ] {
        assert!(out.stdout.contains(expected), "{expected}\n{}", out.stdout);
    }

    let out = work.run(&[
        "state",
        "show",
        "deployment.myapp-production",
        "vm-myapp",
        "-json",
    ]);
    out.assert_code(0);
    let shown: DeploymentState = serde_json::from_str(&out.stdout).unwrap();
    let fixture = read_state_dir(&state_fixture_dir("vm-myapp-removed"));
    let recorded =
        &fixture["production"].as_ref().unwrap().deployments["deployment.myapp-production"];
    assert_eq!(&shown, recorded);

    let out = work.run(&["state", "show", "deployment.nope", "vm-myapp"]);
    out.assert_code(1);
    assert!(
        out.stderr.contains(
            "deployment.nope is not in state; list what is tracked with: slipway state list"
        ),
        "{}",
        out.stderr
    );
}

#[test]
fn state_list_reads_the_backend_of_the_quickstart() {
    let work = Workspace::of("quickstart");
    work.install_states("quickstart-partial", QUICKSTART_STATE);
    let out = work.run(&["state", "list", "quickstart"]);
    out.assert_code(0);
    assert_eq!(out.stdout, "deployment.hello\tlocal\t1.0.0\tpartial\n");
}

#[test]
fn state_list_finds_state_of_a_configuration_with_required_variables() {
    let work = Workspace::of("vm-myapp");
    let main = work.dir().join("main.hcl");
    let text = std::fs::read_to_string(&main).unwrap();
    std::fs::write(
        &main,
        text.replace("path = \"state\"", "path = \"saved-state\""),
    )
    .unwrap();
    work.install_states("vm-myapp-applied", "saved-state");
    let out = work.run(&["state", "list", "vm-myapp"]);
    out.assert_code(0);
    assert_eq!(out.stdout.lines().count(), 4, "{}", out.all());
}

#[test]
fn force_unlock_removes_only_the_lock_with_the_right_id() {
    let work = Workspace::of("vm-myapp");
    work.install_states("vm-myapp-applied", "state");
    let backend = LocalBackend::new(work.dir().join("state"));
    let guard = backend.lock("dev", "apply").unwrap();
    let id = guard.info().id.clone();
    // The holder is "gone": its lock stays behind.
    std::mem::forget(guard);
    let lock_file = backend.lock_path("dev").unwrap();
    assert!(lock_file.is_file());

    let out = work.run(&["force-unlock", "not-the-id", "vm-myapp"]);
    out.assert_code(1);
    assert!(
        out.stderr
            .contains("no environment is locked with id not-the-id"),
        "{}",
        out.stderr
    );
    let out = work.run(&[
        "force-unlock",
        "not-the-id",
        "vm-myapp",
        "-environment",
        "dev",
    ]);
    out.assert_code(1);
    assert!(
        out.stderr.contains(&id),
        "names the actual id: {}",
        out.stderr
    );
    assert!(
        out.stderr.contains("nothing was unlocked"),
        "{}",
        out.stderr
    );
    assert!(lock_file.is_file());
    assert_eq!(backend.current_lock("dev").unwrap().unwrap().id, id);

    let out = work.run(&["force-unlock", &id, "vm-myapp"]);
    out.assert_code(0);
    assert_eq!(
        out.stdout,
        format!("Removed lock {id} of environment dev.\n")
    );
    assert!(!lock_file.exists());
    assert_eq!(backend.current_lock("dev").unwrap(), None);
    // The state itself is untouched.
    assert_eq!(backend.read("dev").unwrap().unwrap().serial, 3);

    // Nothing left to unlock.
    let out = work.run(&["force-unlock", &id, "vm-myapp", "-environment", "dev"]);
    out.assert_code(1);
    assert!(out.stderr.contains("not locked"), "{}", out.stderr);
}

#[test]
fn force_unlock_with_environment_works_before_any_state_exists() {
    let work = Workspace::of("quickstart");
    let backend = LocalBackend::new(work.dir().join(QUICKSTART_STATE));
    let guard = backend.lock("local", "apply").unwrap();
    let id = guard.info().id.clone();
    std::mem::forget(guard);
    let out = work.run(&["force-unlock", &id, "quickstart", "-environment", "local"]);
    out.assert_code(0);
    assert_eq!(backend.current_lock("local").unwrap(), None);
}

// ---------------------------------------------------------------------------
// Sensitive values
// ---------------------------------------------------------------------------

const SECRET: &str = "Zq8-correct-horse-battery-staple";

/// vm-myapp with a var file that sets everything but the password.
fn vm_myapp_without_password() -> Workspace {
    let work = Workspace::of("vm-myapp");
    std::fs::write(
        work.path("release.vars.hcl"),
        format!("version         = \"2.4.1\"\nartifact_sha256 = \"{SHA_2_4_1}\"\n"),
    )
    .unwrap();
    work
}

#[test]
fn a_sensitive_value_is_never_printed() {
    let work = vm_myapp_without_password();
    work.install_states("vm-myapp-drifted", "state");
    let file = work.path("release.plan");
    let file_arg = file.to_str().unwrap();
    let base = ["vm-myapp", "-var-file", "release.vars.hcl"];
    let with = |command: &str, extra: &[&'static str]| -> Vec<String> {
        let mut args = vec![command.to_string()];
        args.extend(base.iter().map(|s| s.to_string()));
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };
    let password_flag = format!("db_password={SECRET}");
    let mut checked = 0;
    let mut masked_diff_seen = false;
    for (env, flag) in [(Some(SECRET), None), (None, Some(password_flag.as_str()))] {
        for mut args in [
            with("validate", &[]),
            with("graph", &[]),
            with("plan", &[]),
            with("plan", &["-json"]),
            with("plan", &["-markdown"]),
            with("plan", &["-environment", "staging"]),
            with("plan", &["-out", "release.plan"]),
        ] {
            if let Some(flag) = flag {
                args.push("-var".into());
                args.push(flag.to_string());
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let env: Vec<(&str, &str)> = env
                .map(|secret| vec![("SLIPWAY_VAR_db_password", secret)])
                .unwrap_or_default();
            let out = run_env(work.cwd(), &env, &args);
            assert!(out.code == 0 || out.code == 2, "{args:?}: {}", out.all());
            assert!(!out.all().contains(SECRET), "{args:?} printed the password");
            masked_diff_seen |= out.stdout.contains("db.password=(sensitive)");
            checked += 1;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(!text.contains(SECRET), "the plan file holds the password");
        for show in [
            &["show", file_arg][..],
            &["show", file_arg, "-json"],
            &["show", file_arg, "-markdown"],
        ] {
            let out = work.run(show);
            out.assert_code(0);
            assert!(!out.all().contains(SECRET));
        }
    }
    assert_eq!(checked, 14);
    assert!(
        masked_diff_seen,
        "the config-file diff shows the masked line"
    );

    // Errors do not show it either: a refused promotion, a failed validation.
    let short = "short-pw-11";
    let out = work.run(&[
        "plan",
        "vm-myapp",
        "-var-file",
        "release.vars.hcl",
        "-var",
        &format!("db_password={short}"),
    ]);
    out.assert_code(1);
    assert!(
        out.stderr
            .contains("db_password must be at least 12 characters"),
        "{}",
        out.stderr
    );
    assert!(!out.all().contains(short), "{}", out.all());

    let fresh = vm_myapp_without_password();
    let out = run_env(
        fresh.cwd(),
        &[("SLIPWAY_VAR_db_password", SECRET)],
        &[
            "plan",
            "vm-myapp",
            "-var-file",
            "release.vars.hcl",
            "-environment",
            "production",
        ],
    );
    out.assert_code(1);
    assert!(out.stderr.contains("error[promotion]"), "{}", out.stderr);
    assert!(!out.all().contains(SECRET));
}

#[test]
fn a_sensitive_output_is_null_in_the_plan() {
    let temp = tempfile::tempdir().unwrap();
    std::fs::write(
        temp.path().join("main.hcl"),
        r#"variable "token" {
  type      = string
  sensitive = true
}

service "api" {
  version = "1.0.0"

  vm {
    install_dir   = "/opt/api"
    start_command = "bin/start"

    config_file "token" {
      destination = "/opt/api/token.env"
      content     = "TOKEN=${var.token}\n"
    }
  }
}

environment "prod" {
  vm_hosts {
    hosts = ["api-1.internal"]
  }
}

deployment "api" {
  service     = service.api
  environment = environment.prod
}

output "token" {
  value     = var.token
  sensitive = true
}
"#,
    )
    .unwrap();
    let token = format!("token={SECRET}");
    let json = run(temp.path(), &["plan", ".", "-json", "-var", &token]);
    json.assert_code(2);
    let plan = json.plan();
    assert_eq!(plan.outputs[0].name, "token");
    assert!(plan.outputs[0].sensitive);
    assert!(plan.outputs[0].value.is_null());
    let human = run(temp.path(), &["plan", ".", "-var", &token]);
    human.assert_code(2);
    assert!(human.stdout.contains("(sensitive)"), "{}", human.stdout);
    for out in [&json, &human] {
        assert!(!out.all().contains(SECRET), "{}", out.all());
    }
}
