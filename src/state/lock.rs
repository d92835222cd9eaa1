//! Locks that keep two slipway processes from changing one environment at once.
//!
//! [`LockInfo`] describes a lock holder; [`LockGuard`] holds a lock and
//! releases it when dropped. The local lock is a file created with
//! `create_new`, so exactly one process can create it; it contains the
//! holder's [`LockInfo`] as JSON. Every held lock is also registered here, so
//! that [`release_held_locks`] can release them all: the signal handler
//! (`crate::signals`, which the CLI installs before it takes a lock) does so on
//! Ctrl-C (or SIGTERM, SIGHUP) before the process exits; only SIGKILL or a
//! crash leaves a lock behind. Waiting for a lock is [`lock_with_timeout`]'s
//! choice, never `lock`'s. A stale lock of someone else is never removed on
//! its own: only by an explicit force-unlock with the right id, or by a caller
//! that checked with [`holder_is_gone`] that its process provably no longer
//! exists.
//!
//! Not here: signals. This module knows nothing of them; it only keeps the
//! registry the handler releases.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::state::{Backend, StateError};

/// Who holds the lock of an environment, and since when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInfo {
    /// Random id; force-unlock must name it.
    pub id: String,
    pub environment: String,
    /// What the holder is doing, e.g. "apply".
    pub operation: String,
    /// User name of the holder.
    pub who: String,
    pub host: String,
    pub pid: u32,
    /// When the lock was taken, RFC 3339 in UTC.
    pub created: String,
}

impl LockInfo {
    /// A new lock description for this process, with a fresh id.
    pub fn for_this_process(environment: &str, operation: &str) -> LockInfo {
        LockInfo {
            id: uuid::Uuid::new_v4().to_string(),
            environment: environment.to_string(),
            operation: operation.to_string(),
            who: current_user(),
            host: current_host(),
            pid: std::process::id(),
            created: now_rfc3339(),
        }
    }
}

impl fmt::Display for LockInfo {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "{}@{} (pid {}) since {}, operation {:?}, lock id {}",
            self.who, self.host, self.pid, self.created, self.operation, self.id
        )
    }
}

/// A lock release that may fail; run at most once.
type Release = Box<dyn FnOnce() -> Result<(), StateError> + Send>;

/// The release of one held lock, shared by its guard and
/// [`release_held_locks`]; whichever comes first runs it, the other finds
/// `None`. The mutex is held while the release runs, so a signal that arrives
/// during a release waits for it instead of exiting under it.
type SharedRelease = Arc<Mutex<Option<Release>>>;

/// A held lock. Dropping it releases the lock; [`LockGuard::release`] does the
/// same and reports whether that worked. While it is held,
/// [`release_held_locks`] releases it too: the signal handler does on Ctrl-C,
/// SIGTERM or SIGHUP, before the process exits.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct LockGuard {
    info: LockInfo,
    release: SharedRelease,
    /// Key in [`HELD`].
    key: u64,
}

impl LockGuard {
    /// A guard for `info` that runs `release` once, when released or dropped,
    /// or by [`release_held_locks`].
    pub fn new(
        info: LockInfo,
        release: impl FnOnce() -> Result<(), StateError> + Send + 'static,
    ) -> LockGuard {
        let release: SharedRelease = Arc::new(Mutex::new(Some(Box::new(release))));
        let key = NEXT_KEY.fetch_add(1, Ordering::Relaxed);
        held()
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key, (info.clone(), Arc::clone(&release)));
        LockGuard { info, release, key }
    }

    /// The lock this guard holds.
    pub fn info(&self) -> &LockInfo {
        &self.info
    }

    /// Release the lock now, reporting a failure that dropping would ignore.
    pub fn release(self) -> Result<(), StateError> {
        self.run_release()
    }

    fn run_release(&self) -> Result<(), StateError> {
        let result = run_shared_release(&self.release);
        held()
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.key);
        result
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        // Nothing useful can be done with a failure here; a lock that could
        // not be removed is reported by the next `lock` with its holder.
        let _ = self.run_release();
    }
}

impl fmt::Debug for LockGuard {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let released = self
            .release
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_none();
        formatter
            .debug_struct("LockGuard")
            .field("info", &self.info)
            .field("released", &released)
            .finish()
    }
}

fn run_shared_release(release: &SharedRelease) -> Result<(), StateError> {
    let mut slot = release.lock().unwrap_or_else(PoisonError::into_inner);
    match slot.take() {
        Some(release) => release(),
        None => Ok(()),
    }
}

/// Every lock this process holds, by guard key.
fn held() -> &'static Mutex<BTreeMap<u64, (LockInfo, SharedRelease)>> {
    static HELD: OnceLock<Mutex<BTreeMap<u64, (LockInfo, SharedRelease)>>> = OnceLock::new();
    HELD.get_or_init(|| Mutex::new(BTreeMap::new()))
}

static NEXT_KEY: AtomicU64 = AtomicU64::new(0);

/// Locks being taken right now: created in the store, guard not made yet.
static ACQUIRING: AtomicUsize = AtomicUsize::new(0);

/// Marks a lock acquisition in progress, so that [`release_held_locks`]
/// called (on a signal) between creating the lock and registering its guard
/// waits for the guard (and releases it) instead of leaving the lock behind.
pub struct Acquiring(());

impl Acquiring {
    /// Call before creating the lock; drop after the guard exists.
    pub fn start() -> Acquiring {
        ACQUIRING.fetch_add(1, Ordering::SeqCst);
        Acquiring(())
    }
}

impl Drop for Acquiring {
    fn drop(&mut self) {
        ACQUIRING.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Release every lock this process holds, now. Returns what was released
/// (or failed to be). The signal handler (`crate::signals`) calls it before
/// the process exits; a command that handles signals itself may call it
/// before it exits.
pub fn release_held_locks() -> Vec<(LockInfo, Result<(), StateError>)> {
    release_held_locks_where(|_| true)
}

/// [`release_held_locks`], for the locks `chosen` picks only.
fn release_held_locks_where(
    chosen: impl Fn(&LockInfo) -> bool,
) -> Vec<(LockInfo, Result<(), StateError>)> {
    // A lock being taken right now gets its guard in a moment: wait for it.
    let deadline = Instant::now() + Duration::from_secs(10);
    while ACQUIRING.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
    let locks: Vec<(u64, LockInfo, SharedRelease)> = held()
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .filter(|(_, (info, _))| chosen(info))
        .map(|(key, (info, release))| (*key, info.clone(), Arc::clone(release)))
        .collect();
    let mut released = Vec::new();
    for (key, info, release) in locks {
        let result = run_shared_release(&release);
        held()
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&key);
        released.push((info, result));
    }
    released
}

/// Whether the process that took `holder` provably no longer runs: it ran on
/// this machine (same host name) and no live process has its pid now.
/// Anything less certain (another machine, an unknown host name, a platform
/// without `/proc`) is not proof.
pub fn holder_is_gone(holder: &LockInfo) -> bool {
    let here = current_host();
    here != "unknown"
        && holder.host == here
        && holder.pid != std::process::id()
        && process_is_gone(holder.pid)
}

/// Remove the lock of `environment` when its holder provably no longer runs
/// ([`holder_is_gone`]), so that it can be taken: the holder whose lock was
/// removed, or `None` when there is no lock or its holder may still run.
pub fn take_over_if_gone(
    backend: &dyn Backend,
    environment: &str,
) -> Result<Option<LockInfo>, StateError> {
    match backend.current_lock(environment)? {
        Some(holder) if holder_is_gone(&holder) => {
            backend.force_unlock(environment, &holder.id)?;
            Ok(Some(holder))
        }
        _ => Ok(None),
    }
}

#[cfg(target_os = "linux")]
fn process_is_gone(pid: u32) -> bool {
    if pid == 0 || !Path::new("/proc/self").exists() {
        return false;
    }
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(error) => error.kind() == ErrorKind::NotFound,
        // A zombie has ended; only its exit status waits to be collected.
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
    }
}

#[cfg(not(target_os = "linux"))]
fn process_is_gone(_pid: u32) -> bool {
    false
}

/// How often a lock is tried again while waiting for it.
const LOCK_RETRY_PAUSE: Duration = Duration::from_millis(500);

/// Take the lock of `environment`, waiting up to `timeout` while someone else
/// holds it (`Duration::ZERO`: fail at once, naming the holder). `waiting` is
/// called once, with the holder, when the first attempt finds the lock taken.
pub fn lock_with_timeout(
    backend: &dyn Backend,
    environment: &str,
    operation: &str,
    timeout: Duration,
    mut waiting: impl FnMut(&LockInfo),
) -> Result<LockGuard, StateError> {
    let start = Instant::now();
    let mut told = false;
    loop {
        match backend.lock(environment, operation) {
            Err(StateError::Locked(holder)) => {
                let elapsed = start.elapsed();
                if elapsed >= timeout {
                    return Err(if timeout.is_zero() {
                        StateError::Locked(holder)
                    } else {
                        StateError::LockTimeout {
                            waited: timeout,
                            holder,
                        }
                    });
                }
                if !told {
                    waiting(&holder);
                    told = true;
                }
                thread::sleep(LOCK_RETRY_PAUSE.min(timeout - elapsed));
            }
            other => return other,
        }
    }
}

/// How long to wait for a lock file that another process has just created
/// but not yet filled in.
const UNFINISHED_LOCK_RETRIES: u32 = 50;
const UNFINISHED_LOCK_PAUSE: Duration = Duration::from_millis(10);

/// Take the lock file at `path` for `environment`, or report who holds it.
pub fn acquire_lock_file(
    path: &Path,
    environment: &str,
    operation: &str,
) -> Result<LockGuard, StateError> {
    let info = LockInfo::for_this_process(environment, operation);
    let contents = encode_lock(&info)?;

    let _acquiring = Acquiring::start();
    let mut file = create_lock_file(path, environment)?;
    let written = file.write_all(&contents).and_then(|()| file.sync_all());
    drop(file);
    if let Err(source) = written {
        let _ = fs::remove_file(path);
        return Err(StateError::Io {
            action: "write lock file",
            path: path.to_path_buf(),
            source,
        });
    }

    let lock_path = path.to_path_buf();
    let lock_id = info.id.clone();
    let lock_environment = environment.to_string();
    Ok(LockGuard::new(info, move || {
        release_lock_file(&lock_path, &lock_environment, &lock_id)
    }))
}

/// How often to try again when a lock disappears between our failed create
/// and our read of its holder (its holder released it just then).
const RELEASED_MEANWHILE_RETRIES: u32 = 5;

/// Create the lock file exclusively, or report who holds it.
fn create_lock_file(path: &Path, environment: &str) -> Result<fs::File, StateError> {
    let mut attempts = 0;
    loop {
        match OpenOptions::new().write(true).create_new(true).open(path) {
            Ok(file) => return Ok(file),
            Err(error) if error.kind() == ErrorKind::AlreadyExists => {
                match read_lock_file(path, environment)? {
                    Some(holder) => return Err(StateError::Locked(Box::new(holder))),
                    None if attempts < RELEASED_MEANWHILE_RETRIES => attempts += 1,
                    None => {
                        return Err(StateError::Io {
                            action: "create lock file",
                            path: path.to_path_buf(),
                            source: error,
                        })
                    }
                }
            }
            Err(source) => {
                return Err(StateError::Io {
                    action: "create lock file",
                    path: path.to_path_buf(),
                    source,
                })
            }
        }
    }
}

/// The holder of the lock file at `path`, or `None` when there is no lock.
///
/// A lock file that is still empty or half written is read again for a short
/// while, since its creator may be writing it right now.
pub fn read_lock_file(path: &Path, environment: &str) -> Result<Option<LockInfo>, StateError> {
    let mut attempts = 0;
    loop {
        let contents = match fs::read(path) {
            Ok(contents) => contents,
            Err(error) if error.kind() == ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(StateError::Io {
                    action: "read lock file",
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        match serde_json::from_slice::<LockInfo>(&contents) {
            Ok(holder) => return Ok(Some(holder)),
            Err(_) if attempts < UNFINISHED_LOCK_RETRIES => {
                attempts += 1;
                thread::sleep(UNFINISHED_LOCK_PAUSE);
            }
            Err(error) => {
                return Err(StateError::LockUnreadable {
                    environment: environment.to_string(),
                    path: path.to_path_buf(),
                    detail: error.to_string(),
                })
            }
        }
    }
}

/// Remove the lock file at `path` if it holds `lock_id`.
///
/// Used by force-unlock: no lock and a lock with another id are errors.
pub fn force_remove_lock_file(
    path: &Path,
    environment: &str,
    lock_id: &str,
) -> Result<(), StateError> {
    match read_lock_file(path, environment)? {
        None => Err(StateError::NotLocked {
            environment: environment.to_string(),
        }),
        Some(holder) if holder.id != lock_id => Err(StateError::LockIdMismatch {
            environment: environment.to_string(),
            given: lock_id.to_string(),
            actual: holder.id,
        }),
        Some(_) => remove_lock_file(path),
    }
}

/// Release our own lock: remove the file only if it still holds `lock_id`,
/// so a lock that was force-unlocked and taken by someone else survives.
fn release_lock_file(path: &Path, environment: &str, lock_id: &str) -> Result<(), StateError> {
    match read_lock_file(path, environment)? {
        Some(holder) if holder.id == lock_id => remove_lock_file(path),
        _ => Ok(()),
    }
}

fn remove_lock_file(path: &Path) -> Result<(), StateError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == ErrorKind::NotFound => Ok(()),
        Err(source) => Err(StateError::Io {
            action: "remove lock file",
            path: path.to_path_buf(),
            source,
        }),
    }
}

pub(crate) fn encode_lock(info: &LockInfo) -> Result<Vec<u8>, StateError> {
    let mut contents = serde_json::to_vec_pretty(info).map_err(|source| StateError::Encode {
        environment: info.environment.clone(),
        source,
    })?;
    contents.push(b'\n');
    Ok(contents)
}

/// The user name for locks and history: `$USER`, or "unknown".
pub fn current_user() -> String {
    non_empty_env("USER").unwrap_or_else(|| "unknown".to_string())
}

/// Who gives or refuses an approval: what state records, and the names a
/// rollout's `approvers` list may give them by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approver {
    /// As recorded in state and history, labelled with how it was learned.
    pub recorded: String,
    /// What an `approvers` entry may say to mean them.
    pub names: Vec<String>,
}

impl Approver {
    /// The identity the backend can vouch for (S3: the AWS caller identity
    /// of the credentials that write state), otherwise the local user name
    /// labelled as unverified (`$USER` is whatever the environment says).
    pub fn of(backend: &dyn super::Backend) -> Approver {
        match backend.verified_identity() {
            Some(Ok(arn)) => Approver::aws(&arn),
            Some(Err(why)) => Approver::local(&format!(
                "local user, not verified: the AWS caller identity could not be read: {why}"
            )),
            None => Approver::local("local user, not verified"),
        }
    }

    fn local(label: &str) -> Approver {
        let user = current_user();
        Approver {
            recorded: format!("{user} ({label})"),
            names: vec![user],
        }
    }

    /// An AWS caller identity. An `approvers` entry may name it by its ARN,
    /// by an IAM user's name (`arn:aws:iam::ACCOUNT:user/NAME`), or, for an
    /// assumed role (`arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`), by
    /// the role's name or ARN; never by the session name, which whoever
    /// assumes the role chooses.
    pub fn aws(arn: &str) -> Approver {
        let mut names = vec![arn.to_string()];
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        if let [_, partition, _service, _region, account, resource] = parts.as_slice() {
            if let Some(path) = resource.strip_prefix("user/") {
                if let Some(name) = path.rsplit('/').next() {
                    names.push(name.to_string());
                }
            } else if let Some(rest) = resource.strip_prefix("assumed-role/") {
                if let Some((role, _session)) = rest.rsplit_once('/') {
                    names.push(role.to_string());
                    names.push(format!("arn:{partition}:iam::{account}:role/{role}"));
                }
            }
        }
        Approver {
            recorded: format!("{arn} (AWS caller identity)"),
            names,
        }
    }

    /// Whether an `approvers` list (empty: anyone) lets this approver decide.
    pub fn may_decide(&self, approvers: &[String]) -> bool {
        approvers.is_empty() || approvers.iter().any(|a| self.names.contains(a))
    }
}

fn current_host() -> String {
    fs::read_to_string(PathBuf::from("/etc/hostname"))
        .ok()
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
        .or_else(|| non_empty_env("HOSTNAME"))
        .unwrap_or_else(|| "unknown".to_string())
}

fn non_empty_env(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|value| value.trim().to_string())
        .filter(|value| !value.is_empty())
}

/// The current time in UTC, RFC 3339, to the second.
pub fn now_rfc3339() -> String {
    let now = OffsetDateTime::now_utc();
    let whole_seconds = now.replace_nanosecond(0).unwrap_or(now);
    whole_seconds
        .format(&Rfc3339)
        .unwrap_or_else(|_| whole_seconds.unix_timestamp().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::sync::{Arc, Barrier};

    fn lock_path(dir: &tempfile::TempDir) -> PathBuf {
        dir.path().join("prod.lock")
    }

    #[test]
    fn lock_info_describes_this_process() {
        let info = LockInfo::for_this_process("prod", "apply");
        assert_eq!(info.environment, "prod");
        assert_eq!(info.operation, "apply");
        assert_eq!(info.pid, std::process::id());
        assert!(uuid::Uuid::parse_str(&info.id).is_ok(), "{}", info.id);
        assert!(!info.who.is_empty() && !info.host.is_empty());
        // Like 2026-01-02T03:04:05Z: whole seconds, UTC.
        let shape: String = info
            .created
            .chars()
            .map(|c| if c.is_ascii_digit() { '9' } else { c })
            .collect();
        assert_eq!(shape, "9999-99-99T99:99:99Z", "{}", info.created);
    }

    #[test]
    fn lock_file_holds_lock_info_and_is_removed_on_drop() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = lock_path(&dir);
        let guard = acquire_lock_file(&path, "prod", "apply").expect("lock");
        let on_disk: LockInfo =
            serde_json::from_slice(&fs::read(&path).expect("read lock")).expect("parse lock");
        assert_eq!(&on_disk, guard.info());
        drop(guard);
        assert!(!path.exists());
    }

    #[test]
    fn explicit_release_removes_the_lock() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = lock_path(&dir);
        let guard = acquire_lock_file(&path, "prod", "apply").expect("lock");
        guard.release().expect("release");
        assert!(!path.exists());
    }

    #[test]
    fn release_leaves_a_lock_taken_by_someone_else() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = lock_path(&dir);
        let stale = acquire_lock_file(&path, "prod", "apply").expect("lock");
        force_remove_lock_file(&path, "prod", &stale.info().id).expect("force unlock");
        let current = acquire_lock_file(&path, "prod", "apply").expect("lock again");
        drop(stale);
        assert_eq!(
            read_lock_file(&path, "prod").expect("read"),
            Some(current.info().clone())
        );
    }

    #[test]
    fn unreadable_lock_file_is_reported_not_removed() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = lock_path(&dir);
        fs::write(&path, "{ not json").expect("write");
        let error = acquire_lock_file(&path, "prod", "apply").expect_err("must fail");
        assert!(
            matches!(error, StateError::LockUnreadable { .. }),
            "{error}"
        );
        assert!(error.to_string().contains("delete that file"), "{error}");
        assert!(path.exists());
    }

    #[test]
    fn lock_with_timeout_waits_for_the_holder_or_gives_up_naming_it() {
        let dir = tempfile::tempdir().expect("temp dir");
        let backend = crate::state::LocalBackend::new(dir.path());
        let held = backend.lock("prod", "apply").expect("lock");
        let holder = held.info().clone();

        let error = lock_with_timeout(&backend, "prod", "apply", Duration::ZERO, |_| {
            panic!("no waiting without a timeout")
        })
        .expect_err("locked");
        assert!(matches!(error, StateError::Locked(_)), "{error}");

        let mut told = Vec::new();
        let error = lock_with_timeout(&backend, "prod", "apply", Duration::from_millis(300), |h| {
            told.push(h.clone())
        })
        .expect_err("still locked");
        assert_eq!(
            told,
            std::slice::from_ref(&holder),
            "told once, with the holder"
        );
        let message = error.to_string();
        assert!(
            message.starts_with("gave up after waiting 0.3s for the lock: state of environment \"prod\" is locked by"),
            "{message}"
        );
        assert!(message.contains(&holder.id), "{message}");

        let releaser = thread::spawn(move || {
            thread::sleep(Duration::from_millis(300));
            drop(held);
        });
        let started = Instant::now();
        let guard = lock_with_timeout(&backend, "prod", "destroy", Duration::from_secs(20), |_| {})
            .expect("taken once released");
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(guard.info().operation, "destroy");
        releaser.join().expect("releaser");
    }

    #[test]
    fn release_held_locks_releases_each_lock_once() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("interrupted.lock");
        let guard = acquire_lock_file(&path, "interrupted", "apply").expect("lock");
        let id = guard.info().id.clone();
        // Only this test's lock: other tests hold locks at the same time.
        let released = release_held_locks_where(|info| info.id == id);
        let ours: Vec<_> = released.iter().collect();
        assert_eq!(ours.len(), 1);
        assert!(ours[0].1.is_ok());
        assert!(!path.exists(), "the lock file is gone");
        // Someone takes the lock; dropping the old guard must not remove it.
        let next = acquire_lock_file(&path, "interrupted", "apply").expect("lock again");
        drop(guard);
        assert_eq!(
            read_lock_file(&path, "interrupted").expect("read"),
            Some(next.info().clone())
        );
    }

    #[test]
    fn only_a_holder_on_this_machine_without_a_live_process_is_gone() {
        let mut holder = LockInfo::for_this_process("prod", "apply");
        assert!(!holder_is_gone(&holder), "this process runs");
        // A child that has ended and been waited for: its pid is free.
        let mut child = std::process::Command::new("true").spawn().expect("spawn");
        holder.pid = child.id();
        child.wait().expect("wait");
        if cfg!(target_os = "linux") && current_host() != "unknown" {
            assert!(holder_is_gone(&holder));
        }
        holder.host = format!("{}-elsewhere", holder.host);
        assert!(!holder_is_gone(&holder), "another machine proves nothing");
    }

    #[test]
    fn only_a_lock_whose_holder_is_gone_is_taken_over() {
        let dir = tempfile::tempdir().expect("temp dir");
        let backend = crate::state::LocalBackend::new(dir.path().join("state"));
        assert_eq!(take_over_if_gone(&backend, "prod").expect("no lock"), None);
        // This process runs: its lock stays.
        let guard = backend.lock("prod", "apply").expect("lock");
        assert_eq!(take_over_if_gone(&backend, "prod").expect("live"), None);
        assert_eq!(
            backend.current_lock("prod").expect("read"),
            Some(guard.info().clone())
        );
        drop(guard);
        if !(cfg!(target_os = "linux") && current_host() != "unknown") {
            return;
        }
        // A holder on this machine whose process has ended and been waited for.
        let mut holder = LockInfo::for_this_process("prod", "apply");
        let mut child = std::process::Command::new("true").spawn().expect("spawn");
        holder.pid = child.id();
        child.wait().expect("wait");
        let path = backend.lock_path("prod").expect("lock path");
        fs::write(&path, encode_lock(&holder).expect("encode")).expect("write lock");
        assert_eq!(
            take_over_if_gone(&backend, "prod").expect("take over"),
            Some(holder)
        );
        assert_eq!(backend.current_lock("prod").expect("read"), None);
    }

    #[test]
    fn guard_is_send() {
        fn assert_send<T: Send>() {}
        assert_send::<LockGuard>();
    }

    #[test]
    fn threads_racing_for_the_lock_file_get_exactly_one_winner() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = Arc::new(lock_path(&dir));
        let start = Arc::new(Barrier::new(16));
        let racers: Vec<_> = (0..16)
            .map(|_| {
                let path = Arc::clone(&path);
                let start = Arc::clone(&start);
                thread::spawn(move || {
                    start.wait();
                    acquire_lock_file(&path, "prod", "apply")
                })
            })
            .collect();
        let results: Vec<_> = racers
            .into_iter()
            .map(|racer| racer.join().expect("racer thread"))
            .collect();
        let winners: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(winners.len(), 1);
        for result in &results {
            if let Err(error) = result {
                match error {
                    StateError::Locked(holder) => assert_eq!(holder.id, winners[0].info().id),
                    other => panic!("unexpected error: {other}"),
                }
            }
        }
    }
}

#[cfg(test)]
mod approver_tests {
    use super::Approver;

    #[test]
    fn aws_identities_are_named_by_arn_user_or_role_never_by_session() {
        let user = Approver::aws("arn:aws:iam::123456789012:user/ops/alice");
        assert!(user.may_decide(&["alice".into()]));
        assert!(user.may_decide(&["arn:aws:iam::123456789012:user/ops/alice".into()]));
        assert!(!user.may_decide(&["ops".into()]));
        assert_eq!(
            user.recorded,
            "arn:aws:iam::123456789012:user/ops/alice (AWS caller identity)"
        );

        let role = Approver::aws("arn:aws:sts::123456789012:assumed-role/ReleaseManager/alice");
        assert!(role.may_decide(&["ReleaseManager".into()]));
        assert!(role.may_decide(&["arn:aws:iam::123456789012:role/ReleaseManager".into()]));
        assert!(
            !role.may_decide(&["alice".into()]),
            "the session name is chosen by the caller"
        );

        let root = Approver::aws("arn:aws:iam::123456789012:root");
        assert!(!root.may_decide(&["root".into()]));
        assert!(root.may_decide(&[]), "an empty list lets anyone decide");
    }
}
