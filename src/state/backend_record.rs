//! What `slipway init` records of the state backend it set up
//! (`.slipway/backend.json` in the configuration directory), and the rule
//! built on it: a configuration naming another backend is refused until
//! `init` runs again, because planning against an empty new backend would
//! deploy everything as new.
//!
//! Not here: opening a backend, or copying state between backends
//! (`init -migrate-state` does that through [`super::ops`]).

use std::path::{Path, PathBuf};

use crate::config::Backend as BackendConfig;

use super::LocalBackend;

/// Where the record is kept, relative to the configuration directory.
pub const RECORD_PATH: &str = ".slipway/backend.json";

/// Why the record cannot be used, or why the configured backend is refused.
#[derive(Debug, thiserror::Error)]
pub enum BackendRecordError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is unreadable ({source}); delete it and run `slipway init` again", path.display())]
    Unreadable {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the state backend changed since `slipway init`: it was {recorded}, the configuration \
         now names {configured}. Run `slipway init -migrate-state {dir}` to copy the state of \
         every environment to the new backend, or `slipway init -reconfigure {dir}` to use it \
         as it is (the old state stays where it is)",
        dir = dir.display()
    )]
    Changed {
        recorded: String,
        configured: String,
        dir: PathBuf,
    },
}

/// The configured backend against the recorded one.
#[derive(Debug, Clone, PartialEq)]
pub enum Recorded {
    /// `init` recorded nothing here (never run, or before records existed).
    Nothing,
    /// The configured backend is the recorded one.
    Same,
    /// The configuration names another backend than this recorded one.
    Other(BackendConfig),
}

/// The backend the last `init` recorded for `config_dir`, if any.
pub fn read(config_dir: &Path) -> Result<Option<BackendConfig>, BackendRecordError> {
    let path = config_dir.join(RECORD_PATH);
    let text = match std::fs::read(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(BackendRecordError::Read { path, source }),
    };
    serde_json::from_slice(&text)
        .map(Some)
        .map_err(|source| BackendRecordError::Unreadable { path, source })
}

/// Record `backend` as the one `init` set up for `config_dir`.
pub fn write(config_dir: &Path, backend: &BackendConfig) -> Result<(), BackendRecordError> {
    let path = config_dir.join(RECORD_PATH);
    let written = path
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| {
            let mut text = serde_json::to_vec_pretty(backend).map_err(std::io::Error::other)?;
            text.push(b'\n');
            std::fs::write(&path, text)
        });
    written.map_err(|source| BackendRecordError::Write { path, source })
}

/// `configured` against what `init` recorded for `config_dir`.
pub fn compare(
    config_dir: &Path,
    configured: &BackendConfig,
) -> Result<Recorded, BackendRecordError> {
    Ok(match read(config_dir)? {
        None => Recorded::Nothing,
        Some(recorded) if &recorded == configured => Recorded::Same,
        Some(recorded) => Recorded::Other(recorded),
    })
}

/// Refuse `configured` when `init` recorded another backend for `config_dir`.
pub fn check_unchanged(
    config_dir: &Path,
    configured: &BackendConfig,
) -> Result<(), BackendRecordError> {
    match compare(config_dir, configured)? {
        Recorded::Nothing | Recorded::Same => Ok(()),
        Recorded::Other(recorded) => Err(BackendRecordError::Changed {
            recorded: describe(config_dir, &recorded),
            configured: describe(config_dir, configured),
            dir: config_dir.to_path_buf(),
        }),
    }
}

/// A backend block in words, without connecting to it.
pub fn describe(config_dir: &Path, backend: &BackendConfig) -> String {
    match backend {
        BackendConfig::Local { path } => {
            super::Backend::describe(&LocalBackend::new(config_dir.join(path)))
        }
        BackendConfig::S3 {
            bucket,
            prefix,
            endpoint,
            ..
        } => match endpoint {
            Some(endpoint) => format!("s3://{bucket}/{prefix} at {endpoint}"),
            None => format!("s3://{bucket}/{prefix}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s3(bucket: &str) -> BackendConfig {
        BackendConfig::S3 {
            bucket: bucket.into(),
            prefix: "slipway/".into(),
            region: None,
            endpoint: Some("http://127.0.0.1:5000".into()),
            profile: None,
        }
    }

    #[test]
    fn a_recorded_backend_reads_back_and_another_one_is_refused_until_init() {
        let dir = tempfile::tempdir().unwrap();
        let local = BackendConfig::Local {
            path: "state".into(),
        };
        assert_eq!(compare(dir.path(), &local).unwrap(), Recorded::Nothing);
        check_unchanged(dir.path(), &s3("any")).expect("nothing recorded: any backend");

        write(dir.path(), &local).unwrap();
        assert_eq!(read(dir.path()).unwrap(), Some(local.clone()));
        assert_eq!(compare(dir.path(), &local).unwrap(), Recorded::Same);
        check_unchanged(dir.path(), &local).expect("the recorded backend");

        assert_eq!(
            compare(dir.path(), &s3("releases")).unwrap(),
            Recorded::Other(local)
        );
        let refused = check_unchanged(dir.path(), &s3("releases")).unwrap_err();
        let text = refused.to_string();
        assert!(
            text.starts_with("the state backend changed since `slipway init`: it was ")
                && text.contains(
                    "the configuration now names s3://releases/slipway/ at http://127.0.0.1:5000"
                )
                && text.contains(&format!(
                    "`slipway init -migrate-state {}`",
                    dir.path().display()
                )),
            "{text}"
        );
    }

    #[test]
    fn an_unreadable_record_names_its_file_and_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(".slipway")).unwrap();
        std::fs::write(dir.path().join(RECORD_PATH), "{\"name\": \"ftp\"}").unwrap();
        let text = read(dir.path()).unwrap_err().to_string();
        assert!(
            text.contains("backend.json is unreadable (")
                && text.ends_with("delete it and run `slipway init` again"),
            "{text}"
        );
    }
}
