//! `secret` blocks: values kept in AWS Secrets Manager or SSM Parameter
//! Store, referred to as `secret.NAME` and always sensitive.
//!
//! Here: what a block names ([`SecretSpec`], checked when the configuration
//! is loaded), how the text a store returned becomes the value `secret.NAME`
//! has ([`value_from_store`]: the whole text, or one key of a JSON object;
//! [`JsonKeyError`] when the key cannot be read), and the values a run read ([`SecretValues`]), which the loader takes as
//! plain data.
//!
//! Not here: reading a store (`crate::secret_store`, with the `aws` feature,
//! called by the CLI between two loads: the first says which deployments use
//! which secret, the second evaluates with the values read), evaluation
//! (`load`), masking (`taint`, `Config::mask`). Nothing here does I/O.

use std::collections::BTreeMap;

use crate::diagnostics::Span;

/// Where a secret is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// `aws_secrets_manager = "NAME or ARN"`, with `version_stage` when set
    /// (else the store's `AWSCURRENT`).
    SecretsManager {
        secret_id: String,
        version_stage: Option<String>,
    },
    /// `ssm_parameter = "/NAME"`, read with decryption (a `SecureString`'s
    /// plain text).
    SsmParameter { name: String },
}

/// One `secret "NAME" { ... }` block as written (no value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretSpec {
    /// The block's label: `secret.NAME`.
    pub name: String,
    pub source: SecretSource,
    /// One key of a secret that is a JSON object.
    pub json_key: Option<String>,
    /// The region to read from; else the standard chain's.
    pub region: Option<String>,
    /// The block's header, for diagnostics.
    pub span: Span,
}

impl SecretSpec {
    /// `secret "db" (Secrets Manager secret "prod/db", key "password")`.
    pub fn describe(&self) -> String {
        let source = match &self.source {
            SecretSource::SecretsManager {
                secret_id,
                version_stage,
            } => match version_stage {
                Some(stage) => {
                    format!("Secrets Manager secret {secret_id:?}, version stage {stage:?}")
                }
                None => format!("Secrets Manager secret {secret_id:?}"),
            },
            SecretSource::SsmParameter { name } => format!("SSM parameter {name:?}"),
        };
        let key = match &self.json_key {
            Some(key) => format!(", key {key:?}"),
            None => String::new(),
        };
        format!("secret \"{}\" ({source}{key})", self.name)
    }

    /// What the caller needs to be allowed, for an error's help.
    pub fn permission(&self) -> &'static str {
        match self.source {
            SecretSource::SecretsManager { .. } => {
                "secretsmanager:GetSecretValue (and kms:Decrypt when the secret uses a customer managed key)"
            }
            SecretSource::SsmParameter { .. } => {
                "ssm:GetParameter (and kms:Decrypt for a SecureString's key)"
            }
        }
    }
}

/// The values read in this run, by block name: what `secret.NAME` is. A
/// secret that was not read (by `validate`, or one no deployment of the run
/// uses) is not here, and `secret.NAME` is the empty string.
pub type SecretValues = BTreeMap<String, String>;

/// The value of `secret.NAME` from the text the store returned: all of it,
/// or with `json_key`, that key of the JSON object it holds (a string as it
/// is, a number or bool as its JSON text). The error never repeats the
/// secret; it names the keys the object has, which say what to write.
pub fn value_from_store(text: &str, json_key: Option<&str>) -> Result<String, JsonKeyError> {
    let Some(key) = json_key else {
        return Ok(text.to_string());
    };
    let object = match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Object(object)) => object,
        Ok(_) | Err(_) => {
            return Err(JsonKeyError::NotAnObject {
                key: key.to_string(),
            })
        }
    };
    match object.get(key) {
        Some(serde_json::Value::String(value)) => Ok(value.clone()),
        Some(value @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_))) => {
            Ok(value.to_string())
        }
        Some(_) => Err(JsonKeyError::NotAScalar {
            key: key.to_string(),
        }),
        None => Err(JsonKeyError::NoKey {
            key: key.to_string(),
            keys: object.keys().cloned().collect(),
        }),
    }
}

/// Why a secret's `json_key` cannot be read from the text the store
/// returned. No variant holds the secret's value: only the key asked for
/// and the names of the keys there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonKeyError {
    /// The secret is not a JSON object.
    #[error(
        "json_key {key:?} needs a secret that is a JSON object, and this one is not \
         (its text is not shown)"
    )]
    NotAnObject { key: String },
    /// The key holds an array, an object or null.
    #[error("key {key:?} of the secret's JSON object is not a string, number or bool")]
    NotAScalar { key: String },
    /// The object has no such key; `keys` are the ones it has.
    #[error("the secret's JSON object has no key {key:?} (its keys: {})", describe_keys(.keys))]
    NoKey { key: String, keys: Vec<String> },
}

/// The keys an object has, quoted, for [`JsonKeyError::NoKey`].
fn describe_keys(keys: &[String]) -> String {
    if keys.is_empty() {
        "none".to_string()
    } else {
        keys.iter()
            .map(|k| format!("{k:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_json_key_the_whole_text_is_the_value() {
        let text = "{\"password\":\"p\"}\n";
        assert_eq!(value_from_store(text, None).unwrap(), text);
        assert_eq!(value_from_store("plain", None).unwrap(), "plain");
    }

    #[test]
    fn json_key_takes_one_key_of_a_json_object() {
        let text = r#"{"username":"app","password":"pa\"ss\nword","port":5432,"tls":true}"#;
        assert_eq!(
            value_from_store(text, Some("password")).unwrap(),
            "pa\"ss\nword"
        );
        assert_eq!(value_from_store(text, Some("port")).unwrap(), "5432");
        assert_eq!(value_from_store(text, Some("tls")).unwrap(), "true");
    }

    #[test]
    fn a_missing_key_names_the_keys_there_and_not_the_values() {
        let text = r#"{"username":"app","password":"hunter2-Zq9"}"#;
        let error = value_from_store(text, Some("passwd"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("no key \"passwd\""), "{error}");
        assert!(error.contains("\"username\", \"password\""), "{error}");
        assert!(!error.contains("hunter2"), "{error}");
    }

    #[test]
    fn a_secret_that_is_not_a_json_object_is_refused_without_repeating_it() {
        for text in ["hunter2-Zq9", "[\"hunter2-Zq9\"]", "\"hunter2-Zq9\"", ""] {
            let error = value_from_store(text, Some("password"))
                .unwrap_err()
                .to_string();
            assert!(error.contains("not a JSON object") || error.contains("is not"));
            assert!(!error.contains("hunter2"), "{error}");
        }
        let error = value_from_store(r#"{"password":{"v":"hunter2-Zq9"}}"#, Some("password"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("not a string"), "{error}");
        assert!(!error.contains("hunter2"), "{error}");
    }

    #[test]
    fn descriptions_name_the_block_the_store_and_the_key() {
        let spec = SecretSpec {
            name: "db".into(),
            source: SecretSource::SecretsManager {
                secret_id: "prod/db".into(),
                version_stage: None,
            },
            json_key: Some("password".into()),
            region: None,
            span: Span::new(0, 0..0),
        };
        assert_eq!(
            spec.describe(),
            "secret \"db\" (Secrets Manager secret \"prod/db\", key \"password\")"
        );
        let ssm = SecretSpec {
            name: "token".into(),
            source: SecretSource::SsmParameter {
                name: "/prod/token".into(),
            },
            json_key: None,
            ..spec
        };
        assert_eq!(
            ssm.describe(),
            "secret \"token\" (SSM parameter \"/prod/token\")"
        );
    }
}
