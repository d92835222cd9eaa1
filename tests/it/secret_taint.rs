//! Sensitivity as taint: a value computed from a sensitive value — through a
//! function, an interpolation, a local, a `for` expression — is as secret as
//! the value itself. Random secrets (quotes, newlines, `%`, `$`, unicode) go
//! through a configuration that transforms them in every way the language
//! allows (the function library included), and every form slipway shows or stores (plan text, `-json`,
//! `-markdown`, the state it would write, error messages, and on a real apply
//! with the local transport everything printed and every state file) is
//! searched for the secret and each of its transformed forms.

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
    ]
}

fn base64(text: &str) -> String {
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
fn assert_no_secret(what: &str, haystack: &str, secret: &str) {
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
        let loaded = load(&main, &secret);
        prop_assert!(loaded.config.is_none());
        let text = slipway::diagnostics::render(&loaded.sources, &loaded.diagnostics, false);
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
        let loaded = load(&main, &secret);
        prop_assert!(loaded.config.is_none());
        let text = slipway::diagnostics::render(&loaded.sources, &loaded.diagnostics, false);
        prop_assert!(text.contains("format() failed on a sensitive value"), "{}", text);
        assert_no_secret("the evaluation error", &text, &secret);
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
fn files_under(dir: &Path, out: &mut Vec<(PathBuf, String)>) {
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
