//! Hostile values and planted links, end to end through the real binary:
//! values that would change the structure of what slipway generates are
//! refused at validate time with a location and run nothing; symbolic links
//! planted on a host are never written or deleted through.
//!
//! Every test compares a directory outside the allowed ones before and after.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::support::quickstart::Quickstart;
use crate::support::text;

/// Everything under `dir`: relative path → what it is (file content, link
/// target, or a directory), links not followed.
fn tree(dir: &Path) -> BTreeMap<PathBuf, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let relative = path.strip_prefix(root).unwrap().to_path_buf();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&path).unwrap();
                out.insert(relative, format!("link -> {}", target.display()));
            } else if meta.is_dir() {
                out.insert(relative, "dir".into());
                walk(root, &path, out);
            } else {
                let content = std::fs::read(&path).unwrap();
                out.insert(
                    relative,
                    format!("file {}", String::from_utf8_lossy(&content)),
                );
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// A directory outside every host, with files worth keeping.
fn outside() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("victim.txt"), "precious\n").unwrap();
    std::fs::create_dir(dir.path().join("keep")).unwrap();
    std::fs::write(dir.path().join("keep/data.txt"), "keep me\n").unwrap();
    dir
}

fn symlink(target: &Path, link: &Path) {
    std::fs::create_dir_all(link.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(target, link).unwrap();
}

// ---------------------------------------------------------------------------
// Values that would change what is generated
// ---------------------------------------------------------------------------

const SSH_CONFIG: &str = r#"
variable "bastion" { type = string }

service "app" {
  version = "1.0.0"
  vm { install_dir = "/opt/app" }
}

environment "prod" {
  vm_hosts {
    hosts   = ["127.0.0.1"]
    bastion = var.bastion
  }
}

deployment "app" {
  service     = service.app
  environment = environment.prod
}
"#;

fn slipway(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_slipway"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn a_bastion_that_would_add_ssh_config_lines_is_refused_at_validate_and_runs_nothing() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("config");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("main.hcl"), SSH_CONFIG).unwrap();
    let marker = work.path().join("x");
    let hostile = format!("jump\nProxyCommand touch {}; nc %h %p", marker.display());
    let escaped = hostile.replace('\\', "\\\\").replace('\n', "\\n");
    std::fs::write(
        work.path().join("vars.hcl"),
        format!("bastion = \"{escaped}\"\n"),
    )
    .unwrap();
    let var_file = work.path().join("vars.hcl");
    let var_file = var_file.to_str().unwrap();
    let flag = format!("bastion={hostile}");

    // The same value through each way a value comes in, and each command.
    type Run<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>);
    let runs: Vec<Run> = vec![
        (vec!["validate", ".", "-var", &flag], vec![]),
        (vec!["plan", ".", "-var-file", var_file], vec![]),
        (
            vec!["apply", ".", "-auto-approve"],
            vec![("SLIPWAY_VAR_bastion", hostile.as_str())],
        ),
    ];
    for (args, env) in runs {
        let output = slipway(&dir, &args, &env);
        let log = text(&output);
        assert_eq!(output.status.code(), Some(1), "{args:?} is refused:\n{log}");
        assert!(
            log.contains("main.hcl:") && log.contains("\"bastion\""),
            "{args:?}: the error points at the bastion attribute:\n{log}"
        );
        assert!(!marker.exists(), "{args:?} ran the ProxyCommand:\n{log}");
        assert!(
            !dir.join("state").exists(),
            "{args:?} wrote state for a refused configuration"
        );
    }
}

#[test]
fn a_unit_value_that_would_add_a_directive_is_refused_or_stays_inside_its_value() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("config");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(
        dir.join("main.hcl"),
        r#"
variable "user" { type = string }
variable "greeting" { type = string }

service "app" {
  version = "1.0.0"
  vm {
    install_dir = "/opt/app"
    systemd_unit "app.service" {
      exec_start  = "/opt/app/current/bin/run"
      user        = var.user
      environment = { GREETING = var.greeting }
    }
  }
}

environment "prod" {
  vm_hosts { hosts = ["127.0.0.1"] }
}

deployment "app" {
  service     = service.app
  environment = environment.prod
}
"#,
    )
    .unwrap();
    let injected = "x\nExecStartPre=/bin/touch /tmp/pwned";
    let user = format!("user={injected}");
    let output = slipway(
        &dir,
        &["validate", ".", "-var", &user, "-var", "greeting=hi"],
        &[],
    );
    let log = text(&output);
    assert_eq!(output.status.code(), Some(1), "{log}");
    assert!(log.contains("main.hcl:11:"), "located at user:\n{log}");

    // A newline is refused in an environment value as well (it is not file
    // content), located at the attribute.
    let greeting = format!("greeting={injected}");
    let output = slipway(
        &dir,
        &["validate", ".", "-var", "user=app", "-var", &greeting],
        &[],
    );
    let log = text(&output);
    assert_eq!(output.status.code(), Some(1), "{log}");
    assert!(
        log.contains("main.hcl:12:"),
        "located at environment:\n{log}"
    );

    // Quotes, backslashes and specifiers are data: one escaped word.
    let greeting = r#"x" ExecStartPre=/bin/touch /tmp/pwned \%n $HOME"#;
    let loaded = slipway::config::load(
        &dir,
        &slipway::config::InputSources {
            vars: vec!["user=app".into(), format!("greeting={greeting}")],
            var_files: vec![],
            environment: vec![],
        },
    );
    let config = loaded.config.expect("loads");
    let vm = config.deployments["deployment.app"]
        .service
        .vm
        .as_ref()
        .unwrap();
    let unit = vm.systemd_unit.as_ref().unwrap();
    let text = slipway::plan::render::systemd_unit_text(vm, unit, &unit.name);
    assert!(
        text.contains(
            "\nEnvironment=\"GREETING=x\\\" ExecStartPre=/bin/touch /tmp/pwned \\\\%%n $HOME\"\n"
        ),
        "{text}"
    );
    assert!(!text.contains("\nExecStartPre"), "{text}");
}

// ---------------------------------------------------------------------------
// Links planted on a host (local transport)
// ---------------------------------------------------------------------------

#[test]
fn a_config_file_that_is_a_link_is_replaced_and_a_releases_link_is_never_pruned() {
    let quickstart = Quickstart::with_hosts(1);
    quickstart.edit_config(
        "install_dir = \"/opt/hello\"",
        "install_dir = \"/opt/hello\"\n    keep_releases = 1",
    );
    let outside = outside();
    let before = tree(outside.path());
    let host = quickstart.host_dir("host-1");

    // The config file's path already holds a link to a file outside.
    symlink(
        &outside.path().join("victim.txt"),
        &host.join("config/hello.env"),
    );
    let first = quickstart.apply("1.0.0");
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let config = host.join("config/hello.env");
    assert!(
        !std::fs::symlink_metadata(&config)
            .unwrap()
            .file_type()
            .is_symlink(),
        "the link was replaced by the file"
    );
    assert!(std::fs::read_to_string(&config)
        .unwrap()
        .contains("BASE_PORT="));
    assert_eq!(tree(outside.path()), before, "nothing outside changed");

    // A release "directory" that is a link to a directory outside.
    symlink(outside.path(), &host.join("releases/old"));
    for version in ["1.1.0", "1.2.0"] {
        let apply = quickstart.apply(version);
        assert_eq!(apply.status.code(), Some(0), "{}", text(&apply));
    }
    quickstart.assert_serving("1.2.0");
    assert_eq!(tree(outside.path()), before, "prune followed no link");
    assert!(
        std::fs::symlink_metadata(host.join("releases/old")).is_ok(),
        "a link in releases/ is left alone"
    );
    assert!(
        !host.join("releases/1.0.0").exists(),
        "real releases beyond keep_releases are pruned"
    );
}

#[test]
fn a_config_directory_that_leads_outside_fails_the_host_before_anything_is_written() {
    let quickstart = Quickstart::with_hosts(1);
    let outside = outside();
    let before = tree(outside.path());
    symlink(
        outside.path(),
        &quickstart.host_dir("host-1").join("config"),
    );
    let apply = quickstart.apply("1.0.0");
    let log = text(&apply);
    assert_ne!(apply.status.code(), Some(0), "{log}");
    assert!(log.contains("leads outside"), "{log}");
    assert_eq!(tree(outside.path()), before, "nothing written outside");
}

#[test]
fn a_releases_directory_that_is_a_link_is_refused_before_the_upload() {
    let quickstart = Quickstart::with_hosts(1);
    let outside = outside();
    let before = tree(outside.path());
    symlink(
        outside.path(),
        &quickstart.host_dir("host-1").join("releases"),
    );
    let apply = quickstart.apply("1.0.0");
    let log = text(&apply);
    assert_ne!(apply.status.code(), Some(0), "{log}");
    assert!(log.contains("is a symbolic link"), "{log}");
    assert_eq!(
        tree(outside.path()),
        before,
        "nothing written or deleted outside"
    );
}

#[test]
fn local_hosts_and_roots_that_leave_the_configuration_directory_are_refused() {
    let quickstart = Quickstart::with_hosts(1);
    let parent_before = tree(quickstart.root.parent().unwrap());
    for (from, to) in [
        ("hosts     = [\"host-1\"]", "hosts     = [\"..\"]"),
        ("root      = \".slipway/hosts\"", "root      = \"../..\""),
    ] {
        quickstart.edit_config(from, to);
        let apply = quickstart.apply("1.0.0");
        let log = text(&apply);
        assert_eq!(apply.status.code(), Some(1), "{log}");
        assert!(log.contains("main.hcl:"), "located:\n{log}");
        quickstart.edit_config(to, from);
    }
    assert_eq!(
        tree(quickstart.root.parent().unwrap()),
        parent_before,
        "nothing was written"
    );
}

#[test]
fn a_local_root_that_is_a_link_out_of_the_configuration_is_refused() {
    let quickstart = Quickstart::with_hosts(1);
    let outside = outside();
    let before = tree(outside.path());
    symlink(outside.path(), &quickstart.root.join(".slipway/hosts"));
    let apply = quickstart.apply("1.0.0");
    let log = text(&apply);
    assert_ne!(apply.status.code(), Some(0), "{log}");
    assert!(
        log.contains("outside the configuration's directory"),
        "{log}"
    );
    assert_eq!(tree(outside.path()), before, "nothing written outside");
}

#[test]
fn a_version_that_cannot_name_a_release_directory_is_refused_at_validate_with_its_location() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("config");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(
        dir.join("main.hcl"),
        r#"
variable "version" { type = string }

service "app" {
  version = var.version
  vm {
    install_dir   = "/opt/app"
    start_command = "true"
  }
}

environment "prod" {
  vm_hosts {
    transport = "local"
    root      = ".slipway/hosts"
    hosts     = ["host-1"]
  }
}

deployment "app" {
  service     = service.app
  environment = environment.prod
}
"#,
    )
    .unwrap();
    let long = "9".repeat(100_000);
    for version in ["$(touch x)/1", ".hidden", long.as_str()] {
        let flag = format!("version={version}");
        let output = slipway(&dir, &["apply", ".", "-auto-approve", "-var", &flag], &[]);
        let log = text(&output);
        assert_eq!(output.status.code(), Some(1), "{log}");
        assert!(log.contains("main.hcl:5:"), "located at version:\n{log}");
        assert!(
            log.len() < 5_000,
            "the message repeats the value: {} bytes",
            log.len()
        );
        assert!(!dir.join(".slipway").exists(), "nothing was written");
    }
}

#[test]
fn a_systemd_unit_on_the_local_transport_is_refused_and_no_systemctl_runs_on_this_machine() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("config");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(
        dir.join("main.hcl"),
        r#"
service "app" {
  version = "1.0.0"
  vm {
    install_dir = "/opt/app"
    systemd_unit "sshd.service" {
      exec_start = "/opt/app/current/bin/run"
    }
  }
}

environment "local" {
  vm_hosts {
    transport = "local"
    root      = ".slipway/hosts"
    hosts     = ["host-1"]
  }
}

deployment "app" {
  service     = service.app
  environment = environment.local
}
"#,
    )
    .unwrap();
    // A systemctl that records being run, first on the PATH.
    let bin = work.path().join("bin");
    let ran = work.path().join("systemctl-ran");
    crate::support::recording_stand_in(&bin, "systemctl", &ran);
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    for command in ["validate", "apply"] {
        let args: &[&str] = if command == "apply" {
            &["apply", ".", "-auto-approve"]
        } else {
            &["validate", "."]
        };
        let output = slipway(&dir, args, &[("PATH", path.as_str())]);
        let log = text(&output);
        assert_eq!(output.status.code(), Some(1), "{log}");
        assert!(
            log.contains("main.hcl:22:") && log.contains("local transport"),
            "located at the deployment's environment:\n{log}"
        );
        assert!(!ran.exists(), "systemctl ran on this machine");
        assert!(!dir.join(".slipway").exists(), "nothing was written");
    }
}

#[test]
fn a_command_longer_than_one_argument_may_be_is_refused_at_validate_with_its_location() {
    let quickstart = Quickstart::with_hosts(1);
    quickstart.edit_config(
        "start_command = \"sh current/bin/start.sh config/hello.env\"",
        "start_command = \"sh current/bin/start.sh config/hello.env # ${var.note}\"",
    );
    quickstart.edit_config(
        "variable \"base_port\" {",
        "variable \"note\" {\n  type    = string\n  default = \"\"\n}\n\nvariable \"base_port\" {",
    );
    let vars = quickstart.root.parent().unwrap().join("note.vars.hcl");
    std::fs::write(&vars, format!("note = \"{}\"\n", "n".repeat(100 * 1024))).unwrap();
    let vars = vars.display().to_string();
    let output = quickstart.slipway(&["apply", ".", "-auto-approve", "-var-file", &vars]);
    let log = text(&output);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        &log[..log.len().min(3000)]
    );
    assert!(
        log.contains("main.hcl:") && log.contains("\"start_command\" is 102"),
        "{}",
        &log[..log.len().min(3000)]
    );
    assert!(log.len() < 5_000, "the message repeats the command");
    assert!(
        !quickstart.root.join(".slipway").exists(),
        "nothing was written"
    );
}
