//! Saved plan files (`plan -out FILE`), what they carry of their inputs, and
//! the checks apply makes before it executes one.
//!
//! A saved plan is the plan JSON document. It records the `-environment`
//! selection and the input variable values it was made with ([`plan_inputs`];
//! a sensitive value only as a salted digest), per environment the state
//! serial and lineage it was computed against, and the configuration digest.
//! Apply loads the configuration with the saved values, then
//! [`missing_sensitive`] and [`check_inputs`] say exactly which value to pass
//! or leave out, and [`check_fresh`] whether state or configuration moved on.
//! No I/O beyond the file itself.

use std::collections::BTreeSet;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::model::{InputSecret, InputVariable, Plan, PlanInputs};
use super::planner::{PlanOptions, States};
use crate::config::{Config, SavedInputs};

#[derive(Debug, thiserror::Error)]
pub enum SavedPlanError {
    #[error("cannot read plan file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot write plan file {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not a slipway plan: {detail}")]
    Invalid { path: String, detail: String },
}

pub fn write(path: &Path, plan: &Plan) -> Result<(), SavedPlanError> {
    let text = super::document::encode(plan).map_err(|e| SavedPlanError::Invalid {
        path: path.display().to_string(),
        detail: e.to_string(),
    })?;
    let temp = path.with_extension("tmp");
    std::fs::write(&temp, text)
        .and_then(|()| std::fs::rename(&temp, path))
        .map_err(|source| SavedPlanError::Write {
            path: path.display().to_string(),
            source,
        })
}

pub fn read(path: &Path) -> Result<Plan, SavedPlanError> {
    let text = std::fs::read_to_string(path).map_err(|source| SavedPlanError::Read {
        path: path.display().to_string(),
        source,
    })?;
    super::document::parse(&text).map_err(|e| SavedPlanError::Invalid {
        path: path.display().to_string(),
        detail: e.to_string(),
    })
}

/// The selection and input values `config` was loaded with, for the plan.
/// A sensitive value's digest is salted with the start of the configuration
/// digest (which covers every file and input value): the same plan made
/// twice is the same document, and the same value digests differently in
/// any other configuration or with any other input.
pub fn plan_inputs(config: &Config, options: &PlanOptions) -> PlanInputs {
    let salt: String = config.digest.chars().take(32).collect();
    PlanInputs {
        environments: options
            .environments
            .as_ref()
            .map(|only| only.iter().cloned().collect()),
        variables: config
            .inputs
            .iter()
            .map(|(name, input)| {
                if input.sensitive {
                    InputVariable {
                        name: name.clone(),
                        sensitive: true,
                        value: serde_json::Value::Null,
                        sha256: Some(input_digest(&salt, name, &input.value)),
                        salt: Some(salt.clone()),
                    }
                } else {
                    InputVariable {
                        name: name.clone(),
                        sensitive: false,
                        value: input.value.clone(),
                        sha256: None,
                        salt: None,
                    }
                }
            })
            .collect(),
        secrets: secret_digests(config, &salt),
    }
}

/// A digest of each secret read, salted with `salt` and its name. scrypt
/// costs tens of milliseconds (more in a debug build) and 16 MiB each, so
/// they are computed a few at a time in parallel.
fn secret_digests(config: &Config, salt: &str) -> Vec<InputSecret> {
    let secrets: Vec<(&String, &String)> = config.secret_values.iter().collect();
    let at_once = std::thread::available_parallelism().map_or(1, usize::from);
    let mut digests = Vec::with_capacity(secrets.len());
    for chunk in secrets.chunks(at_once) {
        std::thread::scope(|scope| {
            let running: Vec<_> = chunk
                .iter()
                .map(|(name, value)| {
                    scope.spawn(move || InputSecret {
                        name: name.to_string(),
                        digest: crate::config::secret_digest::digest_with_salt(
                            value,
                            format!("{salt}\0{name}").as_bytes(),
                        ),
                    })
                })
                .collect();
            for thread in running {
                digests.push(thread.join().expect("a digest thread does not panic"));
            }
        });
    }
    digests
}

/// How the secrets read for this apply differ from the ones the plan was
/// made with (compared by digest; no value is shown); empty when the same.
/// A secret rotated since the plan refuses it: the plan's config files and
/// its "sensitive value changed" verdicts were made with the old value.
pub fn check_secrets(inputs: &PlanInputs, config: &Config) -> Vec<String> {
    let describe = |name: &str| match config.secrets.get(name) {
        Some(spec) => spec.describe(),
        None => format!("secret \"{name}\""),
    };
    let mut problems = Vec::new();
    for saved in &inputs.secrets {
        match config.secret_values.get(&saved.name) {
            None => problems.push(format!(
                "{}: the plan was made with its value, but this apply does not use it: make a new plan",
                describe(&saved.name)
            )),
            Some(value) => {
                if crate::config::secret_digest::matches(&saved.digest, value) != Some(true) {
                    problems.push(format!(
                        "{}: the store now holds another value than the plan was made with (compared by \
                         digest; neither value is shown), so it changed after the plan: make a new plan \
                         with `slipway plan -out FILE` and apply that",
                        describe(&saved.name)
                    ));
                }
            }
        }
    }
    for name in config.secret_values.keys() {
        if !inputs.secrets.iter().any(|s| &s.name == name) {
            problems.push(format!(
                "{}: this apply uses it, but the plan was made without it: make a new plan",
                describe(name)
            ));
        }
    }
    problems
}

/// Hex SHA-256 over the salt, the variable's name and its value as JSON.
pub fn input_digest(salt: &str, name: &str, value: &serde_json::Value) -> String {
    let mut hasher = Sha256::new();
    hasher.update(salt.as_bytes());
    hasher.update([0]);
    hasher.update(name.as_bytes());
    hasher.update([0]);
    hasher.update(value.to_string().as_bytes());
    hex::encode(hasher.finalize())
}

/// The non-sensitive values a saved plan carries, to load the configuration
/// with.
pub fn saved_values(inputs: &PlanInputs) -> SavedInputs {
    inputs
        .variables
        .iter()
        .filter(|v| !v.sensitive)
        .map(|v| (v.name.clone(), v.value.clone()))
        .collect()
}

/// The sensitive variables the plan was made with that `supplied` (the names
/// given by `-var`, var files and `SLIPWAY_VAR_*` now) lacks, one message
/// each saying what to pass.
pub fn missing_sensitive(inputs: &PlanInputs, supplied: &BTreeSet<String>) -> Vec<String> {
    inputs
        .variables
        .iter()
        .filter(|v| v.sensitive && !supplied.contains(&v.name))
        .map(|v| missing_sensitive_message(&v.name))
        .collect()
}

fn missing_sensitive_message(name: &str) -> String {
    format!(
        "variable \"{name}\" is sensitive, so the plan holds only a digest of its value: \
         pass it again with -var {name}=VALUE (or in a -var-file, or as {}{name})",
        crate::config::inputs::ENV_PREFIX
    )
}

/// How the input values `config` was loaded with differ from the ones the
/// plan was made with; empty when they are the same. A sensitive value is
/// compared by digest and never shown.
pub fn check_inputs(inputs: &PlanInputs, config: &Config) -> Vec<String> {
    let mut problems = Vec::new();
    for saved in &inputs.variables {
        let name = &saved.name;
        let Some(given) = config.inputs.get(name) else {
            problems.push(if saved.sensitive {
                missing_sensitive_message(name)
            } else {
                format!(
                    "variable \"{name}\": the plan was made with a value for it, but the configuration no longer takes one"
                )
            });
            continue;
        };
        if saved.sensitive {
            let salt = saved.salt.as_deref().unwrap_or_default();
            if saved.sha256.as_deref() != Some(&input_digest(salt, name, &given.value)) {
                problems.push(format!(
                    "variable \"{name}\": the value from {} is not the one the plan was made with \
                     (compared by its digest; neither value is shown): pass the value the plan was made with, \
                     or make a new plan with this one",
                    given.origin
                ));
            }
        } else if given.value != saved.value {
            problems.push(if given.sensitive {
                format!(
                    "variable \"{name}\": the value from {} is not the one the plan was made with: \
                     leave it out (the plan carries its value), or make a new plan with it",
                    given.origin
                )
            } else {
                format!(
                    "variable \"{name}\": the plan was made with {}, but {} gives {}: \
                     leave it out (the plan carries its value), or make a new plan with it",
                    saved.value, given.origin, given.value
                )
            });
        }
    }
    let planned: BTreeSet<&String> = inputs.variables.iter().map(|v| &v.name).collect();
    for (name, given) in &config.inputs {
        if !planned.contains(name) {
            problems.push(format!(
                "variable \"{name}\": the plan was made without a value for it (its default applied), \
                 but {} gives one: leave it out, or make a new plan with it",
                given.origin
            ));
        }
    }
    problems
}

/// One line saying how to apply the plan saved at `path`: the values it
/// carries need not be given again, its sensitive ones must be.
pub fn how_to_apply(plan: &Plan, path: &str) -> String {
    let sensitive: Vec<String> = plan
        .inputs
        .iter()
        .flat_map(|inputs| &inputs.variables)
        .filter(|v| v.sensitive)
        .map(|v| format!("-var {}=...", v.name))
        .collect();
    let line = if sensitive.is_empty() {
        format!("Apply it with: slipway apply {path} (it carries its -var values and -environment)")
    } else {
        format!(
            "Apply it with: slipway apply {path} {} (it carries its other -var values and -environment; \
             sensitive values are given again and checked against the plan)",
            sensitive.join(" ")
        )
    };
    let secrets = plan
        .inputs
        .as_ref()
        .map_or(0, |inputs| inputs.secrets.len());
    if secrets == 0 {
        line
    } else {
        format!(
            "{line}. Apply reads its {secrets} secret(s) again and refuses the plan if a store \
             now holds another value"
        )
    }
}

/// How `-environment` given to apply differs from the plan's selection
/// (`given` empty: nothing given, which means the plan's); `None` when it
/// agrees.
pub fn check_environments(inputs: &PlanInputs, given: &[String]) -> Option<String> {
    if given.is_empty() {
        return None;
    }
    let given: Vec<String> = given
        .iter()
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if inputs.environments.as_ref() == Some(&given) {
        return None;
    }
    let flags = |names: &[String]| {
        names
            .iter()
            .map(|n| format!("-environment {n}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let made_for = match &inputs.environments {
        Some(names) => format!("for {}", flags(names)),
        None => "for every environment (no -environment)".to_string(),
    };
    Some(format!(
        "the plan was made {made_for}, but apply was given {}: a saved plan applies the \
         environments it was made for; leave out -environment, or make a new plan with it",
        flags(&given)
    ))
}

/// Artifacts the saved plan pinned that `config` (loaded, its remote
/// artifacts pinned again under apply's locks) finds holding other bytes: a
/// moved tag, a replaced file. Apply would send `config`'s bytes, so the
/// plan is stale.
pub fn artifacts_moved(plan: &Plan, config: &Config) -> Vec<String> {
    let mut moved = Vec::new();
    for change in &plan.deployments {
        let Some(pinned) = &change.artifact else {
            continue;
        };
        let now = config
            .deployments
            .get(&change.address)
            .and_then(|d| d.service.artifact.as_ref())
            .and_then(|a| a.sha256.as_deref())
            .map(str::to_ascii_lowercase);
        if let Some(now) = now.filter(|now| *now != pinned.sha256) {
            moved.push(format!(
                "artifact {} of {} holds sha256 {now} now, but the plan pinned {} (the tag moved or the file changed since the plan)",
                pinned.source, change.address, pinned.sha256
            ));
        }
    }
    moved
}

/// Why a saved plan no longer applies; empty when it is fresh.
pub fn check_fresh(plan: &Plan, config_digest: &str, states: &States) -> Vec<String> {
    let mut problems = Vec::new();
    if plan.config_digest != config_digest {
        problems.push(if plan.inputs.is_some() {
            "the configuration files (or files they read) changed since the plan was made"
                .to_string()
        } else {
            "the configuration or its input values changed since the plan was made \
             (a plan of format 1.0 carries no input values: pass the same -var values and \
             -environment as to plan)"
                .to_string()
        });
    }
    for basis in &plan.environments {
        let current = states.get(&basis.name).and_then(Option::as_ref);
        match (basis.state_serial, current) {
            (None, None) => {}
            (None, Some(state)) => problems.push(format!(
                "environment {}: the plan was made against empty state, but state now exists (serial {})",
                basis.name, state.serial
            )),
            (Some(serial), None) => problems.push(format!(
                "environment {}: the plan was made against state serial {serial}, but there is no state now",
                basis.name
            )),
            (Some(serial), Some(state)) => {
                if basis.state_lineage.as_deref() != Some(state.lineage.as_str()) {
                    problems.push(format!("environment {}: the state's lineage changed (it is a different state)", basis.name));
                } else if serial != state.serial {
                    problems.push(format!(
                        "environment {}: state changed since the plan (serial {serial} then, {} now)",
                        basis.name, state.serial
                    ));
                }
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::model::*;
    use crate::state::model::State;

    fn plan_against(serial: Option<u64>, lineage: Option<&str>) -> Plan {
        Plan {
            format_version: FORMAT_VERSION.into(),
            slipway_version: "test".into(),
            config_digest: "abc".into(),
            environments: vec![EnvironmentBasis {
                name: "prod".into(),
                state_serial: serial,
                state_lineage: lineage.map(str::to_string),
            }],
            inputs: None,
            deployments: Vec::new(),
            schedule: Schedule::default(),
            outputs: Vec::new(),
            summary: Summary::default(),
            warnings: Vec::new(),
            drift: Vec::new(),
        }
    }

    fn state(serial: u64, lineage: &str) -> State {
        State {
            serial,
            lineage: lineage.into(),
            ..State::new("prod")
        }
    }

    #[test]
    fn fresh_when_nothing_changed() {
        let mut states = States::new();
        states.insert("prod".into(), Some(state(3, "L")));
        assert!(check_fresh(&plan_against(Some(3), Some("L")), "abc", &states).is_empty());
        let mut empty = States::new();
        empty.insert("prod".into(), None);
        assert!(check_fresh(&plan_against(None, None), "abc", &empty).is_empty());
    }

    #[test]
    fn stale_when_config_serial_lineage_or_existence_changed() {
        let mut states = States::new();
        states.insert("prod".into(), Some(state(4, "L")));
        assert_eq!(
            check_fresh(&plan_against(Some(3), Some("L")), "abc", &states).len(),
            1
        );
        assert_eq!(
            check_fresh(&plan_against(Some(4), Some("other")), "abc", &states).len(),
            1
        );
        assert_eq!(
            check_fresh(&plan_against(Some(4), Some("L")), "changed", &states).len(),
            1
        );
        let problems = check_fresh(&plan_against(None, None), "abc", &states);
        assert!(problems[0].contains("empty state"), "{problems:?}");
    }

    fn carried() -> PlanInputs {
        PlanInputs {
            environments: Some(vec!["dev".into()]),
            variables: vec![
                InputVariable {
                    name: "token".into(),
                    sensitive: true,
                    value: serde_json::Value::Null,
                    sha256: Some(input_digest("salt", "token", &serde_json::json!("s3cret"))),
                    salt: Some("salt".into()),
                },
                InputVariable {
                    name: "version".into(),
                    sensitive: false,
                    value: serde_json::json!("1.0.1"),
                    sha256: None,
                    salt: None,
                },
            ],
            secrets: Vec::new(),
        }
    }

    fn loaded_with(inputs: &[(&str, serde_json::Value, bool, &str)]) -> Config {
        Config {
            inputs: inputs
                .iter()
                .map(|(name, value, sensitive, origin)| {
                    (
                        name.to_string(),
                        crate::config::InputRecord {
                            value: value.clone(),
                            sensitive: *sensitive,
                            origin: origin.to_string(),
                        },
                    )
                })
                .collect(),
            ..Config::default()
        }
    }

    #[test]
    fn the_same_inputs_pass() {
        let config = loaded_with(&[
            ("token", serde_json::json!("s3cret"), true, "-var"),
            (
                "version",
                serde_json::json!("1.0.1"),
                false,
                "the saved plan",
            ),
        ]);
        assert!(check_inputs(&carried(), &config).is_empty());
        assert_eq!(
            saved_values(&carried()),
            SavedInputs::from([("version".to_string(), serde_json::json!("1.0.1"))])
        );
    }

    #[test]
    fn a_different_sensitive_value_is_refused_without_showing_it() {
        let config = loaded_with(&[
            ("token", serde_json::json!("other-secret"), true, "-var"),
            (
                "version",
                serde_json::json!("1.0.1"),
                false,
                "the saved plan",
            ),
        ]);
        let problems = check_inputs(&carried(), &config);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("\"token\""), "{problems:?}");
        assert!(problems[0].contains("digest"), "{problems:?}");
        assert!(!problems[0].contains("other-secret") && !problems[0].contains("s3cret"));
    }

    #[test]
    fn a_different_or_new_plain_value_is_named_with_both_values() {
        let config = loaded_with(&[
            ("token", serde_json::json!("s3cret"), true, "-var"),
            ("version", serde_json::json!("1.0.2"), false, "-var"),
            ("extra", serde_json::json!(3), false, "SLIPWAY_VAR_extra"),
        ]);
        let problems = check_inputs(&carried(), &config);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems[0].contains("made with \"1.0.1\", but -var gives \"1.0.2\""),
            "{problems:?}"
        );
        assert!(
            problems[1].contains("\"extra\"") && problems[1].contains("SLIPWAY_VAR_extra"),
            "{problems:?}"
        );
    }

    #[test]
    fn a_missing_sensitive_value_says_what_to_pass() {
        let missing = missing_sensitive(&carried(), &BTreeSet::from(["version".to_string()]));
        assert_eq!(missing.len(), 1);
        assert!(missing[0].contains("-var token=VALUE"), "{missing:?}");
        assert!(missing[0].contains("SLIPWAY_VAR_token"), "{missing:?}");
        assert!(missing_sensitive(&carried(), &BTreeSet::from(["token".to_string()])).is_empty());
    }

    #[test]
    fn environment_selection_must_agree() {
        assert_eq!(check_environments(&carried(), &[]), None);
        assert_eq!(check_environments(&carried(), &["dev".into()]), None);
        let problem = check_environments(&carried(), &["prod".into()]).unwrap();
        assert!(
            problem.contains("made for -environment dev") && problem.contains("-environment prod"),
            "{problem}"
        );
    }

    #[test]
    fn how_to_apply_names_the_sensitive_values_to_give_again() {
        let mut plan = plan_against(None, None);
        assert!(how_to_apply(&plan, "p").starts_with("Apply it with: slipway apply p (it carries"));
        plan.inputs = Some(carried());
        let line = how_to_apply(&plan, "p");
        assert!(
            line.starts_with("Apply it with: slipway apply p -var token=... ("),
            "{line}"
        );
        assert!(!line.contains("version"), "{line}");
    }

    /// A configuration loaded with these secret values (and a digest).
    fn read_secrets(values: &[(&str, &str)]) -> Config {
        Config {
            digest: "0123456789abcdef0123456789abcdef0123".into(),
            secret_values: values
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Config::default()
        }
    }

    #[test]
    fn a_plans_secrets_are_digests_that_match_only_the_same_values() {
        let config = read_secrets(&[("db", "hunter2-Zq9"), ("token", "tok-Zq9")]);
        let inputs = plan_inputs(&config, &PlanOptions::default());
        let names: Vec<&str> = inputs.secrets.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["db", "token"]);
        let document = serde_json::to_string(&inputs).unwrap();
        assert!(!document.contains("hunter2") && !document.contains("tok-Zq9"));
        // The same plan made twice is the same document.
        assert_eq!(inputs, plan_inputs(&config, &PlanOptions::default()));
        // The two digests differ even for equal values (salted by name).
        let same = read_secrets(&[("db", "x-Zq9"), ("token", "x-Zq9")]);
        let twins = plan_inputs(&same, &PlanOptions::default()).secrets;
        assert_ne!(twins[0].digest, twins[1].digest);

        assert!(check_secrets(&inputs, &config).is_empty());
        let rotated = read_secrets(&[("db", "hunter3-Zq9"), ("token", "tok-Zq9")]);
        let problems = check_secrets(&inputs, &rotated);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].starts_with("secret \"db\": the store now holds another value"),
            "{problems:?}"
        );
        assert!(!problems[0].contains("hunter"));
        let fewer = read_secrets(&[("token", "tok-Zq9")]);
        let problems = check_secrets(&inputs, &fewer);
        assert!(
            problems[0].contains("this apply does not use it"),
            "{problems:?}"
        );
        let more = read_secrets(&[("db", "hunter2-Zq9"), ("token", "tok-Zq9"), ("new", "n")]);
        let problems = check_secrets(&inputs, &more);
        assert!(
            problems[0].contains("the plan was made without it"),
            "{problems:?}"
        );
    }

    #[test]
    fn input_digests_depend_on_salt_name_and_value() {
        let value = serde_json::json!("s3cret");
        let digest = input_digest("a", "token", &value);
        assert_eq!(digest.len(), 64);
        assert!(!digest.contains("s3cret"));
        assert_ne!(digest, input_digest("b", "token", &value));
        assert_ne!(digest, input_digest("a", "other", &value));
        assert_ne!(
            digest,
            input_digest("a", "token", &serde_json::json!("s3cret2"))
        );
    }
}
