//! State kept in a directory on this machine.
//!
//! Each environment has `<dir>/<environment>.json` (the state),
//! `<dir>/<environment>.json.backup` (the state before the last whole write)
//! and, while someone works on it, `<dir>/<environment>.lock`. Whole writes go
//! to a temporary file that is synced and then renamed over the target, so a
//! crash leaves either the old or the new file, never half of one.
//!
//! A write of a few records ([`Backend::append`], an apply's host steps) is
//! appended instead, as one line, to `<dir>/<environment>.json.journal` and
//! synced: its cost does not grow with the fleet. The journal's first line
//! names the state file it continues (serial and SHA-256); a read replays the
//! lines on top of that file. A line cut short by a crash was never
//! acknowledged and is ignored. The journal is folded into the state file
//! (a whole write, after which the journal is removed) by every whole write,
//! and by an append once the journal is larger than the state file, so an
//! apply that ends in order leaves no journal, and replaying one never costs
//! more than reading the state twice.
//!
//! This backend does not share state between machines; use a remote backend
//! for that.

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use crate::state::lock::{acquire_lock_file, force_remove_lock_file, read_lock_file};
use crate::state::{
    decode_state, encode_state, validate_environment_name, Backend, LockGuard, LockInfo,
    ReplayError, State, StateDelta, StateError, Touched,
};

const STATE_EXTENSION: &str = "json";

/// An append folds the journal into the state file once the journal is
/// larger than the state file or than this, whichever is larger.
const FOLD_AT_LEAST: u64 = 256 * 1024;

/// One line of a state journal.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
enum JournalLine {
    /// The first line: the state file the deltas continue.
    Base {
        serial: u64,
        sha256: String,
    },
    Delta(StateDelta),
}

/// What an append did.
enum Appended {
    Yes,
    /// The journal cannot take it (none can be started, its last line is
    /// cut short, or it is due to be folded): write the whole state.
    FoldInstead,
}

/// State files in one local directory.
#[derive(Debug, Clone)]
pub struct LocalBackend {
    /// Directory holding the state files; created on the first write or lock.
    pub dir: PathBuf,
    /// Environments whose journal this backend started after its last whole
    /// write of their state file: the only journals it appends to. Any
    /// other journal (a killed apply's, or one a crash kept after its fold)
    /// is folded first, so a delta is never appended to a journal that does
    /// not continue the state file.
    started_journals: Arc<Mutex<BTreeSet<String>>>,
}

impl PartialEq for LocalBackend {
    fn eq(&self, other: &LocalBackend) -> bool {
        self.dir == other.dir
    }
}

impl Eq for LocalBackend {}

impl LocalBackend {
    pub fn new(dir: impl Into<PathBuf>) -> LocalBackend {
        LocalBackend {
            dir: dir.into(),
            started_journals: Arc::default(),
        }
    }

    fn started_journals(&self) -> std::sync::MutexGuard<'_, BTreeSet<String>> {
        self.started_journals
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// `<dir>/<environment>.json`
    pub fn state_path(&self, environment: &str) -> Result<PathBuf, StateError> {
        validate_environment_name(environment)?;
        Ok(self.dir.join(format!("{environment}.{STATE_EXTENSION}")))
    }

    /// `<dir>/<environment>.json.backup`
    pub fn backup_path(&self, environment: &str) -> Result<PathBuf, StateError> {
        validate_environment_name(environment)?;
        Ok(self
            .dir
            .join(format!("{environment}.{STATE_EXTENSION}.backup")))
    }

    /// `<dir>/<environment>.json.journal`
    pub fn journal_path(&self, environment: &str) -> Result<PathBuf, StateError> {
        validate_environment_name(environment)?;
        Ok(self
            .dir
            .join(format!("{environment}.{STATE_EXTENSION}.journal")))
    }

    /// `<dir>/<environment>.lock`
    pub fn lock_path(&self, environment: &str) -> Result<PathBuf, StateError> {
        validate_environment_name(environment)?;
        Ok(self.dir.join(format!("{environment}.lock")))
    }

    fn create_dir(&self) -> Result<(), StateError> {
        fs::create_dir_all(&self.dir).map_err(|source| StateError::Io {
            action: "create state directory",
            path: self.dir.clone(),
            source,
        })
    }

    /// The backup of `environment`, if it exists and holds a readable state.
    fn readable_backup(&self, environment: &str) -> Option<PathBuf> {
        let backup = self.backup_path(environment).ok()?;
        let contents = fs::read(&backup).ok()?;
        serde_json::from_slice::<State>(&contents).ok()?;
        Some(backup)
    }
}

impl Backend for LocalBackend {
    fn describe(&self) -> String {
        let dir = self.dir.display().to_string();
        if dir.ends_with('/') || dir.ends_with(std::path::MAIN_SEPARATOR) {
            format!("local directory {dir}")
        } else {
            format!("local directory {dir}/")
        }
    }

    fn environments(&self) -> Result<Vec<String>, StateError> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(error) if error.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(StateError::Io {
                    action: "list state directory",
                    path: self.dir.clone(),
                    source,
                })
            }
        };
        let mut environments = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| StateError::Io {
                action: "list state directory",
                path: self.dir.clone(),
                source,
            })?;
            let path = entry.path();
            if path.extension().and_then(|ext| ext.to_str()) != Some(STATE_EXTENSION) {
                continue;
            }
            let Some(name) = path.file_stem().and_then(|stem| stem.to_str()) else {
                continue;
            };
            if validate_environment_name(name).is_ok() && path.is_file() {
                environments.push(name.to_string());
            }
        }
        environments.sort();
        Ok(environments)
    }

    fn read(&self, environment: &str) -> Result<Option<State>, StateError> {
        let path = self.state_path(environment)?;
        let contents = match fs::read(&path) {
            Ok(contents) => contents,
            Err(error) if error.kind() == ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(StateError::Io {
                    action: "read state file",
                    path,
                    source,
                })
            }
        };
        let mut state = decode_state(&contents, Some(environment), &path, || {
            self.readable_backup(environment)
        })?;
        replay_journal(
            &self.journal_path(environment)?,
            &path,
            &contents,
            &mut state,
        )?;
        Ok(Some(state))
    }

    fn write(&self, state: &mut State) -> Result<(), StateError> {
        let path = self.state_path(&state.environment)?;
        let backup = self.backup_path(&state.environment)?;
        let journal = self.journal_path(&state.environment)?;
        self.create_dir()?;

        let previous_serial = state.serial;
        state.serial = previous_serial.saturating_add(1);
        let written = encode_state(state).and_then(|contents| {
            back_up_current(&path, &backup)?;
            write_atomically(&path, &contents)
        });
        if written.is_err() {
            // The file on disk did not change, so neither does the serial.
            state.serial = previous_serial;
        }
        written?;
        // The file now holds everything the journal did.
        self.started_journals().remove(&state.environment);
        remove_journal(&journal)
    }

    fn append(&self, state: &mut State, touched: &Touched) -> Result<(), StateError> {
        let path = self.state_path(&state.environment)?;
        let journal = self.journal_path(&state.environment)?;
        let previous_serial = state.serial;
        state.serial = previous_serial.saturating_add(1);
        let delta = StateDelta::capture(state, touched);
        let ours = self.started_journals().contains(&state.environment);
        match append_delta(&journal, &path, previous_serial, delta, ours) {
            Ok(Appended::Yes) => {
                self.started_journals().insert(state.environment.clone());
                Ok(())
            }
            Ok(Appended::FoldInstead) => {
                state.serial = previous_serial;
                self.write(state)
            }
            Err(error) => {
                state.serial = previous_serial;
                Err(error)
            }
        }
    }

    fn import(&self, state: &State) -> Result<(), StateError> {
        let path = self.state_path(&state.environment)?;
        let backup = self.backup_path(&state.environment)?;
        self.create_dir()?;
        let contents = encode_state(state)?;
        back_up_current(&path, &backup)?;
        write_atomically(&path, &contents)?;
        self.started_journals().remove(&state.environment);
        remove_journal(&self.journal_path(&state.environment)?)
    }

    fn lock(&self, environment: &str, operation: &str) -> Result<LockGuard, StateError> {
        let path = self.lock_path(environment)?;
        self.create_dir()?;
        acquire_lock_file(&path, environment, operation)
    }

    fn current_lock(&self, environment: &str) -> Result<Option<LockInfo>, StateError> {
        read_lock_file(&self.lock_path(environment)?, environment)
    }

    fn force_unlock(&self, environment: &str, lock_id: &str) -> Result<(), StateError> {
        force_remove_lock_file(&self.lock_path(environment)?, environment, lock_id)
    }
}

/// Append `delta` to the journal at `journal`, synced; a new journal starts
/// with the state file at `path` it continues, whose serial is
/// `base_serial`. An existing journal is appended to only when it is `ours`
/// (started by this backend since its last whole write).
fn append_delta(
    journal: &Path,
    path: &Path,
    base_serial: u64,
    delta: StateDelta,
    ours: bool,
) -> Result<Appended, StateError> {
    use std::io::{Read, Seek, SeekFrom};

    let io_error = |action: &'static str| {
        move |source| StateError::Io {
            action,
            path: journal.to_path_buf(),
            source,
        }
    };
    let mut file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(journal)
        .map_err(io_error("open state journal"))?;
    let length = file
        .metadata()
        .map_err(io_error("read state journal"))?
        .len();
    let state_length = match fs::metadata(path) {
        Ok(metadata) => metadata.len(),
        // Nothing to continue: the first write of a state is whole.
        Err(error) if error.kind() == ErrorKind::NotFound => return Ok(Appended::FoldInstead),
        Err(source) => {
            return Err(StateError::Io {
                action: "read state file",
                path: path.to_path_buf(),
                source,
            })
        }
    };
    if length > 0 && !ours {
        return Ok(Appended::FoldInstead);
    }
    let mut lines = Vec::new();
    if length == 0 {
        let contents = fs::read(path).map_err(|source| StateError::Io {
            action: "read state file",
            path: path.to_path_buf(),
            source,
        })?;
        push_line(
            &mut lines,
            &JournalLine::Base {
                serial: base_serial,
                sha256: hex::encode(Sha256::digest(&contents)),
            },
        );
    } else {
        let mut last = [0u8];
        file.seek(SeekFrom::End(-1))
            .and_then(|_| file.read_exact(&mut last))
            .map_err(io_error("read state journal"))?;
        if last[0] != b'\n' || length > state_length.max(FOLD_AT_LEAST) {
            return Ok(Appended::FoldInstead);
        }
    }
    push_line(&mut lines, &JournalLine::Delta(delta));
    file.write_all(&lines)
        .map_err(io_error("append to state journal"))?;
    file.sync_data().map_err(io_error("sync state journal"))?;
    if length == 0 {
        // The journal's name must survive a crash too.
        if let Some(dir) = journal.parent() {
            sync_directory(dir)?;
        }
    }
    Ok(Appended::Yes)
}

fn push_line(lines: &mut Vec<u8>, line: &JournalLine) {
    // A line of ours always serialises: no map with non-string keys.
    serde_json::to_writer(&mut *lines, line).expect("a journal line serialises");
    lines.push(b'\n');
}

/// Remove the journal at `journal` after its deltas were folded into the
/// state file. A journal whose removal a crash undoes is harmless: its base
/// no longer matches the state file, and its deltas are not newer.
fn remove_journal(journal: &Path) -> Result<(), StateError> {
    match fs::remove_file(journal) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == ErrorKind::NotFound => Ok(()),
        Err(source) => Err(StateError::Io {
            action: "remove the state journal (the state file was written)",
            path: journal.to_path_buf(),
            source,
        }),
    }
}

/// Put the deltas of the journal at `journal`, if any, into `state`, read
/// from `contents` of the state file at `path`.
fn replay_journal(
    journal: &Path,
    path: &Path,
    contents: &[u8],
    state: &mut State,
) -> Result<(), StateError> {
    let text = match fs::read(journal) {
        Ok(text) => text,
        Err(error) if error.kind() == ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(StateError::Io {
                action: "read state journal",
                path: journal.to_path_buf(),
                source,
            })
        }
    };
    let problem = |problem: String, advice: &'static str| StateError::Journal {
        journal: journal.to_path_buf(),
        state: path.to_path_buf(),
        problem,
        advice,
    };
    const REPAIR: &str = "Repair the line by hand, or move the journal away and run \
         `slipway plan -refresh` to see what the hosts serve";
    // The piece after the last newline was cut short by a crash before the
    // write returned: that step never started.
    let mut complete: Vec<&[u8]> = text.split(|b| *b == b'\n').collect();
    complete.pop();
    let mut lines = Vec::with_capacity(complete.len());
    for (index, line) in complete.iter().enumerate() {
        let line: JournalLine = serde_json::from_slice(line).map_err(|error| {
            problem(
                format!("has an unreadable line {}: {error}", index + 1),
                REPAIR,
            )
        })?;
        lines.push(line);
    }
    let mut lines = lines.into_iter();
    let base = match lines.next() {
        None => return Ok(()),
        Some(JournalLine::Base { serial, sha256 }) => (serial, sha256),
        Some(JournalLine::Delta(_)) => {
            return Err(problem(
                "does not start with the state file it continues".into(),
                REPAIR,
            ))
        }
    };
    let deltas: Vec<StateDelta> = lines
        .map(|line| match line {
            JournalLine::Delta(delta) => Ok(delta),
            JournalLine::Base { .. } => Err(problem(
                "names the state file it continues twice".into(),
                REPAIR,
            )),
        })
        .collect::<Result<_, _>>()?;
    let continues_this_file =
        base.0 == state.serial && base.1 == hex::encode(Sha256::digest(contents));
    match state.replay(deltas.iter().map(|delta| (continues_this_file, delta))) {
        Ok(_) => Ok(()),
        Err(ReplayError::Gap { serial, next }) => Err(problem(
            format!("skips from serial {serial} to {next}: a step is missing"),
            REPAIR,
        )),
        Err(ReplayError::Replaced { serial, .. }) => Err(problem(
            format!(
                "continues a state file with serial {}, not this one (serial {serial}): the \
                 state file was replaced, probably by a copy or a checkout, after an \
                 apply was killed",
                base.0
            ),
            "Put back the state file the journal continues, or, if this state file is \
             the one to keep, move the journal away and run `slipway plan -refresh` to \
             see what the hosts serve",
        )),
    }
}

/// Copy the current state file to `backup`, atomically.
///
/// A current file that is not even JSON is not copied, so that it cannot
/// replace the last good backup.
fn back_up_current(path: &Path, backup: &Path) -> Result<(), StateError> {
    let current = match fs::read(path) {
        Ok(current) => current,
        Err(error) if error.kind() == ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(StateError::Io {
                action: "read state file",
                path: path.to_path_buf(),
                source,
            })
        }
    };
    if serde_json::from_slice::<serde_json::Value>(&current).is_err() {
        return Ok(());
    }
    write_atomically(backup, &current)
}

/// Write `contents` to a temporary file next to `path`, sync it, rename it
/// over `path` and sync the directory, so `path` is always whole.
fn write_atomically(path: &Path, contents: &[u8]) -> Result<(), StateError> {
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let file_name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    // A leading dot and an inner dot keep it out of `environments`.
    let temporary = dir.join(format!(".{file_name}.tmp-{}", uuid::Uuid::new_v4()));

    let io_error = |action: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| StateError::Io {
            action,
            path,
            source,
        }
    };
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temporary)
            .map_err(io_error("create temporary file", &temporary))?;
        file.write_all(contents)
            .map_err(io_error("write temporary file", &temporary))?;
        file.sync_all()
            .map_err(io_error("sync temporary file", &temporary))?;
        drop(file);
        fs::rename(&temporary, path).map_err(io_error("replace", path))?;
        sync_directory(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    result
}

/// Make a rename in `dir` durable.
#[cfg(unix)]
fn sync_directory(dir: &Path) -> Result<(), StateError> {
    File::open(dir)
        .and_then(|handle| handle.sync_all())
        .map_err(|source| StateError::Io {
            action: "sync directory",
            path: dir.to_path_buf(),
            source,
        })
}

/// Directories cannot be opened for syncing here; the rename is still atomic.
#[cfg(not(unix))]
fn sync_directory(_dir: &Path) -> Result<(), StateError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::sync::{Arc, Barrier};
    use std::thread;

    use crate::state::{
        DeploymentState, DeploymentStatus, HistoryEntry, HistoryOperation, HistoryResult,
        STATE_VERSION,
    };

    /// The cost of one state write against the size of the fleet the state
    /// records, in the middle of an apply (a host record and a journal entry
    /// per host). A benchmark, not a test: it asserts nothing about time.
    /// `cargo test --release --lib state_write_cost -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn state_write_cost() {
        use crate::state::{HostState, HostStatus, JournalEntry, PreviousRelease};
        const AT: &str = "2026-12-06T21:00:00Z";
        const SHA: &str = "3f1c0e6c2d9f4a0b8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a392817";
        for hosts in [10, 50, 200, 1000] {
            let (dir, backend) = backend();
            let mut state = State::new("production");
            let mut deployment =
                DeploymentState::new("web", "2.0.0", DeploymentStatus::InProgress, AT);
            for i in 0..hosts {
                let host = format!("web-{i:04}.prod.internal");
                deployment.hosts.insert(
                    host.clone(),
                    HostState {
                        version: "2.0.0".into(),
                        artifact_sha256: Some(SHA.into()),
                        status: HostStatus::Deployed,
                        updated_at: AT.into(),
                        config_digest: Some(SHA.into()),
                        rollout: Some("apply-20261206T210000Z-1a2b3c".into()),
                        previous: Some(PreviousRelease {
                            version: "1.0.0".into(),
                            artifact_sha256: Some(SHA.into()),
                            config_digest: Some(SHA.into()),
                        }),
                    },
                );
                state.journal.push(JournalEntry {
                    apply_id: "apply-20261206T210000Z-1a2b3c".into(),
                    seq: i as u64 + 1,
                    deployment: "deployment.web".into(),
                    step: i / 10 + 1,
                    host: Some(host),
                    action: crate::state::JournalAction::Deploy,
                    version: "2.0.0".into(),
                    started_at: AT.into(),
                    finished_at: Some(AT.into()),
                    result: Some("deployed".into()),
                });
            }
            state
                .deployments
                .insert("deployment.web".into(), deployment);
            backend.write(&mut state).unwrap();
            let writes = 50;
            let started = std::time::Instant::now();
            for _ in 0..writes {
                encode_state(&state).unwrap();
            }
            let encode = started.elapsed() / writes;
            let started = std::time::Instant::now();
            for _ in 0..writes {
                backend.write(&mut state).unwrap();
            }
            let write = started.elapsed() / writes;
            let size = fs::metadata(dir.path().join("state/production.json"))
                .unwrap()
                .len();
            // A host step's write as an apply makes it: one host's record and
            // its journal entry. Enough of them that the journal is folded
            // into the state file several times, and those folds are counted.
            let appends: u32 = 2000;
            let started = std::time::Instant::now();
            for n in 0..appends {
                let i = n as usize % hosts;
                let host = format!("web-{i:04}.prod.internal");
                let deployment = state.deployments.get_mut("deployment.web").unwrap();
                let record = deployment.hosts.get_mut(&host).unwrap();
                record.status = if n % 2 == 0 {
                    HostStatus::InProgress
                } else {
                    HostStatus::Deployed
                };
                record.updated_at = format!("2026-12-06T21:{:02}:{:02}Z", n / 60 % 60, n % 60);
                let entry = &mut state.journal[i];
                entry.result = Some(format!("step {n}").into());
                let touched = Touched {
                    hosts: vec![("deployment.web".into(), host)],
                    journal: vec![entry.seq],
                };
                backend.append(&mut state, &touched).unwrap();
            }
            let append = started.elapsed() / appends;
            assert_eq!(backend.read("production").unwrap().as_ref(), Some(&state));
            eprintln!(
                "{hosts:>5} hosts: {size:>8} bytes; encode {encode:>10.2?}; whole write \
                 {write:>10.2?}; host step (appended, folds included) {append:>10.2?}"
            );
        }
    }

    /// A state with deployment `deployment.web` on hosts a, b and c, and a
    /// journal entry per host; written whole.
    fn fleet_state(backend: &LocalBackend) -> State {
        let mut state = sample_state("prod");
        let deployment = state.deployments.get_mut("deployment.web").unwrap();
        for (seq, host) in ["a", "b", "c"].into_iter().enumerate() {
            deployment.hosts.insert(
                host.into(),
                crate::state::HostState {
                    version: "1.4.2".into(),
                    artifact_sha256: Some("ab12".into()),
                    status: crate::state::HostStatus::Deployed,
                    updated_at: "2026-01-02T03:04:05Z".into(),
                    config_digest: None,
                    rollout: None,
                    previous: None,
                },
            );
            state.journal.push(crate::state::JournalEntry {
                apply_id: "apply-1".into(),
                seq: seq as u64 + 1,
                deployment: "deployment.web".into(),
                step: 1,
                host: Some(host.into()),
                action: crate::state::JournalAction::Deploy,
                version: "1.4.2".into(),
                started_at: "2026-01-02T03:04:00Z".into(),
                finished_at: None,
                result: None,
            });
        }
        backend.write(&mut state).expect("write");
        state
    }

    /// Move `host` to `version` and finish its journal entry; append that.
    fn append_host_step(backend: &LocalBackend, state: &mut State, host: &str, version: &str) {
        let deployment = state.deployments.get_mut("deployment.web").unwrap();
        deployment.hosts.get_mut(host).unwrap().version = version.into();
        deployment.updated_at = format!("2026-01-03T00:00:00Z {host} {version}");
        let entry = state
            .journal
            .iter_mut()
            .find(|e| e.host.as_deref() == Some(host))
            .unwrap();
        entry.finished_at = Some("2026-01-03T00:00:00Z".into());
        entry.result = Some(format!("deployed {version}").into());
        let touched = Touched {
            hosts: vec![("deployment.web".into(), host.into())],
            journal: vec![entry.seq],
        };
        backend.append(state, &touched).expect("append");
    }

    #[test]
    fn appended_records_read_back_without_rewriting_the_state_file() {
        let (_dir, backend) = backend();
        let mut state = fleet_state(&backend);
        let file_before = read_text(&backend.state_path("prod").unwrap());
        append_host_step(&backend, &mut state, "a", "2.0.0");
        append_host_step(&backend, &mut state, "c", "2.0.0");
        append_host_step(&backend, &mut state, "a", "2.0.1");
        assert_eq!(state.serial, 4, "every append increments the serial");
        assert_eq!(backend.read("prod").unwrap().as_ref(), Some(&state));
        assert_eq!(
            read_text(&backend.state_path("prod").unwrap()),
            file_before,
            "the state file is not rewritten"
        );
        let journal = read_text(&backend.journal_path("prod").unwrap());
        assert_eq!(
            journal.lines().count(),
            4,
            "a base line and a line per append"
        );
        assert!(journal.starts_with("{\"base\":{\"serial\":1,"), "{journal}");
        assert_eq!(backend.environments().unwrap(), ["prod"]);
    }

    #[test]
    fn a_whole_write_folds_the_journal_into_the_state_file_and_removes_it() {
        let (_dir, backend) = backend();
        let mut state = fleet_state(&backend);
        append_host_step(&backend, &mut state, "b", "2.0.0");
        state.history.clear();
        backend.write(&mut state).expect("write");
        assert!(!backend.journal_path("prod").unwrap().exists());
        let file: State =
            serde_json::from_str(&read_text(&backend.state_path("prod").unwrap())).unwrap();
        assert_eq!(file, state);
        assert_eq!(backend.read("prod").unwrap(), Some(state));
    }

    #[test]
    fn a_line_cut_short_by_a_crash_is_ignored_and_the_next_append_folds() {
        let (_dir, backend) = backend();
        let mut state = fleet_state(&backend);
        append_host_step(&backend, &mut state, "a", "2.0.0");
        let acknowledged = state.clone();
        let journal = backend.journal_path("prod").unwrap();
        let mut file = OpenOptions::new().append(true).open(&journal).unwrap();
        file.write_all(b"{\"delta\":{\"serial\":3,\"hos").unwrap();
        assert_eq!(backend.read("prod").unwrap(), Some(acknowledged));

        append_host_step(&backend, &mut state, "b", "2.0.0");
        assert!(
            !journal.exists(),
            "appending after a cut line folds instead"
        );
        assert_eq!(backend.read("prod").unwrap(), Some(state));
    }

    #[test]
    fn a_journal_a_crash_kept_after_its_fold_is_ignored() {
        let (dir, backend) = backend();
        let mut state = fleet_state(&backend);
        append_host_step(&backend, &mut state, "a", "2.0.0");
        let journal = backend.journal_path("prod").unwrap();
        let kept = dir.path().join("kept");
        fs::copy(&journal, &kept).unwrap();
        backend.write(&mut state).expect("fold");
        fs::rename(&kept, &journal).unwrap();
        assert_eq!(backend.read("prod").unwrap(), Some(state.clone()));
        // And the next append does not continue it: a journal that does not
        // continue the state file is never appended to.
        append_host_step(&backend, &mut state, "b", "2.0.0");
        assert_eq!(backend.read("prod").unwrap(), Some(state));
    }

    #[test]
    fn a_journal_of_a_state_file_replaced_by_hand_is_refused_and_left_as_is() {
        let (_dir, backend) = backend();
        let mut state = fleet_state(&backend);
        let path = backend.state_path("prod").unwrap();
        let checked_in = read_text(&path);
        append_host_step(&backend, &mut state, "a", "2.0.0");
        // The file is put back to an older copy with the same serial and
        // different contents (another branch), then the journal is read.
        let journal = backend.journal_path("prod").unwrap();
        let journal_text = read_text(&journal);
        let mut other: State = serde_json::from_str(&checked_in).unwrap();
        other.history.clear();
        fs::write(&path, encode_state(&other).unwrap()).unwrap();
        let error = backend.read("prod").expect_err("a stray journal");
        let message = error.to_string();
        assert!(matches!(error, StateError::Journal { .. }), "{message}");
        assert!(message.contains("prod.json.journal"), "{message}");
        assert!(message.contains("the state file was replaced"), "{message}");
        assert!(message.contains("move the journal away"), "{message}");
        assert_eq!(
            read_text(&journal),
            journal_text,
            "the journal is left as is"
        );
    }

    #[test]
    fn an_unreadable_line_before_the_last_is_an_error_naming_the_journal() {
        let (_dir, backend) = backend();
        let mut state = fleet_state(&backend);
        append_host_step(&backend, &mut state, "a", "2.0.0");
        let journal = backend.journal_path("prod").unwrap();
        let mut file = OpenOptions::new().append(true).open(&journal).unwrap();
        file.write_all(b"not json\n").unwrap();
        let message = backend.read("prod").expect_err("corrupt").to_string();
        assert!(message.contains("unreadable line 3"), "{message}");
        assert!(message.contains("Nothing was changed"), "{message}");
    }

    #[test]
    fn a_journal_larger_than_the_state_file_is_folded_by_the_next_append() {
        let (_dir, backend) = backend();
        let mut state = fleet_state(&backend);
        let journal = backend.journal_path("prod").unwrap();
        let mut folds = 0;
        for n in 0..3000 {
            append_host_step(
                &backend,
                &mut state,
                ["a", "b", "c"][n % 3],
                &format!("{n}"),
            );
            if !journal.exists() {
                folds += 1;
            }
            let length = fs::metadata(&journal).map(|m| m.len()).unwrap_or(0);
            assert!(length <= FOLD_AT_LEAST + 1024, "{length}");
        }
        assert!(folds >= 1, "the journal was folded");
        assert_eq!(backend.read("prod").unwrap(), Some(state));
    }

    fn backend() -> (tempfile::TempDir, LocalBackend) {
        let dir = tempfile::tempdir().expect("temp dir");
        // A directory that does not exist yet: the backend must create it.
        let backend = LocalBackend::new(dir.path().join("state"));
        (dir, backend)
    }

    fn sample_state(environment: &str) -> State {
        let mut state = State::new(environment);
        state.deployments.insert(
            "deployment.web".to_string(),
            DeploymentState {
                service: "web".to_string(),
                version: "1.4.2".to_string(),
                artifact_sha256: Some("ab12".to_string()),
                rollout: None,
                rollout_digest: None,
                rollout_id: None,
                status: DeploymentStatus::Deployed,
                verified: true,
                config_files: Default::default(),
                sensitive_digests: Default::default(),
                systemd_unit: None,
                hosts: Default::default(),
                ecs: None,
                approvals: Vec::new(),
                gates: Vec::new(),
                releases: Vec::new(),
                rolled_back_from: None,
                updated_at: "2026-01-02T03:04:05Z".to_string(),
            },
        );
        state.history.push(HistoryEntry {
            apply_id: "apply-1".to_string(),
            operation: HistoryOperation::Apply,
            who: "alice".to_string(),
            started_at: "2026-01-02T03:04:00Z".to_string(),
            finished_at: Some("2026-01-02T03:04:05Z".to_string()),
            plan_digest: None,
            versions: [("deployment.web".to_string(), "1.4.2".to_string())].into(),
            result: HistoryResult::Succeeded,
            approvals: Vec::new(),
        });
        state
    }

    fn read_text(path: &Path) -> String {
        fs::read_to_string(path).expect("read file")
    }

    #[test]
    fn missing_state_reads_as_none() {
        let (_dir, backend) = backend();
        assert_eq!(backend.read("prod").expect("read"), None);
        assert_eq!(backend.environments().expect("list"), Vec::<String>::new());
    }

    #[test]
    fn written_state_reads_back_equal() {
        let (_dir, backend) = backend();
        let mut state = sample_state("prod");
        backend.write(&mut state).expect("write");
        assert_eq!(backend.read("prod").expect("read"), Some(state));
    }

    #[test]
    fn state_file_is_pretty_json_with_version_first() {
        let (_dir, backend) = backend();
        let mut state = sample_state("prod");
        backend.write(&mut state).expect("write");
        let text = read_text(&backend.state_path("prod").expect("path"));
        assert!(text.starts_with("{\n  \"version\": 1,\n"), "{text}");
        assert!(text.ends_with("}\n"));
    }

    #[test]
    fn every_write_increments_the_serial() {
        let (_dir, backend) = backend();
        let mut state = State::new("prod");
        assert_eq!(state.serial, 0);
        backend.write(&mut state).expect("first write");
        assert_eq!(state.serial, 1);
        backend.write(&mut state).expect("second write");
        assert_eq!(state.serial, 2);
        let stored = backend.read("prod").expect("read").expect("state exists");
        assert_eq!(stored.serial, 2);
    }

    #[test]
    fn import_stores_the_state_exactly_serial_included() {
        let (_dir, backend) = backend();
        let mut state = sample_state("prod");
        state.serial = 41;
        backend.import(&state).expect("import");
        assert_eq!(backend.read("prod").expect("read"), Some(state.clone()));
        state.serial = 42;
        backend.import(&state).expect("import again");
        assert_eq!(
            backend.read("prod").expect("read").expect("state").serial,
            42
        );
        let backup: State =
            serde_json::from_str(&read_text(&backend.backup_path("prod").expect("path")))
                .expect("backup parses");
        assert_eq!(backup.serial, 41);
    }

    #[test]
    fn backup_holds_the_previous_content() {
        let (_dir, backend) = backend();
        let backup = backend.backup_path("prod").expect("path");
        let mut state = sample_state("prod");
        backend.write(&mut state).expect("first write");
        assert!(!backup.exists(), "nothing to back up on the first write");
        let first = read_text(&backend.state_path("prod").expect("path"));

        state.deployments.clear();
        backend.write(&mut state).expect("second write");
        assert_eq!(read_text(&backup), first);
        let previous: State = serde_json::from_str(&read_text(&backup)).expect("backup parses");
        assert_eq!(previous.serial, 1);
        assert_eq!(previous.deployments.len(), 1);
    }

    #[test]
    fn no_temporary_files_are_left_behind() {
        let (_dir, backend) = backend();
        let mut state = sample_state("prod");
        backend.write(&mut state).expect("first write");
        backend.write(&mut state).expect("second write");
        let mut names: Vec<String> = fs::read_dir(&backend.dir)
            .expect("list")
            .map(|entry| {
                entry
                    .expect("entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        names.sort();
        assert_eq!(names, ["prod.json", "prod.json.backup"]);
    }

    #[test]
    fn environments_lists_state_files_sorted() {
        let (_dir, backend) = backend();
        for environment in ["staging", "prod", "dev"] {
            backend.write(&mut State::new(environment)).expect("write");
        }
        backend.write(&mut State::new("prod")).expect("rewrite");
        let _lock = backend.lock("qa", "apply").expect("lock");
        fs::write(backend.dir.join("notes.txt"), "x").expect("write stray file");
        assert_eq!(
            backend.environments().expect("list"),
            ["dev", "prod", "staging"]
        );
    }

    #[test]
    fn describe_names_the_directory() {
        assert_eq!(
            LocalBackend::new("state").describe(),
            "local directory state/"
        );
        assert_eq!(
            LocalBackend::new("state/").describe(),
            "local directory state/"
        );
    }

    #[test]
    fn state_from_a_newer_slipway_is_rejected() {
        let (_dir, backend) = backend();
        backend.write(&mut State::new("prod")).expect("write");
        let path = backend.state_path("prod").expect("path");
        let newer = format!(
            "{{\"version\": {}, \"serial\": 9, \"lineage\": \"x\", \"environment\": \"prod\", \
             \"something_new\": {{}}}}",
            STATE_VERSION + 1
        );
        fs::write(&path, &newer).expect("write newer file");

        let error = backend.read("prod").expect_err("must be rejected");
        assert!(
            matches!(error, StateError::TooNew { found: 2, .. }),
            "{error}"
        );
        let message = error.to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains("newer slipway"), "{message}");
        assert!(message.contains("Upgrade slipway"), "{message}");
        assert_eq!(read_text(&path), newer);
    }

    #[test]
    fn corrupt_state_names_the_backup_and_is_not_modified() {
        let (_dir, backend) = backend();
        let mut state = sample_state("prod");
        backend.write(&mut state).expect("first write");
        backend.write(&mut state).expect("second write");
        let path = backend.state_path("prod").expect("path");
        let backup = backend.backup_path("prod").expect("path");
        let whole = read_text(&path);
        let truncated = &whole[..whole.len() / 2];
        fs::write(&path, truncated).expect("truncate");
        let backup_before = read_text(&backup);

        let error = backend.read("prod").expect_err("must be corrupt");
        match &error {
            StateError::Corrupt {
                path: reported,
                backup: reported_backup,
                ..
            } => {
                assert_eq!(reported, &path);
                assert_eq!(reported_backup.as_ref(), Some(&backup));
            }
            other => panic!("unexpected error: {other}"),
        }
        let message = error.to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(
            message.contains(&format!("the last good backup is {}", backup.display())),
            "{message}"
        );
        assert_eq!(read_text(&path), truncated);
        assert_eq!(read_text(&backup), backup_before);
    }

    #[test]
    fn corrupt_state_without_backup_says_so() {
        let (_dir, backend) = backend();
        backend.write(&mut State::new("prod")).expect("write");
        let path = backend.state_path("prod").expect("path");
        fs::write(&path, "").expect("empty the file");

        let error = backend.read("prod").expect_err("must be corrupt");
        assert!(
            matches!(error, StateError::Corrupt { backup: None, .. }),
            "{error}"
        );
        assert!(error.to_string().contains("no readable backup"), "{error}");
    }

    #[test]
    fn valid_json_of_the_wrong_shape_is_corrupt() {
        let (_dir, backend) = backend();
        backend.write(&mut State::new("prod")).expect("write");
        let path = backend.state_path("prod").expect("path");
        fs::write(&path, "{\"version\": 1, \"serial\": \"one\"}").expect("write");
        let error = backend.read("prod").expect_err("must be corrupt");
        assert!(matches!(error, StateError::Corrupt { .. }), "{error}");

        fs::write(&path, "[1, 2]").expect("write");
        let error = backend.read("prod").expect_err("must be corrupt");
        assert!(error.to_string().contains("version"), "{error}");
    }

    #[test]
    fn writing_over_a_corrupt_file_keeps_the_last_good_backup() {
        let (_dir, backend) = backend();
        let mut state = sample_state("prod");
        backend.write(&mut state).expect("first write");
        backend.write(&mut state).expect("second write");
        let backup = backend.backup_path("prod").expect("path");
        let good_backup = read_text(&backup);
        fs::write(backend.state_path("prod").expect("path"), "{ trunc").expect("corrupt");

        backend.write(&mut state).expect("third write");
        assert_eq!(read_text(&backup), good_backup);
        assert_eq!(backend.read("prod").expect("read"), Some(state));
    }

    #[test]
    fn state_of_another_environment_is_rejected() {
        let (_dir, backend) = backend();
        backend.write(&mut State::new("staging")).expect("write");
        fs::copy(
            backend.state_path("staging").expect("path"),
            backend.state_path("prod").expect("path"),
        )
        .expect("copy");
        let error = backend.read("prod").expect_err("must be rejected");
        assert!(
            matches!(error, StateError::EnvironmentMismatch { .. }),
            "{error}"
        );
        assert!(error.to_string().contains("\"staging\""), "{error}");
    }

    #[test]
    fn invalid_environment_names_are_refused_everywhere() {
        let (dir, backend) = backend();
        for name in ["../escape", "a/b", "", "prod.json", ".."] {
            let invalid = |result: Result<(), StateError>| {
                matches!(result, Err(StateError::InvalidEnvironmentName { .. }))
            };
            assert!(invalid(backend.read(name).map(drop)), "read {name:?}");
            assert!(
                invalid(backend.write(&mut State::new(name))),
                "write {name:?}"
            );
            assert!(
                invalid(backend.lock(name, "apply").map(drop)),
                "lock {name:?}"
            );
            assert!(
                invalid(backend.current_lock(name).map(drop)),
                "current_lock {name:?}"
            );
            assert!(
                invalid(backend.force_unlock(name, "id")),
                "force_unlock {name:?}"
            );
        }
        assert!(!dir.path().join("escape.json").exists());
        assert!(!backend.dir.exists(), "nothing may be written");
    }

    #[test]
    fn second_lock_fails_naming_the_holder_until_the_first_is_dropped() {
        let (_dir, backend) = backend();
        let first = backend.lock("prod", "apply").expect("first lock");
        assert_eq!(
            backend.current_lock("prod").expect("current lock").as_ref(),
            Some(first.info())
        );

        let error = backend.lock("prod", "destroy").expect_err("must be locked");
        let StateError::Locked(holder) = &error else {
            panic!("unexpected error: {error}");
        };
        assert_eq!(holder.as_ref(), first.info());
        let message = error.to_string();
        let id = &first.info().id;
        assert!(
            message.starts_with(&format!(
                "state of environment \"prod\" is locked by {}@{} (pid {}) since {}, \
                 operation \"apply\", lock id {id}.",
                holder.who, holder.host, holder.pid, holder.created
            )),
            "{message}"
        );
        assert!(
            message.ends_with(&format!(
                "If that process is gone, run: slipway force-unlock -environment prod {id}"
            )),
            "{message}"
        );

        drop(first);
        assert_eq!(backend.current_lock("prod").expect("current lock"), None);
        let again = backend.lock("prod", "destroy").expect("lock after release");
        assert_eq!(again.info().operation, "destroy");
    }

    #[test]
    fn locks_of_different_environments_are_independent() {
        let (_dir, backend) = backend();
        let _prod = backend.lock("prod", "apply").expect("prod lock");
        let _staging = backend.lock("staging", "apply").expect("staging lock");
    }

    #[test]
    fn force_unlock_needs_the_right_id() {
        let (_dir, backend) = backend();
        let held = backend.lock("prod", "apply").expect("lock");
        let real_id = held.info().id.clone();

        let error = backend
            .force_unlock("prod", "not-the-id")
            .expect_err("wrong id must fail");
        assert!(
            matches!(&error, StateError::LockIdMismatch { actual, .. } if *actual == real_id),
            "{error}"
        );
        assert!(error.to_string().contains(&real_id), "{error}");
        assert!(backend
            .current_lock("prod")
            .expect("still locked")
            .is_some());

        backend
            .force_unlock("prod", &real_id)
            .expect("force unlock");
        assert_eq!(backend.current_lock("prod").expect("current lock"), None);

        let error = backend
            .force_unlock("prod", &real_id)
            .expect_err("nothing to unlock");
        assert!(matches!(error, StateError::NotLocked { .. }), "{error}");
        drop(held);
    }

    #[test]
    fn sixteen_threads_racing_for_the_lock_get_exactly_one_winner() {
        let (_dir, backend) = backend();
        let backend = Arc::new(backend);
        let start = Arc::new(Barrier::new(16));
        let racers: Vec<_> = (0..16)
            .map(|racer| {
                let backend = Arc::clone(&backend);
                let start = Arc::clone(&start);
                thread::spawn(move || {
                    start.wait();
                    backend.lock("prod", &format!("apply-{racer}"))
                })
            })
            .collect();
        let results: Vec<Result<LockGuard, StateError>> = racers
            .into_iter()
            .map(|racer| racer.join().expect("racer thread"))
            .collect();

        let winners: Vec<&LockGuard> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(winners.len(), 1, "{results:?}");
        let winner = winners[0].info();
        for error in results.iter().filter_map(|r| r.as_ref().err()) {
            match error {
                StateError::Locked(holder) => assert_eq!(holder.as_ref(), winner),
                other => panic!("unexpected error: {other}"),
            }
        }
        assert_eq!(
            backend.current_lock("prod").expect("current lock").as_ref(),
            Some(winner)
        );
        drop(results);
        assert_eq!(backend.current_lock("prod").expect("current lock"), None);
    }

    #[test]
    fn backend_works_behind_a_trait_object() {
        let (_dir, backend) = backend();
        let backend: Box<dyn Backend> = Box::new(backend);
        let mut state = State::new("prod");
        let guard = backend.lock("prod", "apply").expect("lock");
        backend.write(&mut state).expect("write");
        guard.release().expect("release");
        assert_eq!(backend.read("prod").expect("read"), Some(state));
    }
}
