//! Secrets from stores, end to end: `secret` blocks read a key of a JSON
//! secret in AWS Secrets Manager and an SSM `SecureString` from a real moto
//! server, and a deployment over SSH to a real sshd host writes them into a
//! config file. The host's file gets the exact bytes; nothing slipway
//! printed (plan in every format, apply) or wrote (state, history, journal,
//! backups, a saved plan) holds a value or a form computed from it
//! (`secret_taint`'s search). A rotated secret is a change in plan, which
//! apply then puts on the host; a plan saved before the rotation is refused;
//! `version_stage` reads the version before it.
//! A secret that cannot be read or used is an error naming the block and
//! the deployment (a missing secret or parameter, access denied, an
//! unreachable endpoint, a JSON key that is absent, a secret that is not
//! JSON), and nothing on the host or in state changes; a secret no
//! deployment uses, or only another environment's (`-environment`), is not
//! read.

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::moto::Moto;
use crate::secret_taint::{assert_no_secret, files_under};
use crate::support::ssh_lab::Lab;
use crate::support::text;

const ROLLOUT: &str = "strategy = \"rolling\"\n  batches  = [1]";
const VERSION: &str = "version=1.0.0";

const DB_SECRET_ID: &str = "lab/db";
const TOKEN_PARAMETER: &str = "/lab/api/token";

/// The database password (in a JSON secret) and the API token (an SSM
/// `SecureString`): hostile characters around the core `Zq9` that
/// `secret_taint`'s forms split on.
const DB_PASSWORD: &str = "pa$$-Zq9-\"w0rd'%s{x}";
const API_TOKEN: &str = "tok\\en-Zq9-é✓`<&>";
const DB_PASSWORD_ROTATED: &str = "r0tated-Zq9-pa$$word";
const API_TOKEN_ROTATED: &str = "n3w-t0ken-Zq9-日";

const SECRET_BLOCKS: &str = r#"
secret "db_password" {
  aws_secrets_manager = "lab/db"
  json_key            = "password"
}

secret "api_token" {
  ssm_parameter = "/lab/api/token"
}

# Used by no deployment, so never read (it does not exist).
secret "unused" {
  aws_secrets_manager = "lab/not-there"
}
"#;

/// The config file the secrets go to: copies and computed forms.
const SECRETS_FILE: &str = r#"    config_file "secrets.env" {
      destination = "/opt/app/config/secrets.env"
      content     = <<-EOT
        PLAIN=visible-line
        DB_PASSWORD=${secret.db_password}
        API_TOKEN=${secret.api_token}
        DB_UPPER=${upper(secret.db_password)}
        TOKEN_B64=${base64encode(secret.api_token)}
      EOT
    }

"#;

/// What the host's file must hold, byte for byte.
fn expected_file(password: &str, token: &str) -> String {
    format!(
        "PLAIN=visible-line\nDB_PASSWORD={password}\nAPI_TOKEN={token}\nDB_UPPER={}\nTOKEN_B64={}\n",
        password.to_uppercase(),
        crate::secret_taint::base64(token)
    )
}

/// A lab host, a moto server holding both secrets, and the configuration.
struct Bed {
    lab: Lab,
    moto: Moto,
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

impl Bed {
    fn start(prefix: &str) -> Option<Bed> {
        let moto = Moto::start()?;
        let lab = Lab::start(1, prefix)?;
        lab.configure(&lab.all_hosts(), ROLLOUT);
        let bed = Bed { lab, moto };
        bed.edit(
            "variable \"version\" {",
            &format!("{SECRET_BLOCKS}\nvariable \"version\" {{"),
        );
        bed.edit(
            "    config_file \"app.env\" {",
            &format!("{SECRETS_FILE}    config_file \"app.env\" {{"),
        );
        runtime().block_on(async {
            let secrets = bed.moto.secrets_manager().await;
            secrets
                .create_secret()
                .name(DB_SECRET_ID)
                .secret_string(db_json(DB_PASSWORD))
                .send()
                .await
                .unwrap();
            secrets
                .create_secret()
                .name("lab/plain")
                .secret_string("not json at all")
                .send()
                .await
                .unwrap();
        });
        bed.put_token(API_TOKEN, false);
        Some(bed)
    }

    fn edit(&self, from: &str, to: &str) {
        let path = self.lab.root.join("main.hcl");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(from), "main.hcl has {from:?}");
        std::fs::write(path, text.replacen(from, to, 1)).unwrap();
    }

    fn put_token(&self, token: &str, overwrite: bool) {
        runtime().block_on(async {
            self.moto
                .ssm()
                .await
                .put_parameter()
                .name(TOKEN_PARAMETER)
                .value(token)
                .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
                .overwrite(overwrite)
                .send()
                .await
                .unwrap();
        });
    }

    /// A new current version of the JSON secret and of the parameter.
    fn rotate(&self) {
        runtime().block_on(async {
            self.moto
                .secrets_manager()
                .await
                .put_secret_value()
                .secret_id(DB_SECRET_ID)
                .secret_string(db_json(DB_PASSWORD_ROTATED))
                .send()
                .await
                .unwrap();
        });
        self.put_token(API_TOKEN_ROTATED, true);
    }

    /// slipway against the lab and moto, with `extra` environment.
    fn run(&self, args: &[&str], extra: &[(&str, &str)]) -> Output {
        let mut command = self.lab.command(args);
        self.moto.apply_env(&mut command);
        command.envs(extra.iter().copied());
        command.output().unwrap()
    }

    fn secrets_file(&self) -> Option<String> {
        std::fs::read_to_string(self.lab.install_dir(0).join("config/secrets.env")).ok()
    }

    fn state_dir(&self) -> PathBuf {
        self.lab.root.join(".slipway/state")
    }
}

fn db_json(password: &str) -> String {
    serde_json::json!({ "username": "app", "password": password, "port": 5432 }).to_string()
}

/// Every file under `dirs` and each of `files`, searched for every form of
/// each secret, and each of `printed`.
fn assert_nowhere(printed: &[String], dirs: &[&Path], files: &[&Path], secrets: &[&str]) {
    let mut stored = Vec::new();
    for dir in dirs {
        files_under(dir, &mut stored);
    }
    for file in files {
        stored.push((file.to_path_buf(), std::fs::read_to_string(file).unwrap()));
    }
    assert!(stored.len() > files.len(), "state was written");
    for secret in secrets {
        for output in printed {
            assert_no_secret("slipway's output", output, secret);
        }
        for (path, content) in &stored {
            assert_no_secret(&path.display().to_string(), content, secret);
        }
    }
}

/// A rendered diagnostic with its lines joined, as the words were before
/// wrapping.
fn unwrapped(shown: &str) -> String {
    shown
        .lines()
        .map(|line| line.trim().trim_start_matches(['│', '×']).trim())
        .collect::<Vec<_>>()
        .join(" ")
}

/// `slipway ARGS` in the lab's configuration directory, without the lab's
/// `-var` (state commands take none).
fn state_command(bed: &Bed, args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_slipway"))
        .args(args)
        .current_dir(&bed.lab.root)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn secrets_from_both_stores_reach_the_config_file_and_nothing_else() {
    let Some(bed) = Bed::start("secret-stores-") else {
        return;
    };
    let mut printed = Vec::new();
    for format in [&[][..], &["-markdown"][..], &["-json"][..]] {
        let mut args = vec!["plan", ".", "-var", VERSION];
        args.extend_from_slice(format);
        let plan = bed.run(&args, &[]);
        assert_eq!(plan.status.code(), Some(2), "{}", text(&plan));
        printed.push(text(&plan));
    }
    let saved = bed.lab.root.join("secrets.plan.json");
    let saved_text = saved.display().to_string();
    let plan = bed.run(&["plan", ".", "-var", VERSION, "-out", &saved_text], &[]);
    assert_eq!(plan.status.code(), Some(2), "{}", text(&plan));
    printed.push(text(&plan));
    let document = std::fs::read_to_string(&saved).unwrap();
    assert!(
        document.contains("\"secrets\"") && document.contains("\"name\": \"db_password\""),
        "the saved plan lists the secrets it read: {document}"
    );

    let apply = bed.run(&["apply", &saved_text, "-auto-approve"], &[]);
    assert_eq!(apply.status.code(), Some(0), "{}", text(&apply));
    printed.push(text(&apply));
    assert_eq!(
        bed.secrets_file().as_deref(),
        Some(expected_file(DB_PASSWORD, API_TOKEN).as_str())
    );

    let again = bed.run(&["plan", ".", "-var", VERSION], &[]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    printed.push(text(&again));
    for args in [
        ["state", "show", "deployment.app", "."],
        ["state", "history", "deployment.app", "."],
    ] {
        let out = state_command(&bed, &args);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        printed.push(text(&out));
    }
    assert_nowhere(
        &printed,
        &[&bed.state_dir()],
        &[&saved],
        &[DB_PASSWORD, API_TOKEN],
    );
}

#[test]
fn a_rotated_secret_is_a_change_and_a_plan_saved_before_it_is_refused() {
    let Some(bed) = Bed::start("secret-rotation-") else {
        return;
    };
    let mut printed = Vec::new();
    let first = bed.run(&["apply", ".", "-auto-approve", "-var", VERSION], &[]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    printed.push(text(&first));
    let saved = bed.lab.root.join("before-rotation.json");
    let saved_text = saved.display().to_string();
    let before = bed.run(&["plan", ".", "-var", VERSION, "-out", &saved_text], &[]);
    assert_eq!(before.status.code(), Some(0), "{}", text(&before));

    bed.rotate();
    let plan = bed.run(&["plan", ".", "-var", VERSION], &[]);
    let shown = text(&plan);
    assert_eq!(plan.status.code(), Some(2), "{shown}");
    assert!(
        shown.contains("config file /opt/app/config/secrets.env changed (sensitive value changed)"),
        "{shown}"
    );
    printed.push(shown);

    // The plan saved before the rotation: refused, nothing changes.
    let state_before = std::fs::read(bed.state_dir().join("lab.json")).unwrap();
    let stale = bed.run(&["apply", &saved_text, "-auto-approve"], &[]);
    let refusal = text(&stale);
    assert_eq!(stale.status.code(), Some(1), "{refusal}");
    for expected in [
        "cannot apply the saved plan",
        "secret \"db_password\" (Secrets Manager secret \"lab/db\", key \"password\")",
        "secret \"api_token\" (SSM parameter \"/lab/api/token\")",
        "make a new plan",
    ] {
        assert!(refusal.contains(expected), "{expected:?} in {refusal}");
    }
    printed.push(refusal);
    assert_eq!(
        std::fs::read(bed.state_dir().join("lab.json")).unwrap(),
        state_before
    );
    assert_eq!(
        bed.secrets_file().as_deref(),
        Some(expected_file(DB_PASSWORD, API_TOKEN).as_str())
    );

    let apply = bed.run(&["apply", ".", "-auto-approve", "-var", VERSION], &[]);
    assert_eq!(apply.status.code(), Some(0), "{}", text(&apply));
    printed.push(text(&apply));
    assert_eq!(
        bed.secrets_file().as_deref(),
        Some(expected_file(DB_PASSWORD_ROTATED, API_TOKEN_ROTATED).as_str())
    );
    let settled = bed.run(&["plan", ".", "-var", VERSION], &[]);
    assert_eq!(settled.status.code(), Some(0), "{}", text(&settled));

    // version_stage: the version before the rotation, back on the host.
    bed.edit(
        "  json_key            = \"password\"\n",
        "  json_key            = \"password\"\n  version_stage       = \"AWSPREVIOUS\"\n",
    );
    let previous = bed.run(&["apply", ".", "-auto-approve", "-var", VERSION], &[]);
    assert_eq!(previous.status.code(), Some(0), "{}", text(&previous));
    printed.push(text(&previous));
    assert_eq!(
        bed.secrets_file().as_deref(),
        Some(expected_file(DB_PASSWORD, API_TOKEN_ROTATED).as_str())
    );
    assert_nowhere(
        &printed,
        &[&bed.state_dir()],
        &[&saved],
        &[
            DB_PASSWORD,
            API_TOKEN,
            DB_PASSWORD_ROTATED,
            API_TOKEN_ROTATED,
        ],
    );
}

/// A configuration edit (from, to), environment variables, and what the
/// error must say besides the file and "nothing was changed".
type BadCase = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
    &'static [&'static str],
);

#[test]
fn a_secret_that_cannot_be_read_or_used_changes_nothing_and_says_which() {
    let Some(bed) = Bed::start("secret-errors-") else {
        return;
    };
    let first = bed.run(&["apply", ".", "-auto-approve", "-var", VERSION], &[]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let main = bed.lab.root.join("main.hcl");
    let good = std::fs::read_to_string(&main).unwrap();
    let state_before = std::fs::read(bed.state_dir().join("lab.json")).unwrap();
    let file_before = bed.secrets_file();
    let cases: [BadCase; 5] = [
        (
            "aws_secrets_manager = \"lab/db\"",
            "aws_secrets_manager = \"lab/missing\"",
            &[],
            &[
                "cannot read secret \"db_password\" (Secrets Manager secret \"lab/missing\", key \"password\") for deployment.app",
                "ResourceNotFoundException",
                "secretsmanager:GetSecretValue",
            ],
        ),
        (
            "ssm_parameter = \"/lab/api/token\"",
            "ssm_parameter = \"/lab/api/missing\"",
            &[],
            &[
                "cannot read secret \"api_token\" (SSM parameter \"/lab/api/missing\") for deployment.app",
                "ParameterNotFound",
                "ssm:GetParameter",
            ],
        ),
        (
            "json_key            = \"password\"",
            "json_key            = \"passwd\"",
            &[],
            &[
                "cannot read secret \"db_password\" (Secrets Manager secret \"lab/db\", key \"passwd\") for deployment.app",
                "has no key \"passwd\" (its keys: \"username\", \"password\", \"port\")",
                "set json_key to one of the secret's keys",
            ],
        ),
        (
            "aws_secrets_manager = \"lab/db\"",
            "aws_secrets_manager = \"lab/plain\"",
            &[],
            &[
                "cannot read secret \"db_password\" (Secrets Manager secret \"lab/plain\", key \"password\") for deployment.app",
                "needs a secret that is a JSON object, and this one is not",
            ],
        ),
        (
            "json_key",
            "json_key",
            // Nothing listens on port 1 of loopback: the endpoint is unreachable.
            &[("AWS_ENDPOINT_URL_SECRETS_MANAGER", "http://127.0.0.1:1")],
            &[
                "cannot read secret \"db_password\" (Secrets Manager secret \"lab/db\", key \"password\") for deployment.app",
                "the AWS request could not be sent",
            ],
        ),
    ];
    for (from, to, environment, expected) in cases {
        std::fs::write(&main, good.replacen(from, to, 1)).unwrap();
        for command in [
            &["plan", ".", "-var", VERSION][..],
            &["apply", ".", "-auto-approve", "-var", VERSION][..],
        ] {
            let out = bed.run(command, environment);
            let shown = unwrapped(&text(&out));
            assert_eq!(out.status.code(), Some(1), "{to}: {shown}");
            for part in expected.iter().chain(&["main.hcl:", "nothing was changed"]) {
                assert!(shown.contains(part), "{to}: {part:?} in {shown}");
            }
            for secret in [DB_PASSWORD, API_TOKEN] {
                assert_no_secret("the error", &shown, secret);
            }
            assert_eq!(
                std::fs::read(bed.state_dir().join("lab.json")).unwrap(),
                state_before,
                "{to}: state unchanged"
            );
            assert_eq!(bed.secrets_file(), file_before, "{to}: host unchanged");
        }
    }

    // Access denied: credentials that may read the parameter, not the secret.
    std::fs::write(&main, &good).unwrap();
    let (key_id, key_secret) = bed
        .moto
        .enforce_iam_with_user("slipway-reader", &["ssm:GetParameter"]);
    let credentials = [
        ("AWS_ACCESS_KEY_ID", key_id.as_str()),
        ("AWS_SECRET_ACCESS_KEY", key_secret.as_str()),
    ];
    for command in [
        &["plan", ".", "-var", VERSION][..],
        &["apply", ".", "-auto-approve", "-var", VERSION][..],
    ] {
        let out = bed.run(command, &credentials);
        let shown = unwrapped(&text(&out));
        assert_eq!(out.status.code(), Some(1), "{shown}");
        for part in [
            "cannot read secret \"db_password\" (Secrets Manager secret \"lab/db\", key \"password\") for deployment.app",
            "AccessDenied",
            "secretsmanager:GetSecretValue",
            "nothing was changed",
        ] {
            assert!(shown.contains(part), "{part:?} in {shown}");
        }
        assert!(
            !shown.contains("api_token"),
            "the parameter was read: {shown}"
        );
        assert_eq!(
            std::fs::read(bed.state_dir().join("lab.json")).unwrap(),
            state_before
        );
        assert_eq!(bed.secrets_file(), file_before);
    }
}

/// Another environment's deployment uses a secret that does not exist:
/// `-environment lab` neither reads it nor fails; a plan of everything
/// fails naming that deployment only.
#[test]
fn a_plan_for_one_environment_reads_only_the_secrets_its_deployments_use() {
    let Some(bed) = Bed::start("secret-selection-") else {
        return;
    };
    std::fs::write(
        bed.lab.root.join("other.hcl"),
        r#"
secret "elsewhere" {
  aws_secrets_manager = "other/not-there"
}

service "other" {
  version = "1.0.0"
  vm {
    install_dir = "/opt/other"
    config_file "other.env" {
      destination = "/opt/other/other.env"
      content     = "TOKEN=${secret.elsewhere}\n"
    }
  }
}

environment "other" {
  vm_hosts {
    transport = "local"
    root      = "other-hosts"
    hosts     = ["h"]
  }
}

deployment "other" {
  service     = service.other
  environment = environment.other
}
"#,
    )
    .unwrap();
    let one = bed.run(&["plan", ".", "-var", VERSION, "-environment", "lab"], &[]);
    assert_eq!(one.status.code(), Some(2), "{}", text(&one));
    let all = bed.run(&["plan", ".", "-var", VERSION], &[]);
    let shown = unwrapped(&text(&all));
    assert_eq!(all.status.code(), Some(1), "{shown}");
    assert!(
        shown.contains(
            "cannot read secret \"elsewhere\" (Secrets Manager secret \"other/not-there\") for deployment.other:"
        ),
        "{shown}"
    );
    assert!(!shown.contains("deployment.app"), "{shown}");
}
