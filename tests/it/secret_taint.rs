//! Sensitivity as taint: a value computed from a sensitive value — through a
//! function, an interpolation, a local, a `for` expression — is as secret as
//! the value itself. Random secrets (quotes, newlines, `%`, `$`, unicode) go
//! through a configuration that transforms them in every way the language
//! allows (the function library included), and every form slipway shows or stores (plan text, `-json`,
//! `-markdown`, the state it would write, error messages, and on a real apply
//! with the local transport everything printed and every state file) is
//! searched for the secret and each of its transformed forms. After a
//! rotation, a failing rollback that restores the old secret's config files
//! on a host that prints them (local transport and a real sshd host) leaves
//! no form of the old secret in anything printed, stored or sent to a
//! webhook receiver.

use std::path::{Path, PathBuf};

use proptest::prelude::*;

use crate::support::quickstart::Quickstart;
use crate::support::text;

/// A config file whose content transforms the secret in many ways, plus a
/// local and a module-free chain of locals over it.
const SECRET_CONFIG_FILE: &str = r#"
    config_file "secret.env" {
      destination = "/opt/hello/config/secret.env"
      content     = <<-EOT
        PLAIN=visible-line
        COPY=${var.secret}
        UPPER=${upper(var.secret)}
        LOCAL=${local.shout}
        URL=${local.url}
        REPLACED=${replace(var.secret, "Zq9", "Wx8")}
        JOINED=${join("+", split("Zq9", var.secret))}
        FOR=${join(",", [for part in split("Zq9", var.secret) : lower(part)])}
        FORMATTED=${format("%q|%s", var.secret, lower(var.secret))}
        JSON=${jsonencode({ s = var.secret, n = length(var.secret) })}
        CHOICE=${var.secret == "" ? "empty" : "not empty"}
        B64=${base64encode(var.secret)}
        SUBSTR=${substr(var.secret, 1, -1)}
        PADDED=${format("%-40s|%5.3s", var.secret, var.secret)}
        REGEX=${jsonencode(local.after_core)}
        ELEMENT=${element(split("Zq9", var.secret), 1)}
        TRY=${try(local.missing_map.x, upper(var.secret))}
        COALESCE=${coalesce("", lower(var.secret))}
        LOOKUP=${lookup({ k = upper(var.secret) }, "k", "none")}
        ZIPPED=${jsonencode(zipmap(["k"], [upper(var.secret)]))}
        SLICED=${join("", slice(split("", upper(var.secret)), 0, 2))}${join("", distinct(flatten([split("Zq9", upper(var.secret))])))}
        STARTS=${startswith(var.secret, "Zq9") ? "yes" : "no"}
      EOT
    }

    # The secret only in a template directive's collection.
    config_file "directive.env" {
      destination = "/opt/hello/config/directive.env"
      content     = "DIRECTIVE=%{ for part in split("Zq9", var.secret) }${upper(part)};%{ endfor }\n"
    }
"#;

const SECRET_DECLARATIONS: &str = r#"
variable "secret" {
  type      = string
  sensitive = true
}

locals {
  shout = upper(var.secret)
  url   = "https://user:${lower(var.secret)}@db.internal"
  missing_map = {}
  # With a placeholder for the secret this pattern does not match: the
  # local is judged as a whole.
  after_core = regex("Zq9(?P<rest>.*)", var.secret)
}
"#;

/// The forms of `secret` the configuration computes, each of which must not
/// appear anywhere slipway prints or stores.
fn forms(secret: &str) -> Vec<String> {
    let parts: Vec<&str> = secret.split("Zq9").collect();
    vec![
        secret.to_string(),
        secret.to_uppercase(),
        secret.to_lowercase(),
        secret.replace("Zq9", "Wx8"),
        parts.join("+"),
        parts
            .iter()
            .map(|p| p.to_lowercase())
            .collect::<Vec<_>>()
            .join(","),
        serde_json::to_string(secret).unwrap(),
        base64(secret),
        secret.chars().skip(1).collect(),
        parts
            .iter()
            .map(|p| p.to_uppercase())
            .collect::<Vec<_>>()
            .join(""),
        // A template `%{ for }` directive over the secret.
        parts.iter().map(|p| p.to_uppercase() + ";").collect(),
    ]
}

pub(crate) fn base64(text: &str) -> String {
    const DIGITS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in text.as_bytes().chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            out.push(if i <= chunk.len() {
                DIGITS[((n >> (18 - 6 * i)) & 63) as usize] as char
            } else {
                '='
            });
        }
    }
    out
}

/// Every way a form could be written: as is, JSON-escaped, with control
/// characters escaped for a terminal, and each of its lines long enough to
/// mean something.
fn spellings(form: &str) -> Vec<String> {
    let mut all = vec![
        form.to_string(),
        serde_json::to_string(form)
            .unwrap()
            .trim_matches('"')
            .to_string(),
        slipway::encode::text::visible(form).into_owned(),
    ];
    for line in form.lines().filter(|l| l.chars().count() >= 5) {
        all.push(line.to_string());
        all.push(
            serde_json::to_string(line)
                .unwrap()
                .trim_matches('"')
                .to_string(),
        );
    }
    all.sort();
    all.dedup();
    all
}

/// Fail if `haystack` (named `what`) holds any spelling of any form.
pub(crate) fn assert_no_secret(what: &str, haystack: &str, secret: &str) {
    for form in forms(secret) {
        for spelling in spellings(&form) {
            assert!(
                !haystack.contains(&spelling),
                "{what} holds {spelling:?} (a form of the secret {secret:?}):\n{haystack}"
            );
        }
    }
}

/// A secret: a fixed core (so that splitting and replacing have something to
/// work on and the forms are long) between two runs of hostile characters.
fn secret() -> impl Strategy<Value = String> {
    let side = "[a-zA-Z0-9\"'%$\\\\{}\n é日✓<>&|`]{3,10}";
    (side, side).prop_map(|(a, b)| format!("{a}Zq9{b}"))
}

fn main_hcl() -> String {
    let main = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/quickstart/main.hcl"),
    )
    .unwrap();
    with_secret_file(&main)
}

/// The quickstart's main.hcl with the secret, its locals and the config file.
fn with_secret_file(main: &str) -> String {
    let anchor = "    config_file \"hello.env\" {";
    assert!(main.contains(anchor));
    let main = main.replacen(anchor, &format!("{SECRET_CONFIG_FILE}\n{anchor}"), 1);
    format!("{SECRET_DECLARATIONS}\n{main}")
}

fn load(main: &str, secret: &str) -> slipway::config::Loaded {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/quickstart");
    slipway::config::load_sources(
        &dir,
        &[(PathBuf::from("main.hcl"), main.as_bytes().to_vec())],
        &slipway::config::InputSources {
            vars: vec![format!("secret={secret}")],
            var_files: vec![],
            environment: vec![],
        },
    )
}

/// The diagnostics of a configuration that must not load, rendered.
fn refusal(main: &str, secret: &str) -> String {
    let loaded = load(main, secret);
    let text = slipway::diagnostics::render(&loaded.sources, &loaded.diagnostics, false);
    assert!(loaded.config.is_none(), "loads, but must not:\n{text}");
    text
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Plan (three views) and the config files state would hold.
    #[test]
    fn no_view_of_a_plan_holds_a_form_of_the_secret(secret in secret()) {
        let loaded = load(&main_hcl(), &secret);
        let text = slipway::diagnostics::render(&loaded.sources, &loaded.diagnostics, false);
        let config = loaded.config.unwrap_or_else(|| panic!("loads:\n{text}"));
        let deployment = config.deployments.values().next().unwrap();
        // The host gets the real text.
        let content = &deployment.service.vm.as_ref().unwrap().config_files
            .iter().find(|f| f.destination.ends_with("secret.env")).unwrap().content;
        let upper = format!("UPPER={}\n", secret.to_uppercase());
        prop_assert!(content.contains(&upper), "{}", content);
        // What state stores.
        let stored = slipway::plan::planner::desired_config_files(&config, deployment);
        let stored = serde_json::to_string_pretty(&stored).unwrap();
        assert_no_secret("the config files state stores", &stored, &secret);
        // What no secret touched stays visible. (Each line of a secret with
        // newlines is masked on its own, and a line of one character masks
        // that character everywhere: secrets should be long.)
        if !secret.contains('\n') {
            assert!(stored.contains("PLAIN=visible-line"), "{stored}");
        }
        let mut states = slipway::plan::States::new();
        states.insert("local".to_string(), None);
        let plan = slipway::plan::plan(&config, &states, &Default::default()).expect("a plan");
        for format in [
            slipway::views::ViewFormat::Human { color: false },
            slipway::views::ViewFormat::Json,
            slipway::views::ViewFormat::Markdown,
        ] {
            let view = slipway::views::render(&plan, format);
            assert_no_secret(&format!("{format:?}"), &view, &secret);
        }
    }

    /// A validation message that interpolates the secret, or transforms it.
    #[test]
    fn a_validation_message_never_repeats_the_secret(secret in secret()) {
        let main = main_hcl().replace(
            "  sensitive = true\n}",
            r#"  sensitive = true
  validation {
    condition     = length(var.secret) > 1000
    error_message = "too short: ${var.secret} / ${upper(var.secret)} / ${replace(var.secret, "Zq9", "Wx8")}"
  }
}"#,
        );
        let text = refusal(&main, &secret);
        prop_assert!(text.contains("invalid value for variable \"secret\""), "{}", text);
        assert_no_secret("the validation error", &text, &secret);
    }

    /// An error inside an expression over the secret names the function,
    /// never the values it was given.
    #[test]
    fn an_evaluation_error_never_repeats_the_secret(secret in secret()) {
        let main = main_hcl().replace(
            "LOCAL=${local.shout}",
            "LOCAL=${format(\"%d\", upper(var.secret))}",
        );
        let text = refusal(&main, &secret);
        prop_assert!(text.contains("format() failed on a sensitive value"), "{}", text);
        assert_no_secret("the evaluation error", &text, &secret);
        // Arithmetic refuses with its operands in the message, except on a
        // sensitive value.
        let main = main_hcl().replace(
            "LOCAL=${local.shout}",
            "LOCAL=${upper(var.secret) * 2}",
        );
        let text = refusal(&main, &secret);
        prop_assert!(text.contains("the expression failed on a sensitive value"), "{}", text);
        assert_no_secret("the arithmetic error", &text, &secret);
        // So does a validation condition that fails to evaluate.
        let main = main_hcl().replace(
            "  sensitive = true\n}",
            r#"  sensitive = true
  validation {
    condition     = length(var.secret) / (var.secret == "" ? 1 : 0) > 1
    error_message = "never shown"
  }
}"#,
        );
        let text = refusal(&main, &secret);
        prop_assert!(text.contains("the expression failed on a sensitive value"), "{}", text);
        assert_no_secret("the validation condition's error", &text, &secret);
    }
}

#[test]
fn a_sensitive_number_given_a_bad_value_is_not_repeated() {
    let main = r#"
variable "pin" {
  type      = number
  sensitive = true
}
"#;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/quickstart");
    let loaded = slipway::config::load_sources(
        &dir,
        &[(PathBuf::from("main.hcl"), main.as_bytes().to_vec())],
        &slipway::config::InputSources {
            vars: vec!["pin=12x34-Zq9-secret".to_string()],
            var_files: vec![],
            environment: vec![],
        },
    );
    let text = slipway::diagnostics::render(&loaded.sources, &loaded.diagnostics, false);
    assert!(loaded.config.is_none());
    assert!(text.contains("the sensitive value (not shown)"), "{text}");
    assert!(!text.contains("12x34"), "{text}");
}

/// A sensitive module output is sensitive in the caller: using it in a
/// command is refused, like using the variable itself.
#[test]
fn a_sensitive_module_output_taints_the_caller() {
    let dir = tempfile::tempdir().unwrap();
    let module = dir.path().join("modules/db");
    std::fs::create_dir_all(&module).unwrap();
    std::fs::write(
        module.join("main.hcl"),
        "variable \"password\" { type = string }\noutput \"url\" {\n  value     = \"postgres://u:${upper(var.password)}@db\"\n  sensitive = true\n}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("main.hcl"),
        r#"
variable "password" {
  type      = string
  sensitive = true
}
module "db" {
  source   = "./modules/db"
  password = var.password
}
service "app" {
  version = "1.0.0"
  vm {
    install_dir = "/opt/app"
    precheck "db" { command = "check ${module.db.url}" }
  }
}
environment "dev" {
  vm_hosts { hosts = ["dev-1.internal"] }
}
deployment "app" {
  service     = service.app
  environment = environment.dev
}
"#,
    )
    .unwrap();
    let loaded = slipway::config::load(
        dir.path(),
        &slipway::config::InputSources {
            vars: vec!["password=hunter2-Zq9".to_string()],
            var_files: vec![],
            environment: vec![],
        },
    );
    let text = slipway::diagnostics::render(&loaded.sources, &loaded.diagnostics, false);
    assert!(loaded.config.is_none(), "{text}");
    assert!(
        text.contains("sensitive value module.db is used in \"command\""),
        "{text}"
    );
    assert!(!text.to_lowercase().contains("hunter2"), "{text}");
}

/// Collect the text of every file under `dir`.
pub(crate) fn files_under(dir: &Path, out: &mut Vec<(PathBuf, String)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files_under(&path, out);
        } else if let Ok(bytes) = std::fs::read(&path) {
            out.push((path, String::from_utf8_lossy(&bytes).into_owned()));
        }
    }
}

/// The real binary, the local transport: plan in every format, apply, and
/// every file slipway wrote to state (state, history, backups). The host's
/// file gets the real values.
#[test]
fn an_apply_prints_and_stores_no_form_of_the_secret() {
    for secret in ["s3cr\"et'Zq9$HOME%d{x}", "é日✓\nline2Zq9`tick` <b>&amp;"] {
        let quickstart = Quickstart::new();
        let main = std::fs::read_to_string(quickstart.root.join("main.hcl")).unwrap();
        std::fs::write(quickstart.root.join("main.hcl"), with_secret_file(&main)).unwrap();
        let var = format!("secret={secret}");
        let mut printed = Vec::new();
        for format in [None, Some("-json"), Some("-markdown")] {
            let mut args = vec!["plan", ".", "-var", &var];
            args.extend(format);
            let out = quickstart.slipway(&args);
            assert_eq!(out.status.code(), Some(2), "{}", text(&out));
            printed.push(text(&out));
        }
        let applied = quickstart.slipway(&["apply", ".", "-auto-approve", "-var", &var]);
        assert_eq!(applied.status.code(), Some(0), "{}", text(&applied));
        printed.push(text(&applied));
        // Nothing changed: nothing to do (the digest in state matches).
        let same = quickstart.slipway(&["plan", ".", "-var", &var]);
        assert_eq!(same.status.code(), Some(0), "{}", text(&same));
        printed.push(text(&same));
        // Only the secret rotated: every masked text is the same, and still
        // the plan has a change, and apply delivers the new value.
        let rotated_secret = format!("{secret}-rotated");
        let rotated = format!("secret={rotated_secret}");
        let plan = quickstart.slipway(&["plan", ".", "-var", &rotated]);
        assert_eq!(plan.status.code(), Some(2), "{}", text(&plan));
        assert!(
            text(&plan).contains(
                "config file /opt/hello/config/secret.env changed (sensitive value changed)"
            ),
            "{}",
            text(&plan)
        );
        printed.push(text(&plan));
        let applied = quickstart.slipway(&["apply", ".", "-auto-approve", "-var", &rotated]);
        assert_eq!(applied.status.code(), Some(0), "{}", text(&applied));
        printed.push(text(&applied));
        for host in quickstart.host_names() {
            let on_host =
                std::fs::read_to_string(quickstart.host_dir(&host).join("config/secret.env"))
                    .unwrap();
            assert!(
                on_host.contains(&format!("COPY={rotated_secret}\n")),
                "{host}: {on_host}"
            );
        }
        let settled = quickstart.slipway(&["plan", ".", "-var", &rotated]);
        assert_eq!(settled.status.code(), Some(0), "{}", text(&settled));
        for output in &printed {
            assert_no_secret("slipway's output", output, &rotated_secret);
        }
        // A change beside the secret, with the secret rotated: the diff
        // shows the change, and neither secret.
        quickstart.edit_config("PLAIN=visible-line", "PLAIN=visible-line-2");
        let rotated = format!("secret={secret}-rotated");
        for format in [None, Some("-json"), Some("-markdown")] {
            let mut args = vec!["plan", ".", "-var", &rotated];
            args.extend(format);
            let out = quickstart.slipway(&args);
            assert_eq!(out.status.code(), Some(2), "{}", text(&out));
            assert!(
                text(&out).contains("PLAIN=visible-line-2"),
                "{}",
                text(&out)
            );
            assert_no_secret(
                "the plan after a rotation",
                &text(&out),
                &format!("{secret}-rotated"),
            );
            printed.push(text(&out));
        }
        // Applied with -json: the typed events carry no form of either
        // secret (their messages are the masked texts the log shows).
        let applied =
            quickstart.slipway(&["apply", ".", "-json", "-auto-approve", "-var", &rotated]);
        assert_eq!(applied.status.code(), Some(0), "{}", text(&applied));
        assert!(
            text(&applied).contains("\"kind\":\"host_updated\""),
            "{}",
            text(&applied)
        );
        assert_no_secret("apply -json", &text(&applied), &rotated_secret);
        printed.push(text(&applied));
        for output in &printed {
            assert_no_secret("slipway's output", output, secret);
        }
        let mut stored = Vec::new();
        files_under(&quickstart.root.join(".slipway/state"), &mut stored);
        assert!(!stored.is_empty());
        for (path, content) in &stored {
            assert_no_secret(&path.display().to_string(), content, secret);
            assert_no_secret(&path.display().to_string(), content, &rotated_secret);
        }
        // The hosts got the real texts, transformed forms included.
        let on_host =
            std::fs::read_to_string(quickstart.host_dir("host-1").join("config/secret.env"))
                .unwrap();
        assert!(
            on_host.contains(&format!("COPY={rotated_secret}\n")),
            "{on_host}"
        );
        assert!(
            on_host.contains(&format!("UPPER={}\n", rotated_secret.to_uppercase())),
            "{on_host}"
        );
    }
}

/// How the rollback of the test below meets the old secret on the host.
#[derive(Debug, Clone, Copy)]
enum OldSecretMeets {
    /// The health check after the rollback prints the restored config files
    /// (old secret) and fails.
    TheHealthCheckAfterTheRollback,
    /// The start command, run by the rollback on the restored config files,
    /// prints them and fails: the rollback itself fails.
    TheRollbacksStartCommand,
}

/// A rotation, then a failing apply whose rollback puts back the old
/// secret's config files, and a host that prints them: nothing slipway
/// prints (apply, `plan -refresh`, `state show`, `state history`), stores (state, history,
/// journal, backups) or sends to a webhook (a real receiver on loopback)
/// holds any form of the old secret, which the configuration no longer
/// knows, or of the new one. On the host the rollback did restore the old
/// secret's file, and the host did print it.
#[test]
fn a_failing_rollback_after_a_rotation_shows_no_form_of_the_old_secret() {
    let old_secret = "s3cr\"et'Zq9$HOME%d{x}";
    let new_secret = "n3w-Zq9-r0t@ted";
    for meets in [
        OldSecretMeets::TheHealthCheckAfterTheRollback,
        OldSecretMeets::TheRollbacksStartCommand,
    ] {
        let receiver = crate::support::webhook::Receiver::start();
        let quickstart = Quickstart::with_hosts(1);
        let main = std::fs::read_to_string(quickstart.root.join("main.hcl")).unwrap();
        std::fs::write(quickstart.root.join("main.hcl"), with_secret_file(&main)).unwrap();
        quickstart.edit_config(
            "  on_failure = \"rollback\"\n}",
            &format!(
                "  on_failure = \"rollback\"\n\n  notify \"hook\" {{\n    webhook = \"{}\"\n  }}\n}}",
                receiver.url
            ),
        );
        let mut printed = Vec::new();
        let apply = |version: &str, secret: &str| {
            let (version, secret) = (format!("version={version}"), format!("secret={secret}"));
            quickstart.slipway(&[
                "apply",
                ".",
                "-auto-approve",
                "-var",
                &version,
                "-var",
                &secret,
            ])
        };
        let first = apply("1.0.0", old_secret);
        assert_eq!(first.status.code(), Some(0), "{}", text(&first));
        printed.push(text(&first));
        let secret_file = quickstart.host_dir("host-1").join("config/secret.env");
        let on_host = std::fs::read_to_string(&secret_file).unwrap();
        assert!(
            on_host.contains(&format!("COPY={old_secret}\n")),
            "{on_host}"
        );

        // 2.0.0 with the rotated secret: its health check prints the config
        // files and fails, so the rollout rolls host-1 back to 1.0.0's pair.
        quickstart.edit_config("retries  = 10", "retries  = 0");
        quickstart.edit_config(
            "command  = \"sh current/bin/check.sh\"",
            "command  = \"cat config/secret.env >&2; cat config/secret.env; exit 1\"",
        );
        if let OldSecretMeets::TheRollbacksStartCommand = meets {
            // Only 2.0.0's config file has the line the start command looks
            // for; on the restored one it prints the file and fails.
            quickstart.edit_config("PLAIN=visible-line\n", "PLAIN=visible-line\nROTATION=2\n");
            quickstart.edit_config(
                "start_command = \"sh current/bin/start.sh config/hello.env\"",
                "start_command = \"grep -q ROTATION=2 config/secret.env || { cat config/secret.env >&2; exit 1; }; sh current/bin/start.sh config/hello.env\"",
            );
        }
        let failed = apply("2.0.0", new_secret);
        let log = text(&failed);
        assert_eq!(failed.status.code(), Some(1), "{meets:?}: {log}");
        printed.push(log.clone());
        match meets {
            OldSecretMeets::TheHealthCheckAfterTheRollback => assert!(
                log.contains("host-1: rolled back to 1.0.0, but health.http failed"),
                "{log}"
            ),
            OldSecretMeets::TheRollbacksStartCommand => assert!(
                log.contains("rollback of host-1: rollback.start failed")
                    && log.contains("NOT rolled back"),
                "{log}"
            ),
        }
        // The host printed lines; they were counted, not shown.
        assert!(
            log.contains("line(s) the host printed are not shown"),
            "{log}"
        );
        // On the host: the rollback restored the old secret's file.
        let on_host = std::fs::read_to_string(&secret_file).unwrap();
        assert!(
            on_host.contains(&format!("COPY={old_secret}\n"))
                && on_host.contains(&format!("UPPER={}\n", old_secret.to_uppercase())),
            "{meets:?}: {on_host}"
        );
        let new_secret_var = format!("secret={new_secret}");
        let refreshed = quickstart.slipway(&[
            "plan",
            ".",
            "-refresh",
            "-var",
            "version=2.0.0",
            "-var",
            &new_secret_var,
        ]);
        printed.push(text(&refreshed));
        for args in [
            ["state", "show", "deployment.hello", "."],
            ["state", "history", "deployment.hello", "."],
        ] {
            let out = quickstart.slipway_exactly(&args);
            assert_eq!(out.status.code(), Some(0), "{}", text(&out));
            printed.push(text(&out));
        }
        assert_nowhere(
            &printed,
            &quickstart.root.join(".slipway/state"),
            &receiver.raw(),
            &[old_secret, new_secret],
        );
    }
}

/// No form of any of `secrets` in what slipway printed, in any file under
/// the state directory (states, backups: history and journal are in them),
/// or in a webhook body; and a `failed` event was among the bodies.
fn assert_nowhere(printed: &[String], state_dir: &Path, bodies: &[String], secrets: &[&str]) {
    let mut stored = Vec::new();
    files_under(state_dir, &mut stored);
    assert!(!stored.is_empty());
    assert!(
        bodies.iter().any(|b| b.contains("\"failed\"")),
        "a failed event was sent: {bodies:#?}"
    );
    for secret in secrets {
        for output in printed {
            assert_no_secret("slipway's output", output, secret);
        }
        for (path, content) in &stored {
            assert_no_secret(&path.display().to_string(), content, secret);
        }
        for body in bodies {
            assert_no_secret("a webhook body", body, secret);
        }
    }
}

/// The same over SSH, on a real sshd host: after a rotation, 2.0.0's health
/// check prints the config files and fails; the rollback restores 1.0.0's
/// files (old secret) and the health check after it prints them and fails,
/// and so does the start command in a second round that makes the rollback
/// itself fail. Nothing printed, stored or sent holds a form of either secret.
#[test]
fn over_ssh_a_failing_rollback_after_a_rotation_shows_no_form_of_the_old_secret() {
    let old_secret = "s3cr\"et'Zq9$HOME%d{x}";
    let new_secret = "n3w-Zq9-r0t@ted";
    for meets in [
        OldSecretMeets::TheHealthCheckAfterTheRollback,
        OldSecretMeets::TheRollbacksStartCommand,
    ] {
        let Some(lab) = crate::support::ssh_lab::Lab::start(1, "secret-rollback-") else {
            return;
        };
        let receiver = crate::support::webhook::Receiver::start();
        let edit = |from: &str, to: &str| {
            let path = lab.root.join("main.hcl");
            let text = std::fs::read_to_string(&path).unwrap();
            assert!(text.contains(from), "main.hcl has {from:?}");
            std::fs::write(path, text.replacen(from, to, 1)).unwrap();
        };
        let anchor = "    config_file \"app.env\" {";
        edit(
            anchor,
            &format!(
                "{}\n{anchor}",
                SECRET_CONFIG_FILE.replace("/opt/hello/", "/opt/app/")
            ),
        );
        edit(
            "variable \"version\" {",
            &format!("{SECRET_DECLARATIONS}\nvariable \"version\" {{"),
        );
        lab.configure(
            &[0],
            &format!(
                "strategy   = \"rolling\"\n  batches    = [1]\n  on_failure = \"rollback\"\n\n  notify \"hook\" {{\n    webhook = \"{}\"\n  }}",
                receiver.url
            ),
        );
        let mut printed = Vec::new();
        let apply = |version: &str, secret: &str| {
            let (version, secret) = (format!("version={version}"), format!("secret={secret}"));
            lab.slipway(&[
                "apply",
                ".",
                "-auto-approve",
                "-var",
                &version,
                "-var",
                &secret,
            ])
        };
        let first = apply("1.0.0", old_secret);
        assert_eq!(first.status.code(), Some(0), "{}", text(&first));
        printed.push(text(&first));
        let secret_file = lab.install_dir(0).join("config/secret.env");
        let on_host = std::fs::read_to_string(&secret_file).unwrap();
        assert!(
            on_host.contains(&format!("COPY={old_secret}\n")),
            "{on_host}"
        );

        edit("retries  = 3", "retries  = 0");
        edit(
            "command  = \"sh current/bin/check.sh\"",
            "command  = \"cat config/secret.env >&2; cat config/secret.env; exit 1\"",
        );
        if let OldSecretMeets::TheRollbacksStartCommand = meets {
            edit("PLAIN=visible-line\n", "PLAIN=visible-line\nROTATION=2\n");
            edit(
                "start_command = \"sh current/bin/start.sh config/app.env\"",
                "start_command = \"grep -q ROTATION=2 config/secret.env || { cat config/secret.env >&2; exit 1; }; sh current/bin/start.sh config/app.env\"",
            );
        }
        let failed = apply("2.0.0", new_secret);
        let log = text(&failed);
        assert_eq!(failed.status.code(), Some(1), "{meets:?}: {log}");
        printed.push(log.clone());
        let host = lab.address(0).to_string();
        match meets {
            OldSecretMeets::TheHealthCheckAfterTheRollback => assert!(
                log.contains(&format!(
                    "{host}: rolled back to 1.0.0, but health.http failed"
                )),
                "{log}"
            ),
            OldSecretMeets::TheRollbacksStartCommand => assert!(
                log.contains(&format!("rollback of {host}: rollback.start failed"))
                    && log.contains("NOT rolled back"),
                "{log}"
            ),
        }
        assert!(
            log.contains("line(s) the host printed are not shown"),
            "{log}"
        );
        // On the host: the rollback restored the old secret's file, and
        // `current` points at 1.0.0 again.
        let on_host = std::fs::read_to_string(&secret_file).unwrap();
        assert!(
            on_host.contains(&format!("COPY={old_secret}\n"))
                && on_host.contains(&format!("UPPER={}\n", old_secret.to_uppercase())),
            "{meets:?}: {on_host}"
        );
        assert_eq!(
            std::fs::read_link(lab.install_dir(0).join("current")).unwrap(),
            PathBuf::from("releases/1.0.0")
        );
        let new_secret_var = format!("secret={new_secret}");
        let refreshed = lab.slipway(&[
            "plan",
            ".",
            "-refresh",
            "-var",
            "version=2.0.0",
            "-var",
            &new_secret_var,
        ]);
        printed.push(text(&refreshed));
        for args in [
            ["state", "show", "deployment.app", "."],
            ["state", "history", "deployment.app", "."],
        ] {
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_slipway"))
                .args(args)
                .current_dir(&lab.root)
                .stdin(std::process::Stdio::null())
                .output()
                .unwrap();
            assert_eq!(out.status.code(), Some(0), "{}", text(&out));
            printed.push(text(&out));
        }
        assert_nowhere(
            &printed,
            &lab.root.join(".slipway/state"),
            &receiver.raw(),
            &[old_secret, new_secret],
        );
    }
}

/// A configuration that drops its last sensitive value mid-rollout: 2.0.0
/// no longer has the secret (nor its config file), moves host-1 and stops at
/// an approval; after the approval, host-2's health check prints the file
/// 1.0.0 left there and fails, and the rollback puts both hosts back on
/// 1.0.0's pair (old secret). The configuration knows no sensitive value any
/// more, but state still says the deployment's files held one: nothing
/// printed, stored or sent holds a form of the old secret.
#[test]
fn a_secret_dropped_mid_rollout_stays_out_of_host_output() {
    let old_secret = "s3cr\"et'Zq9$HOME%d{x}";
    let receiver = crate::support::webhook::Receiver::start();
    let quickstart = Quickstart::with_hosts(2);
    let notify = |quickstart: &Quickstart| {
        quickstart.edit_config(
            "  on_failure = \"rollback\"\n}",
            &format!(
                "  on_failure = \"rollback\"\n\n  notify \"hook\" {{\n    webhook = \"{}\"\n  }}\n}}",
                receiver.url
            ),
        );
    };
    let original = std::fs::read_to_string(quickstart.root.join("main.hcl")).unwrap();
    std::fs::write(
        quickstart.root.join("main.hcl"),
        with_secret_file(&original),
    )
    .unwrap();
    notify(&quickstart);
    let mut printed = Vec::new();
    let secret_var = format!("secret={old_secret}");
    let first = quickstart.slipway(&[
        "apply",
        ".",
        "-auto-approve",
        "-var",
        "version=1.0.0",
        "-var",
        &secret_var,
    ]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    printed.push(text(&first));

    // 2.0.0: no sensitive variable at all; host-2's health check prints
    // what 1.0.0 left in config/secret.env and fails.
    std::fs::write(quickstart.root.join("main.hcl"), &original).unwrap();
    notify(&quickstart);
    quickstart.edit_config(
        "  on_failure = \"rollback\"\n",
        "  on_failure = \"rollback\"\n\n  approval \"release-manager\" {\n    after_step = 1\n  }\n",
    );
    quickstart.edit_config("retries  = 10", "retries  = 3");
    quickstart.edit_config(
        "command  = \"sh current/bin/check.sh\"",
        "command  = \"if [ \\\"$SLIPWAY_HOST\\\" = host-2 ]; then cat config/secret.env >&2; exit 1; fi; sh current/bin/check.sh\"",
    );
    let paused = quickstart.apply("2.0.0");
    assert_eq!(paused.status.code(), Some(0), "{}", text(&paused));
    assert!(
        text(&paused).contains("waits for approval"),
        "{}",
        text(&paused)
    );
    printed.push(text(&paused));
    let approve = quickstart.slipway_exactly(&["approve", "hello", "."]);
    assert_eq!(approve.status.code(), Some(0), "{}", text(&approve));
    // The failing apply speaks JSON: its typed events, whose failure
    // messages quote the host, must hold no form of the secret either.
    let failed = quickstart.apply_json("2.0.0");
    let log = text(&failed);
    assert_eq!(failed.status.code(), Some(1), "{log}");
    printed.push(log.clone());
    let events: Vec<serde_json::Value> = crate::support::json_lines(&failed)
        .into_iter()
        .filter_map(|object| object.get("event").cloned())
        .collect();
    let host_2_failed = events
        .iter()
        .find(|e| e["kind"] == "host_failed" && e["host"] == "host-2")
        .unwrap_or_else(|| panic!("a host_failed event for host-2: {log}"));
    assert_eq!(host_2_failed["phase"], "health.http", "{host_2_failed}");
    let message = host_2_failed["message"].as_str().unwrap();
    assert!(
        message.contains("line(s) the host printed are not shown"),
        "{message}"
    );
    assert!(
        events.iter().any(|e| e["kind"] == "host_rolled_back"),
        "{log}"
    );
    // On the hosts: both back on 1.0.0's pair, old secret included.
    for host in ["host-1", "host-2"] {
        let on_host =
            std::fs::read_to_string(quickstart.host_dir(host).join("config/secret.env")).unwrap();
        assert!(
            on_host.contains(&format!("COPY={old_secret}\n")),
            "{host}: {on_host}"
        );
        assert_eq!(
            std::fs::read_link(quickstart.host_dir(host).join("current")).unwrap(),
            PathBuf::from("releases/1.0.0"),
            "{host}"
        );
    }
    for args in [
        ["state", "show", "deployment.hello", "."],
        ["state", "history", "deployment.hello", "."],
    ] {
        let out = quickstart.slipway_exactly(&args);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        printed.push(text(&out));
    }
    assert_nowhere(
        &printed,
        &quickstart.root.join(".slipway/state"),
        &receiver.raw(),
        &[old_secret],
    );
}
