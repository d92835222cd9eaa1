//! Saved state: storing, reading and locking the state of each environment.
//!
//! A [`Backend`] keeps one [`State`] per environment. Writes are atomic and keep
//! the previous file as a backup; a lock makes sure only one slipway process
//! changes an environment at a time. [`local::LocalBackend`] stores everything
//! in a directory on this machine; a remote backend implements the same trait.
//!
//! This module does not decide what a state should contain (planning and
//! applying do that), does not talk to deployment targets, and never holds
//! secrets: it stores whatever [`State`] it is given.

pub mod local;
pub mod lock;
pub mod model;

use std::fmt;
use std::path::{Path, PathBuf};

pub use local::LocalBackend;
pub use lock::{LockGuard, LockInfo};
pub use model::*;

/// Where the state of each environment is stored.
pub trait Backend: Send + Sync {
    /// Where this backend keeps its files, for messages (e.g. "local directory state/").
    fn describe(&self) -> String;
    /// Environments that have a state file, sorted by name.
    fn environments(&self) -> Result<Vec<String>, StateError>;
    /// The state of `environment`, or `None` when it has never been written.
    fn read(&self, environment: &str) -> Result<Option<State>, StateError>;
    /// Persist: increments serial, writes atomically, keeps the previous file as a backup.
    fn write(&self, state: &mut State) -> Result<(), StateError>;
    /// Take the lock of `environment` for `operation` (e.g. "apply").
    /// The lock is held until the returned guard is dropped or released.
    fn lock(&self, environment: &str, operation: &str) -> Result<LockGuard, StateError>;
    /// Who holds the lock of `environment`, if anyone.
    fn current_lock(&self, environment: &str) -> Result<Option<LockInfo>, StateError>;
    /// Remove the lock of `environment` left behind by a process that is gone.
    /// `lock_id` must match the id of the current lock.
    fn force_unlock(&self, environment: &str, lock_id: &str) -> Result<(), StateError>;
}

/// Everything that can go wrong while storing, reading or locking state.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(
        "invalid environment name {name:?}: use only letters, digits, '-' and '_' \
         (the name is used as a file name)"
    )]
    InvalidEnvironmentName { name: String },

    #[error("could not {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "state file {} is unreadable ({detail}). It was left as is; {}",
        path.display(),
        corrupt_advice(path, backup.as_deref())
    )]
    Corrupt {
        path: PathBuf,
        detail: String,
        /// The backup next to the file, if it exists and holds a readable state.
        backup: Option<PathBuf>,
    },

    #[error(
        "state file {} was written by a newer slipway (state format version {found}; \
         this slipway reads up to version {supported}). Upgrade slipway to a release \
         that supports state format version {found}; the file was left as is",
        path.display()
    )]
    TooNew {
        path: PathBuf,
        found: u32,
        supported: u32,
    },

    #[error(
        "state file {} belongs to environment {found:?}, not {expected:?}; it was probably \
         copied or renamed by hand. Rename it back, or fix its \"environment\" field",
        path.display()
    )]
    EnvironmentMismatch {
        path: PathBuf,
        expected: String,
        found: String,
    },

    #[error("could not encode the state of environment {environment:?} as JSON: {source}")]
    Encode {
        environment: String,
        #[source]
        source: serde_json::Error,
    },

    #[error("{}", locked_message(.0))]
    Locked(Box<LockInfo>),

    #[error(
        "lock file {} is unreadable ({detail}). If no slipway process is working on \
         environment {environment:?}, delete that file",
        path.display()
    )]
    LockUnreadable {
        environment: String,
        path: PathBuf,
        detail: String,
    },

    #[error(
        "state of environment {environment:?} is locked with id {actual}, not {given}; \
         nothing was unlocked. Check with its holder before running: {}",
        force_unlock_command(environment, actual)
    )]
    LockIdMismatch {
        environment: String,
        given: String,
        actual: String,
    },

    #[error("state of environment {environment:?} is not locked; there is nothing to unlock")]
    NotLocked { environment: String },
}

/// Check that `name` is safe to use as a file name: only `[A-Za-z0-9_-]`, not empty.
pub fn validate_environment_name(name: &str) -> Result<(), StateError> {
    let is_allowed = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    if name.is_empty() || !name.chars().all(is_allowed) {
        return Err(StateError::InvalidEnvironmentName {
            name: name.to_string(),
        });
    }
    Ok(())
}

/// The command that removes a stale lock, as shown to the user.
pub fn force_unlock_command(environment: &str, lock_id: &str) -> String {
    format!("slipway force-unlock -environment {environment} {lock_id}")
}

fn locked_message(holder: &LockInfo) -> String {
    format!(
        "state of environment {:?} is locked by {}@{} (pid {}) since {}, operation {:?}, \
         lock id {}. If that process is gone, run: {}",
        holder.environment,
        holder.who,
        holder.host,
        holder.pid,
        holder.created,
        holder.operation,
        holder.id,
        force_unlock_command(&holder.environment, &holder.id)
    )
}

fn corrupt_advice(path: &Path, backup: Option<&Path>) -> impl fmt::Display {
    match backup {
        Some(backup) => format!(
            "the last good backup is {}: check it, then copy it over {} to restore it",
            backup.display(),
            path.display()
        ),
        None => "there is no readable backup, so repair the file by hand".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_environment_names() {
        for name in ["prod", "staging-eu", "dev_2", "A-b_C-9"] {
            assert!(validate_environment_name(name).is_ok(), "{name}");
        }
    }

    #[test]
    fn rejects_environment_names_that_are_not_plain_file_names() {
        for name in [
            "",
            "..",
            "../prod",
            "prod/x",
            "prod\\x",
            "prod.json",
            "pr od",
            "prod\0",
            "prød",
            ".hidden",
        ] {
            let error = validate_environment_name(name).expect_err(name);
            assert!(
                matches!(error, StateError::InvalidEnvironmentName { .. }),
                "{name}: {error}"
            );
            assert!(error.to_string().contains("letters, digits"), "{error}");
        }
    }

    #[test]
    fn backend_is_object_safe() {
        fn takes_backend(_: &dyn Backend) {}
        let dir = std::env::temp_dir();
        takes_backend(&LocalBackend::new(dir));
    }
}
