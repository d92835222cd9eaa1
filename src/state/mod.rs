//! Saved state: storing, reading and locking the state of each environment.
//!
//! A [`Backend`] keeps one [`State`] per environment. Writes are atomic and keep
//! the previous file as a backup; a lock makes sure only one slipway process
//! changes an environment at a time. [`local::LocalBackend`] stores everything
//! in a directory on this machine; [`s3::S3Backend`] in an S3 bucket, with
//! conditional writes for the lock and for every state write. [`ops`] holds
//! what the state commands do (push, rm, migrate, history), written against
//! the trait only, so every command works the same on every backend.
//!
//! This module does not decide what a state should contain (planning and
//! applying do that), does not talk to deployment targets, and never holds
//! secrets: it stores whatever [`State`] it is given.

pub mod backend_record;
pub mod delta;
pub mod local;
pub mod lock;
pub mod model;
pub mod ops;
#[cfg(feature = "aws")]
pub mod s3;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use delta::{HostRow, ReplayError, StateDelta, Touched};
pub use local::LocalBackend;
pub use lock::{lock_with_timeout, LockGuard, LockInfo};
pub use model::*;
#[cfg(feature = "aws")]
pub use s3::{S3Backend, S3Settings};

/// Where the state of each environment is stored.
pub trait Backend: Send + Sync {
    /// Where this backend keeps its files, for messages (e.g. "local directory state/").
    fn describe(&self) -> String;
    /// Environments that have a state file, sorted by name.
    fn environments(&self) -> Result<Vec<String>, StateError>;
    /// The state of `environment`, or `None` when it has never been written.
    fn read(&self, environment: &str) -> Result<Option<State>, StateError>;
    /// Persist: increments serial, writes atomically, keeps the previous file as a backup.
    ///
    /// A backend that can tell (S3) refuses, with [`StateError::Conflict`], a
    /// write that would replace a state someone else wrote after this backend
    /// last read or wrote it.
    fn write(&self, state: &mut State) -> Result<(), StateError>;
    /// Persist a write that changed only the records `touched` names (a
    /// host's record, journal entries), with the same guarantees as
    /// [`Backend::write`]: the serial is incremented and, once this
    /// returns, a read gives `state`. A backend that can store just those
    /// records does ([`LocalBackend`] appends a [`StateDelta`] to a file
    /// beside the state), so a step's write does not grow with the fleet;
    /// the default writes the whole state.
    fn append(&self, state: &mut State, touched: &Touched) -> Result<(), StateError> {
        let _ = touched;
        self.write(state)
    }
    /// Store `state` exactly as given, serial included, with the same
    /// atomicity and conflict checks as [`Backend::write`]. For copying state
    /// between backends (`slipway init -migrate-state`), where the copy must
    /// be the same state, not a newer one.
    fn import(&self, state: &State) -> Result<(), StateError>;
    /// Take the lock of `environment` for `operation` (e.g. "apply").
    /// The lock is held until the returned guard is dropped or released.
    fn lock(&self, environment: &str, operation: &str) -> Result<LockGuard, StateError>;
    /// Who holds the lock of `environment`, if anyone.
    fn current_lock(&self, environment: &str) -> Result<Option<LockInfo>, StateError>;
    /// Remove the lock of `environment` left behind by a process that is gone.
    /// `lock_id` must match the id of the current lock.
    fn force_unlock(&self, environment: &str, lock_id: &str) -> Result<(), StateError>;
    /// Who the credentials this backend writes with belong to, when it can
    /// tell (S3: the AWS caller identity's ARN); `None` when it cannot
    /// (the local backend), `Some(Err)` when asking failed.
    fn verified_identity(&self) -> Option<Result<String, IdentityError>> {
        None
    }
}

/// Why a backend could not say who its credentials belong to
/// ([`Backend::verified_identity`]).
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The request failed (the SDK's message).
    #[error("{0}")]
    Request(String),
    /// The answer names no ARN.
    #[error("the answer names no ARN")]
    NoArn,
    /// The backend could not make the request at all.
    #[error(transparent)]
    Backend(#[from] StateError),
}

/// Why an approval cannot be given or refused (`slipway approve` and
/// `slipway reject`, [`ops::decide_approval`]); nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum ApprovalError {
    /// The approval of this version was decided already.
    #[error(
        "{address} does not wait for an approval: \"{name}\" of {version} was already {decision} by {by}"
    )]
    AlreadyDecided {
        address: String,
        name: String,
        version: String,
        /// "approved" or "rejected".
        decision: &'static str,
        by: String,
    },
    /// The deployment waits for no approval.
    #[error(
        "{address} does not wait for an approval (version {version}, status {status:?}); `slipway plan` shows where it stands"
    )]
    NotWaiting {
        address: String,
        version: String,
        status: DeploymentStatus,
    },
    /// The approval named is not the one the deployment waits for.
    #[error("{address} waits for approval \"{waiting}\", not \"{given}\"")]
    OtherApproval {
        address: String,
        waiting: String,
        given: String,
    },
    /// Whoever decides is not one of the approval's `approvers`.
    #[error(
        "approval \"{name}\" of {address} may be decided by {} only, not by {who}",
        .approvers.join(", ")
    )]
    NotAnApprover {
        name: String,
        address: String,
        approvers: Vec<String>,
        who: String,
    },
    /// The environment has no state.
    #[error("environment {environment} has no state")]
    NoState { environment: String },
    /// The deployment is not in the environment's state.
    #[error("{address} is not in the state of environment {environment}")]
    NotInState {
        address: String,
        environment: String,
    },
    /// State could not be read or written.
    #[error(transparent)]
    State(#[from] StateError),
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

    #[error(
        "gave up after waiting {} for the lock: {}",
        waiting_time(*.waited),
        locked_message(.holder)
    )]
    LockTimeout {
        waited: Duration,
        holder: Box<LockInfo>,
    },

    #[error(
        "the state of environment {environment:?} ({location}) was changed by someone else \
         since slipway read it, so it was not overwritten and nothing of theirs was lost. \
         Re-run `slipway plan` to see the state as it is now"
    )]
    Conflict {
        environment: String,
        location: String,
    },

    #[error("could not {action} {location}: {detail}")]
    Remote {
        action: &'static str,
        location: String,
        detail: String,
    },

    #[error(
        "the state journal {} (the steps recorded since {} was last written whole) \
         {problem}. Nothing was changed. {advice}",
        journal.display(),
        state.display()
    )]
    Journal {
        journal: PathBuf,
        state: PathBuf,
        problem: String,
        advice: &'static str,
    },

    #[error(transparent)]
    LineageMismatch(Box<LineageMismatch>),

    #[error(transparent)]
    OlderSerial(Box<OlderSerial>),
}

/// A state would replace one of another lineage (push, migrate).
#[derive(Debug, thiserror::Error)]
#[error(
    "refusing to {action}: the state of environment {environment:?} in {location} has \
     lineage {existing}, the incoming state has lineage {incoming}, so they are states of \
     different deployments and one would replace the other. {remedy}"
)]
pub struct LineageMismatch {
    pub action: &'static str,
    pub environment: String,
    pub location: String,
    pub existing: String,
    pub incoming: String,
    pub remedy: String,
}

/// A state would replace a newer one of the same lineage (push, migrate).
#[derive(Debug, thiserror::Error)]
#[error(
    "refusing to {action}: the state of environment {environment:?} in {location} has \
     serial {existing}, and the incoming state has serial {incoming}, so writing it would \
     lose changes recorded there. {remedy}"
)]
pub struct OlderSerial {
    pub action: &'static str,
    pub environment: String,
    pub location: String,
    pub existing: u64,
    pub incoming: u64,
    pub remedy: String,
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

fn waiting_time(waited: Duration) -> String {
    if waited.subsec_millis() == 0 {
        format!("{}s", waited.as_secs())
    } else {
        format!("{:.1}s", waited.as_secs_f64())
    }
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

/// The JSON text of a state as stored: pretty, version first, newline at the end.
pub fn encode_state(state: &State) -> Result<Vec<u8>, StateError> {
    let mut contents = serde_json::to_vec_pretty(state).map_err(|source| StateError::Encode {
        environment: state.environment.clone(),
        source,
    })?;
    contents.push(b'\n');
    Ok(contents)
}

/// Parse a stored state. `path` names where it came from in messages;
/// `environment`, when given, is the environment it must belong to;
/// `backup` is asked for a readable backup only when the contents are corrupt.
pub fn decode_state(
    contents: &[u8],
    environment: Option<&str>,
    path: &Path,
    backup: impl FnOnce() -> Option<PathBuf>,
) -> Result<State, StateError> {
    let mut backup = Some(backup);
    let mut corrupt = |detail: String| StateError::Corrupt {
        path: path.to_path_buf(),
        detail,
        backup: backup.take().and_then(|find| find()),
    };

    // Check the format version before the shape, so that a file from a
    // newer slipway is reported as such rather than as corrupt.
    /// Only the format version; every other field is skipped unparsed.
    #[derive(serde::Deserialize)]
    struct Header {
        version: Option<serde_json::Number>,
    }
    if contents.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(corrupt(
            "not a JSON object with a \"version\" field".to_string(),
        ));
    }
    let header: Header = match serde_json::from_slice(contents) {
        Ok(header) => header,
        Err(error) => return Err(corrupt(error.to_string())),
    };
    let Some(version) = header.version.and_then(|v| v.as_u64()) else {
        return Err(corrupt("no numeric \"version\" field".to_string()));
    };
    if version > u64::from(STATE_VERSION) {
        return Err(StateError::TooNew {
            path: path.to_path_buf(),
            found: u32::try_from(version).unwrap_or(u32::MAX),
            supported: STATE_VERSION,
        });
    }

    let state: State = match serde_json::from_slice(contents) {
        Ok(state) => state,
        Err(error) => return Err(corrupt(error.to_string())),
    };
    if let Some(environment) = environment {
        if state.environment != environment {
            return Err(StateError::EnvironmentMismatch {
                path: path.to_path_buf(),
                expected: environment.to_string(),
                found: state.environment,
            });
        }
    }
    Ok(state)
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
