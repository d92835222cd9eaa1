//! The state commands through the binary (`state list`, `show`, `pull`,
//! `push`, `rm`, `history`, `force-unlock`, and `-lock-timeout`), run the same
//! way on the local backend and on the S3 backend (moto's server on loopback):
//! read-only commands must print exactly the same on both, and commands that
//! change state must behave the same.
//!
//! Each test works on copies of `examples/vm-myapp` holding the states of
//! `tests/fixtures/states/vm-myapp-applied`. Without moto (and without CI),
//! the S3 half is skipped with a note.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::moto::Moto;
use slipway::state::{
    Backend, HistoryOperation, HistoryResult, LocalBackend, S3Backend, S3Settings, State,
};

fn manifest() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fixture_states() -> Vec<State> {
    let dir = manifest().join("tests/fixtures/states/vm-myapp-applied");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|path| serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap())
        .collect()
}

fn start_moto() -> Option<Moto> {
    let moto = Moto::start();
    if moto.is_none() {
        eprintln!("note: the S3 half of this test is skipped, moto is not installed");
    }
    moto
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

/// A copy of vm-myapp with the applied fixture states in one backend.
struct Work<'a> {
    _temp: tempfile::TempDir,
    /// The directory commands run in; the configuration is `vm-myapp` below it.
    cwd: PathBuf,
    moto: Option<&'a Moto>,
    bucket: String,
}

impl<'a> Work<'a> {
    fn local() -> Work<'a> {
        let work = Work::copy(None, "");
        let state = work.config_dir().join("state");
        std::fs::create_dir_all(&state).unwrap();
        for fixture in fixture_states() {
            LocalBackend::new(&state).import(&fixture).unwrap();
        }
        work
    }

    fn s3(moto: &'a Moto, bucket: &str) -> Work<'a> {
        block_on(async {
            moto.s3()
                .await
                .create_bucket()
                .bucket(bucket)
                .send()
                .await
                .unwrap_or_else(|e| panic!("CreateBucket {bucket}: {e:?}"));
        });
        let work = Work::copy(Some(moto), bucket);
        let main = work.config_dir().join("main.hcl");
        let text = std::fs::read_to_string(&main).unwrap();
        let block = format!(
            "backend \"s3\" {{\n    bucket   = \"{bucket}\"\n    prefix   = \"myapp/\"\n    \
             endpoint = \"{}\"\n  }}",
            moto.endpoint
        );
        let replaced = text.replace("backend \"local\" { path = \"state\" }", &block);
        assert_ne!(replaced, text, "vm-myapp's backend block");
        std::fs::write(&main, replaced).unwrap();
        let backend = work.backend();
        for fixture in fixture_states() {
            assert_eq!(backend.read(&fixture.environment).unwrap(), None);
            backend.import(&fixture).unwrap();
        }
        work
    }

    fn copy(moto: Option<&'a Moto>, bucket: &str) -> Work<'a> {
        let temp = tempfile::tempdir().unwrap();
        let cwd = temp.path().to_path_buf();
        copy_dir(&manifest().join("examples/vm-myapp"), &cwd.join("vm-myapp"));
        Work {
            _temp: temp,
            cwd,
            moto,
            bucket: bucket.to_string(),
        }
    }

    fn config_dir(&self) -> PathBuf {
        self.cwd.join("vm-myapp")
    }

    fn name(&self) -> &'static str {
        if self.moto.is_some() {
            "s3"
        } else {
            "local"
        }
    }

    fn backend(&self) -> Box<dyn Backend> {
        match self.moto {
            None => Box::new(LocalBackend::new(self.config_dir().join("state"))),
            Some(moto) => {
                let sdk_config = block_on(moto.sdk_config());
                Box::new(
                    S3Backend::with_sdk_config(
                        &S3Settings {
                            bucket: self.bucket.clone(),
                            prefix: "myapp/".to_string(),
                            endpoint: Some(moto.endpoint.clone()),
                            ..S3Settings::default()
                        },
                        &sdk_config,
                    )
                    .unwrap(),
                )
            }
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_slipway"));
        command
            .args(args)
            .current_dir(&self.cwd)
            .stdin(Stdio::null())
            .env("NO_COLOR", "1");
        if let Some(moto) = self.moto {
            moto.apply_env(&mut command);
        }
        command
    }

    fn run(&self, args: &[&str]) -> Run {
        let output = self.command(args).output().unwrap();
        Run::from(args, self.name(), output)
    }

    fn state(&self, environment: &str) -> State {
        self.backend()
            .read(environment)
            .unwrap()
            .unwrap_or_else(|| panic!("{}: no state of {environment}", self.name()))
    }
}

/// One command's outcome.
#[derive(Debug)]
struct Run {
    what: String,
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn from(args: &[&str], backend: &str, output: Output) -> Run {
        Run {
            what: format!("[{backend}] slipway {}", args.join(" ")),
            code: output.status.code().expect("exited"),
            stdout: String::from_utf8(output.stdout).unwrap(),
            stderr: String::from_utf8(output.stderr).unwrap(),
        }
    }

    fn ok(&self) -> &Run {
        assert_eq!(
            self.code, 0,
            "{}\n{}{}",
            self.what, self.stdout, self.stderr
        );
        self
    }

    fn fails(&self, expected: &str) -> &Run {
        assert_eq!(
            self.code, 1,
            "{}\n{}{}",
            self.what, self.stdout, self.stderr
        );
        assert!(
            self.stderr.contains(expected),
            "{}: expected {expected:?} in:\n{}",
            self.what,
            self.stderr
        );
        self
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == ".slipway" || name == "state" {
            continue;
        }
        let target = to.join(&name);
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// The local workspace, and the S3 one when moto is there.
fn both<'a>(moto: Option<&'a Moto>, bucket: &str) -> Vec<Work<'a>> {
    let mut works = vec![Work::local()];
    if let Some(moto) = moto {
        works.push(Work::s3(moto, bucket));
    }
    works
}

#[test]
fn read_only_state_commands_print_the_same_on_both_backends() {
    let moto = start_moto();
    let works = both(moto.as_ref(), "read-only");
    let commands: &[&[&str]] = &[
        &["state", "list", "vm-myapp"],
        &["state", "list", "vm-myapp", "-environment", "production"],
        &["state", "show", "deployment.myapp-production", "vm-myapp"],
        &["state", "show", "deployment.myapp-dev", "vm-myapp", "-json"],
        &["state", "pull", "vm-myapp", "-environment", "production"],
        &["state", "history", "vm-myapp"],
        &["state", "history", "myapp-qa", "vm-myapp"],
        &[
            "state",
            "history",
            "deployment.myapp-qa",
            "vm-myapp",
            "-json",
        ],
        &["state", "history", "vm-myapp", "-environment", "staging"],
        &["state", "history", "deployment.nope", "vm-myapp"],
    ];
    let mut outputs: Vec<Vec<Run>> = Vec::new();
    for work in &works {
        outputs.push(
            commands
                .iter()
                .map(|args| {
                    let run = work.run(args);
                    run.ok();
                    run
                })
                .collect(),
        );
    }
    let local = &outputs[0];
    // What the local runs print, checked once.
    assert_eq!(local[0].stdout.lines().count(), 4, "{}", local[0].stdout);
    assert_eq!(
        local[1].stdout,
        "deployment.myapp-production\tproduction\t2.4.1\tdeployed\n"
    );
    let pulled: State = serde_json::from_str(&local[4].stdout).unwrap();
    let production = fixture_states()
        .into_iter()
        .find(|s| s.environment == "production")
        .unwrap();
    assert_eq!(pulled, production);
    assert_eq!(
        local[5]
            .stdout
            .lines()
            .filter(|l| !l.starts_with(' '))
            .count(),
        4,
        "one entry per environment:\n{}",
        local[5].stdout
    );
    assert!(
        local[6]
            .stdout
            .starts_with("2024-05-02T09:30:00Z  qa  apply  succeeded  by ci  (id apply-qa-1")
            && local[6]
                .stdout
                .contains("\n    deployment.myapp-qa  2.4.1\n"),
        "{}",
        local[6].stdout
    );
    let entries: serde_json::Value = serde_json::from_str(&local[7].stdout).unwrap();
    assert_eq!(entries[0]["environment"], "qa");
    assert_eq!(entries[0]["apply_id"], "apply-qa-1");
    assert_eq!(entries[0]["versions"]["deployment.myapp-qa"], "2.4.1");
    assert_eq!(
        local[9].stdout,
        "No history recorded for deployment.nope.\n"
    );

    // The S3 backend prints exactly the same.
    if let Some(s3) = outputs.get(1) {
        for (local, s3) in local.iter().zip(s3) {
            assert_eq!(local.stdout, s3.stdout, "{} vs {}", local.what, s3.what);
        }
    }

    for work in &works {
        work.run(&["state", "pull", "vm-myapp"])
            .fails("holds the state of several environments (dev, production, qa, staging)");
        work.run(&["state", "pull", "vm-myapp", "-environment", "sandbox"])
            .fails("environment sandbox has no state in");
        work.run(&["state", "show", "deployment.nope", "vm-myapp"])
            .fails("deployment.nope is not in state");
    }
}

#[test]
fn state_rm_and_push_behave_the_same_on_both_backends() {
    let moto = start_moto();
    for work in both(moto.as_ref(), "changes") {
        let before = work.state("dev");

        // rm: stops tracking, records it, touches nothing else.
        let removed = work.run(&["state", "rm", "myapp-dev", "vm-myapp"]);
        removed.ok();
        assert_eq!(
            removed.stdout,
            "Removed deployment.myapp-dev (version 2.4.1) from the state of environment dev \
             (serial 4). Its targets were not touched; slipway no longer tracks them.\n"
        );
        let dev = work.state("dev");
        assert_eq!(dev.serial, before.serial + 1);
        assert_eq!(dev.lineage, before.lineage);
        assert!(!dev.deployments.contains_key("deployment.myapp-dev"));
        assert_eq!(dev.history.len(), before.history.len() + 1);
        let entry = dev.history.last().unwrap();
        assert_eq!(entry.operation, HistoryOperation::StateRm);
        assert_eq!(entry.versions["deployment.myapp-dev"], "2.4.1");
        assert_eq!(entry.result, HistoryResult::Succeeded);
        let history = work.run(&["state", "history", "myapp-dev", "vm-myapp"]);
        history.ok();
        assert!(
            history.stdout.contains("  dev  state-rm  succeeded  by "),
            "{}",
            history.stdout
        );
        work.run(&["state", "rm", "deployment.myapp-dev", "vm-myapp"])
            .fails("deployment.myapp-dev is not in state");
        assert_eq!(
            work.state("production").serial,
            3,
            "other environments untouched"
        );
        assert_eq!(work.backend().current_lock("dev").unwrap(), None);

        // pull → push of the same lineage and serial: accepted, serial above both.
        let pulled = work.run(&["state", "pull", "vm-myapp", "-environment", "dev"]);
        pulled.ok();
        let file = work.cwd.join("dev.json");
        std::fs::write(&file, &pulled.stdout).unwrap();
        let pushed = work.run(&["state", "push", "dev.json", "vm-myapp"]);
        pushed.ok();
        assert!(
            pushed
                .stdout
                .starts_with("Pushed the state of environment dev to ")
                && pushed
                    .stdout
                    .contains(": serial 5 (it replaced serial 4, lineage "),
            "{}",
            pushed.stdout
        );
        assert_eq!(
            work.state("dev").history.last().unwrap().operation,
            HistoryOperation::StatePush
        );

        // An older serial is refused, and accepted with -force.
        let mut older: State = serde_json::from_str(&pulled.stdout).unwrap();
        older.serial = 2;
        std::fs::write(&file, serde_json::to_vec_pretty(&older).unwrap()).unwrap();
        work.run(&["state", "push", "dev.json", "vm-myapp"])
            .fails("has serial 5, and the incoming state has serial 2");
        assert_eq!(work.state("dev").serial, 5);

        // Another lineage is refused, also from stdin, and accepted with -force.
        let mut other = State::new("dev");
        other.serial = 50;
        let text = serde_json::to_vec_pretty(&other).unwrap();
        std::fs::write(&file, &text).unwrap();
        work.run(&["state", "push", "dev.json", "vm-myapp"])
            .fails(&format!(
                "has lineage {}, the incoming state has lineage {}",
                before.lineage, other.lineage
            ));
        let mut from_stdin = work.command(&["state", "push", "-", "vm-myapp"]);
        from_stdin
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = from_stdin.spawn().unwrap();
        {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(&text).unwrap();
        }
        let output = child.wait_with_output().unwrap();
        Run::from(&["state", "push", "-"], work.name(), output).fails("-force");
        assert_eq!(work.state("dev").lineage, before.lineage);

        work.run(&["state", "push", "-force", "dev.json", "vm-myapp"])
            .ok();
        let replaced = work.state("dev");
        assert_eq!(replaced.lineage, other.lineage);
        assert_eq!(replaced.serial, 51);

        // A file that is not a state is refused before anything is locked.
        std::fs::write(&file, "{ not json").unwrap();
        work.run(&["state", "push", "dev.json", "vm-myapp"])
            .fails("is unreadable");
        assert_eq!(work.backend().current_lock("dev").unwrap(), None);
    }
}

#[test]
fn locks_force_unlock_and_lock_timeout_behave_the_same_on_both_backends() {
    let moto = start_moto();
    for work in both(moto.as_ref(), "locks") {
        let backend = work.backend();
        let guard = backend.lock("qa", "apply").unwrap();
        let id = guard.info().id.clone();

        // Without -lock-timeout a held lock fails at once, naming the holder.
        let refused = work.run(&["state", "rm", "myapp-qa", "vm-myapp"]);
        refused.fails(&format!(
            "state of environment \"qa\" is locked by {}",
            guard.info().who
        ));
        assert!(refused.stderr.contains(&id), "{}", refused.stderr);
        let refused = work.run(&["state", "rm", "myapp-qa", "vm-myapp", "-lock-timeout", "1s"]);
        refused.fails("gave up after waiting 1s for the lock");

        // With it, the command waits until the lock is released.
        let waiting = work
            .command(&[
                "state",
                "rm",
                "myapp-qa",
                "vm-myapp",
                "-lock-timeout",
                "30s",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(1500));
        assert!(
            work.state("qa")
                .deployments
                .contains_key("deployment.myapp-qa"),
            "{}: nothing happens while the lock is held",
            work.name()
        );
        let started = Instant::now();
        guard.release().unwrap();
        let output = waiting.wait_with_output().unwrap();
        let run = Run::from(
            &["state", "rm", "-lock-timeout", "30s"],
            work.name(),
            output,
        );
        run.ok();
        assert!(started.elapsed() < Duration::from_secs(10));
        assert!(
            run.stderr
                .contains("Waiting up to 30s for the lock of environment qa, held by"),
            "{}",
            run.stderr
        );
        assert!(!work
            .state("qa")
            .deployments
            .contains_key("deployment.myapp-qa"));

        // A lock left by a process that is gone: force-unlock with its id.
        let stale = backend.lock("staging", "apply").unwrap();
        let id = stale.info().id.clone();
        std::mem::forget(stale);
        let serial = work.state("staging").serial;
        work.run(&["force-unlock", "not-the-id", "vm-myapp"])
            .fails("no environment is locked with id not-the-id");
        work.run(&[
            "force-unlock",
            "not-the-id",
            "vm-myapp",
            "-environment",
            "staging",
        ])
        .fails(&format!(
            "is locked with id {id}, not not-the-id; nothing was unlocked"
        ));
        let unlocked = work.run(&["force-unlock", &id, "vm-myapp"]);
        unlocked.ok();
        assert_eq!(
            unlocked.stdout,
            format!("Removed lock {id} of environment staging.\n")
        );
        assert_eq!(backend.current_lock("staging").unwrap(), None);
        assert_eq!(
            work.state("staging").serial,
            serial,
            "the state is untouched"
        );
        work.run(&["force-unlock", &id, "vm-myapp", "-environment", "staging"])
            .fails("is not locked");
    }
}
