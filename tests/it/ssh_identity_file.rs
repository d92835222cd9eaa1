//! An SSH `identity_file` that does not exist is named, with where the
//! configuration sets it, by `validate` and `plan`, and `apply` refuses to
//! start — instead of every host "refusing the login" one after the other.

use crate::support::text;

use std::path::Path;
use std::process::{Command, Stdio};

fn write_config(dir: &Path, identity_file: &str) {
    let text = format!(
        r#"slipway {{
  backend "local" {{ path = ".slipway/state" }}
}}

service "app" {{
  version = "1.0.0"
  vm {{
    install_dir   = "/opt/app"
    start_command = "true"
  }}
}}

environment "lab" {{
  vm_hosts {{
    transport       = "ssh"
    hosts           = ["127.0.0.1:9", "127.0.0.2:9"]
    identity_file   = "{identity_file}"
    connect_timeout = "2s"
  }}
}}

deployment "app" {{
  service     = service.app
  environment = environment.lab
}}
"#
    );
    std::fs::write(dir.join("main.hcl"), text).unwrap();
}

fn slipway(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_slipway"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn a_missing_identity_file_is_named_where_it_is_set_and_apply_contacts_no_host() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), "keys/no such deploy key");

    for command in [&["validate", "."][..], &["plan", "."][..]] {
        let output = slipway(dir.path(), command);
        let log = text(&output);
        assert!(
            log.contains("identity_file \"keys/no such deploy key\"")
                && log.contains("does not exist"),
            "{command:?}:\n{log}"
        );
        assert!(
            log.contains("main.hcl:17:"),
            "located at the attribute: {command:?}:\n{log}"
        );
        assert!(!log.contains("authorized_keys"), "{log}");
    }

    let applied = slipway(dir.path(), &["apply", ".", "-auto-approve"]);
    let log = text(&applied);
    assert_eq!(applied.status.code(), Some(1), "{log}");
    assert!(
        log.contains("deployment.app: identity_file \"keys/no such deploy key\"")
            && log.contains("does not exist")
            && log.contains("nothing was changed"),
        "{log}"
    );
    assert!(
        !log.contains("refused the login"),
        "no host was contacted:\n{log}"
    );
    assert!(
        !dir.path().join(".slipway/state/lab.json").exists(),
        "no state was written"
    );

    // A key that is there: no warning.
    std::fs::create_dir(dir.path().join("keys")).unwrap();
    std::fs::write(
        dir.path().join("keys/no such deploy key"),
        "not really a key\n",
    )
    .unwrap();
    let output = slipway(dir.path(), &["validate", "."]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert!(
        !text(&output).contains("identity_file"),
        "{}",
        text(&output)
    );
}
