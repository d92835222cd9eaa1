//! Reading `secret` blocks: GetSecretValue from AWS Secrets Manager and
//! GetParameter (with decryption) from SSM Parameter Store.
//!
//! [`read_for`] reads, once, every secret that the deployments a run plans
//! use (`Deployment::secrets`, from a first load of the configuration), all
//! at once, and returns their values (a JSON secret's `json_key` taken) for
//! the second load, or one diagnostic per secret that could not be read,
//! naming the block, the store, the deployments using it and what to fix.
//! The CLI calls it before state is locked or any host is touched.
//!
//! Region and credentials come from the standard chain (`crate::aws`), a
//! block's `region` overriding the region; so does the endpoint
//! (`AWS_ENDPOINT_URL`, or per service `AWS_ENDPOINT_URL_SECRETS_MANAGER`
//! and `AWS_ENDPOINT_URL_SSM`).
//!
//! Not here: what a block means (`config::secrets`), evaluation, masking.
//! A value read is never printed, stored or put in an error.

use std::collections::{BTreeMap, BTreeSet};

use crate::config::secrets::{value_from_store, SecretSource, SecretSpec, SecretValues};
use crate::config::Config;
use crate::diagnostics::{Diagnostic, Diagnostics};

/// Why a secret could not be used: the store's answer, or the JSON key.
enum ReadProblem {
    Store(String),
    JsonKey(String),
}

/// The text `spec`'s store holds, read with `sdk`.
async fn read(spec: &SecretSpec, sdk: &aws_config::SdkConfig) -> Result<String, ReadProblem> {
    match &spec.source {
        SecretSource::SecretsManager {
            secret_id,
            version_stage,
        } => {
            let client = aws_sdk_secretsmanager::Client::new(sdk);
            let answer = client
                .get_secret_value()
                .secret_id(secret_id)
                .set_version_stage(version_stage.clone())
                .send()
                .await
                .map_err(|e| ReadProblem::Store(crate::aws::error_text(&e)))?;
            match (answer.secret_string, answer.secret_binary) {
                (Some(text), _) => Ok(text),
                (None, Some(_)) => Err(ReadProblem::Store(
                    "the secret holds binary data (SecretBinary), and slipway reads text only: \
                     store it as a secret string"
                        .to_string(),
                )),
                (None, None) => Err(ReadProblem::Store(
                    "the answer holds no secret string".to_string(),
                )),
            }
        }
        SecretSource::SsmParameter { name } => {
            let client = aws_sdk_ssm::Client::new(sdk);
            let answer = client
                .get_parameter()
                .name(name)
                .with_decryption(true)
                .send()
                .await
                .map_err(|e| ReadProblem::Store(crate::aws::error_text(&e)))?;
            answer
                .parameter
                .and_then(|p| p.value)
                .ok_or_else(|| ReadProblem::Store("the answer holds no value".to_string()))
        }
    }
}

/// The secrets the deployments of the environments `selected` (state names;
/// all when `None`) use, each with the addresses of those deployments.
fn secrets_used<'a>(
    config: &'a Config,
    selected: Option<&BTreeSet<String>>,
) -> Vec<(&'a SecretSpec, Vec<&'a str>)> {
    let mut users: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for deployment in config.deployments.values() {
        let state_name = crate::plan::planner::environment_state_name(&deployment.environment);
        if selected.is_some_and(|only| !only.contains(&state_name)) {
            continue;
        }
        for name in &deployment.secrets {
            users
                .entry(name.as_str())
                .or_default()
                .push(deployment.address.as_str());
        }
    }
    users
        .into_iter()
        .filter_map(|(name, users)| config.secrets.get(name).map(|spec| (spec, users)))
        .collect()
}

/// The secrets the deployments of the environments `selected` (state names;
/// all when `None`) use, each read once; or a diagnostic for each that
/// could not be read. Secrets no selected deployment uses are not read.
pub fn read_for(
    config: &Config,
    selected: Option<&BTreeSet<String>>,
) -> Result<SecretValues, Diagnostics> {
    let wanted = secrets_used(config, selected);
    if wanted.is_empty() {
        return Ok(SecretValues::new());
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            let mut found = Diagnostics::default();
            found.push(Diagnostic::error(
                "secret-read",
                format!("cannot start the runtime to read secrets: {error}"),
            ));
            return Err(found);
        }
    };
    let results = runtime.block_on(async {
        let mut sdk_configs = BTreeMap::new();
        for (spec, _) in &wanted {
            if !sdk_configs.contains_key(&spec.region) {
                let target = crate::aws::Target::new(spec.region.as_deref(), None);
                sdk_configs.insert(spec.region.clone(), crate::aws::sdk_config(&target).await);
            }
        }
        // One task per secret, so the reads run at once; awaited in order.
        let tasks: Vec<_> = wanted
            .iter()
            .map(|(spec, _)| {
                let spec = (*spec).clone();
                let sdk = sdk_configs[&spec.region].clone();
                tokio::spawn(async move {
                    let text = read(&spec, &sdk).await?;
                    value_from_store(&text, spec.json_key.as_deref())
                        .map_err(|e| ReadProblem::JsonKey(e.to_string()))
                })
            })
            .collect();
        let mut results = Vec::with_capacity(tasks.len());
        for task in tasks {
            results.push(task.await.unwrap_or_else(|error| {
                Err(ReadProblem::Store(format!("the read stopped: {error}")))
            }));
        }
        results
    });
    let mut values = SecretValues::new();
    let mut found = Diagnostics::default();
    for ((spec, users), result) in wanted.iter().zip(results) {
        match result {
            Ok(value) => {
                values.insert(spec.name.clone(), value);
            }
            Err(problem) => found.push(read_error(spec, users, problem)),
        }
    }
    if found.is_empty() {
        Ok(values)
    } else {
        Err(found)
    }
}

/// The error for a secret that could not be read or used, located at its
/// block.
fn read_error(spec: &SecretSpec, users: &[&str], problem: ReadProblem) -> Diagnostic {
    let (reason, help) = match problem {
        ReadProblem::Store(reason) => (
            reason,
            format!(
                "check the name, the region (the block's region, else AWS_REGION or the profile's) \
                 and the endpoint, and that the credentials allow {}",
                spec.permission()
            ),
        ),
        ReadProblem::JsonKey(reason) => (
            reason,
            "set json_key to one of the secret's keys, or remove it to use the whole secret"
                .to_string(),
        ),
    };
    Diagnostic::error(
        "secret-read",
        format!(
            "cannot read {} for {}: {reason}",
            spec.describe(),
            users.join(", ")
        ),
    )
    .at(spec.span)
    .help(help)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_secrets_of_the_selected_environments_deployments_are_wanted() {
        let dir = tempfile::tempdir().unwrap();
        let mut main = String::new();
        for name in ["a", "b", "c"] {
            main.push_str(&format!(
                "secret \"{name}\" {{\n  ssm_parameter = \"/{name}\"\n}}\n\n\
                 environment \"{name}\" {{\n  vm_hosts {{\n    transport = \"local\"\n    root = \"hosts\"\n    hosts = [\"{name}\"]\n  }}\n}}\n\n"
            ));
        }
        // a and b use their own secret, c uses a's; nothing uses secret c.
        for (service, secret) in [("a", "a"), ("b", "b"), ("c", "a")] {
            main.push_str(&format!(
                "service \"{service}\" {{\n  version = \"1\"\n  vm {{\n    install_dir = \"/opt/{service}\"\n    \
                 config_file \"f\" {{\n      destination = \"/opt/{service}/f\"\n      content = secret.{secret}\n    }}\n  }}\n}}\n\n\
                 deployment \"{service}\" {{\n  service = service.{service}\n  environment = environment.{service}\n}}\n\n"
            ));
        }
        std::fs::write(dir.path().join("main.hcl"), main).unwrap();
        let loaded = crate::config::load(dir.path(), &Default::default());
        let config = loaded.config.expect("loads");
        let wanted = |selected: Option<&[&str]>| -> Vec<(String, Vec<String>)> {
            let selected: Option<BTreeSet<String>> =
                selected.map(|names| names.iter().map(|n| n.to_string()).collect());
            secrets_used(&config, selected.as_ref())
                .into_iter()
                .map(|(spec, users)| {
                    (
                        spec.name.clone(),
                        users.into_iter().map(str::to_string).collect(),
                    )
                })
                .collect()
        };
        let pair = |name: &str, users: &[&str]| {
            (
                name.to_string(),
                users.iter().map(|u| u.to_string()).collect::<Vec<_>>(),
            )
        };
        assert_eq!(
            wanted(None),
            [
                pair("a", &["deployment.a", "deployment.c"]),
                pair("b", &["deployment.b"])
            ]
        );
        assert_eq!(wanted(Some(&["b"])), [pair("b", &["deployment.b"])]);
        assert_eq!(wanted(Some(&["c"])), [pair("a", &["deployment.c"])]);
        // Nothing to read: no request, no runtime.
        assert!(read_for(&config, Some(&BTreeSet::new()))
            .unwrap()
            .is_empty());
    }
}
