//! The S3 state backend against a real S3 API (moto's server on loopback):
//! plan and apply through the binary with state in S3, the lock under a race
//! of 16 processes, writes based on an old ETag, a killed and an interrupted
//! apply, migration local → S3 → local, and `state push` of another lineage.
//!
//! Every test starts its own moto server and skips with a note when moto is
//! not installed (except under CI). Deployments use the quickstart's local
//! transport: hosts are directories, servers listen on 127.0.0.1.

use crate::support;
use crate::support::text;

use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use crate::moto::Moto;
use slipway::state::{
    Backend, DeploymentStatus, HistoryOperation, HistoryResult, HostStatus, LocalBackend,
    S3Backend, S3Settings, State, StateError,
};

const PREFIX: &str = "quickstart/";

fn start_moto() -> Option<Moto> {
    let moto = Moto::start();
    if moto.is_none() {
        eprintln!("note: test skipped, moto is not installed on this machine");
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

fn create_bucket(moto: &Moto, bucket: &str) {
    block_on(async {
        moto.s3()
            .await
            .create_bucket()
            .bucket(bucket)
            .send()
            .await
            .unwrap_or_else(|e| panic!("CreateBucket {bucket}: {e:?}"));
    });
}

/// The raw bytes of an object, or `None`.
fn object(moto: &Moto, bucket: &str, key: &str) -> Option<Vec<u8>> {
    block_on(async {
        let client = moto.s3().await;
        match client.get_object().bucket(bucket).key(key).send().await {
            Ok(output) => Some(output.body.collect().await.unwrap().into_bytes().to_vec()),
            Err(error) if error.raw_response().map(|r| r.status().as_u16()) == Some(404) => None,
            Err(error) => panic!("GetObject {key}: {error:?}"),
        }
    })
}

fn s3_backend(moto: &Moto, bucket: &str, prefix: &str) -> S3Backend {
    let sdk_config = block_on(moto.sdk_config());
    S3Backend::with_sdk_config(
        &S3Settings {
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
            endpoint: Some(moto.endpoint.clone()),
            ..S3Settings::default()
        },
        &sdk_config,
    )
    .unwrap()
}

/// A copy of the quickstart whose state is in a moto bucket. With
/// [`Quickstart::with_hold_check`] its health check waits while the file
/// `hold` exists, so a test can keep an apply running, lock held, as long as
/// it needs.
struct Quickstart<'a> {
    moto: &'a Moto,
    bucket: String,
    sandbox: support::quickstart::Quickstart,
}

impl Deref for Quickstart<'_> {
    type Target = support::quickstart::Quickstart;

    fn deref(&self) -> &support::quickstart::Quickstart {
        &self.sandbox
    }
}

impl<'a> Quickstart<'a> {
    fn new(moto: &'a Moto, bucket: &str) -> Quickstart<'a> {
        create_bucket(moto, bucket);
        let quickstart = Quickstart {
            moto,
            bucket: bucket.to_string(),
            sandbox: support::quickstart::Quickstart::new(),
        };
        quickstart.use_s3(PREFIX);
        quickstart
    }

    /// Make the health check wait while the hold file exists.
    fn with_hold_check(self) -> Quickstart<'a> {
        let check = self.root.join("app/bin/check.sh");
        let original = std::fs::read_to_string(&check).unwrap();
        std::fs::write(
            &check,
            original.replacen(
                "set -eu\n",
                &format!(
                    "set -eu\n# Tests: wait while the hold file exists (at most 2 minutes).\n\
                     n=0; while [ -e '{}' ] && [ $n -lt 600 ]; do sleep 0.2; n=$((n+1)); done\n",
                    self.hold_file().display()
                ),
                1,
            ),
        )
        .unwrap();
        self
    }

    fn hold_file(&self) -> PathBuf {
        self.root.join("hold")
    }

    fn hold(&self) {
        std::fs::write(self.hold_file(), "").unwrap();
    }

    fn let_go(&self) {
        let _ = std::fs::remove_file(self.hold_file());
    }

    /// Point the backend block at the moto bucket under `prefix`.
    fn use_s3(&self, prefix: &str) {
        self.set_backend(&format!(
            "backend \"s3\" {{\n    bucket   = \"{}\"\n    prefix   = \"{prefix}\"\n    \
             region   = \"us-east-1\"\n    endpoint = \"{}\"\n  }}",
            self.bucket, self.moto.endpoint
        ));
    }

    fn use_local(&self) {
        self.set_backend("backend \"local\" { path = \".slipway/state\" }");
    }

    fn set_backend(&self, block: &str) {
        let main = self.root.join("main.hcl");
        let text = std::fs::read_to_string(&main).unwrap();
        let start = text.find("  backend \"").unwrap();
        let end = start + text[start..].find("\n}\n").unwrap();
        let text = format!("{}  {block}{}", &text[..start], &text[end..]);
        std::fs::write(&main, text).unwrap();
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = self.sandbox.command(args);
        self.moto.apply_env(&mut command);
        command
    }

    /// Commands that take no variables (state commands, init, force-unlock).
    fn plain(&self, args: &[&str]) -> Output {
        let mut command = self.sandbox.command_exactly(args);
        self.moto.apply_env(&mut command);
        command.output().unwrap()
    }

    fn slipway(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    fn apply(&self, version: &str) -> Output {
        let var = format!("version={version}");
        self.slipway(&["apply", ".", "-auto-approve", "-var", &var])
    }

    fn spawn_apply(&self, version: &str, extra: &[&str]) -> Child {
        let var = format!("version={version}");
        let mut args = vec!["apply", ".", "-auto-approve", "-var", &var];
        args.extend_from_slice(extra);
        self.command(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    fn backend(&self) -> S3Backend {
        s3_backend(self.moto, &self.bucket, PREFIX)
    }

    fn state(&self) -> State {
        self.backend().read("local").unwrap().expect("state in S3")
    }

    fn state_bytes(&self) -> Option<Vec<u8>> {
        object(self.moto, &self.bucket, &format!("{PREFIX}local.json"))
    }

    fn local_backend(&self) -> LocalBackend {
        self.sandbox.backend()
    }
}

/// Lets a held health check go; the shared sandbox then stops the hosts.
impl Drop for Quickstart<'_> {
    fn drop(&mut self) {
        self.let_go();
    }
}

/// Wait (bounded) until `condition` holds.
fn wait_until(what: &str, limit: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Wait (bounded) for a child; kill it and fail when it takes too long.
fn wait_output(mut child: Child, limit: Duration) -> Output {
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let output = child.wait_with_output().unwrap();
            panic!("process did not finish in {limit:?}:\n{}", text(&output));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

// ---------------------------------------------------------------------------
// 1. plan and apply with state in S3
// ---------------------------------------------------------------------------

#[test]
fn plan_and_apply_with_state_in_s3_and_a_second_plan_sees_it() {
    let Some(moto) = start_moto() else { return };
    let quickstart = Quickstart::new(&moto, "apply-state");

    let init = quickstart.plain(&["init", "."]);
    assert_eq!(init.status.code(), Some(0), "{}", text(&init));
    assert!(
        text(&init).contains(&format!(
            "State backend: s3://apply-state/quickstart/ at {}.",
            moto.endpoint
        )),
        "{}",
        text(&init)
    );
    assert!(
        text(&init).contains("local: no state yet"),
        "{}",
        text(&init)
    );

    let plan = quickstart.slipway(&["plan", "."]);
    assert_eq!(plan.status.code(), Some(2), "{}", text(&plan));

    let applied = quickstart.apply("1.0.0");
    assert_eq!(applied.status.code(), Some(0), "{}", text(&applied));
    quickstart.assert_serving("1.0.0");
    assert!(
        !quickstart.root.join(".slipway/state").exists(),
        "no local state is written"
    );
    let state = quickstart.state();
    let deployment = &state.deployments["deployment.hello"];
    assert_eq!(deployment.status, DeploymentStatus::Deployed);
    assert!(deployment
        .hosts
        .values()
        .all(|host| host.status == HostStatus::Deployed && host.version == "1.0.0"));
    assert_eq!(state.history.len(), 1);
    assert_eq!(state.history[0].result, HistoryResult::Succeeded);
    assert!(
        object(&moto, "apply-state", "quickstart/local.json.lock").is_none(),
        "the lock is released after apply"
    );

    let plan = quickstart.slipway(&["plan", ".", "-var", "version=1.0.0"]);
    assert_eq!(
        plan.status.code(),
        Some(0),
        "a second plan sees the applied state: {}",
        text(&plan)
    );
    let list = quickstart.plain(&["state", "list", "."]);
    assert_eq!(
        String::from_utf8_lossy(&list.stdout),
        "deployment.hello\tlocal\t1.0.0\tdeployed\n"
    );

    // A second apply while the lock is held fails fast, naming the holder...
    let backend = quickstart.backend();
    let guard = backend.lock("local", "apply").unwrap();
    let started = Instant::now();
    let refused = quickstart.apply("1.0.1");
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(started.elapsed() < Duration::from_secs(20));
    let holder = guard.info();
    assert!(
        text(&refused).contains(&format!(
            "is locked by {}@{} (pid {})",
            holder.who, holder.host, holder.pid
        )) && text(&refused).contains(&holder.id),
        "{}",
        text(&refused)
    );
    assert_eq!(
        quickstart.state().serial,
        state.serial,
        "nothing was written"
    );

    // ... and with -lock-timeout it waits for the lock and then applies.
    let waiting = quickstart.spawn_apply("1.0.1", &["-lock-timeout", "60s"]);
    std::thread::sleep(Duration::from_secs(2));
    guard.release().unwrap();
    let output = wait_output(waiting, Duration::from_secs(120));
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert!(
        text(&output).contains("Waiting up to 60s for the lock of environment local, held by"),
        "{}",
        text(&output)
    );
    assert_eq!(
        quickstart.state().deployments["deployment.hello"].version,
        "1.0.1"
    );
}

// ---------------------------------------------------------------------------
// 2. sixteen processes race for one lock
// ---------------------------------------------------------------------------

#[test]
fn sixteen_processes_racing_for_the_lock_get_exactly_one_winner() {
    let Some(moto) = start_moto() else { return };
    let quickstart = Quickstart::new(&moto, "race").with_hold_check();
    // The winner's apply stays in its first health check until let go.
    quickstart.hold();
    let racers: Vec<Child> = (0..16)
        .map(|_| quickstart.spawn_apply("1.0.0", &[]))
        .collect();
    let pids: Vec<u32> = racers.iter().map(Child::id).collect();

    // Every loser fails on its own; the winner is still applying.
    let mut racers: Vec<Option<Child>> = racers.into_iter().map(Some).collect();
    let mut losers = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while losers.len() < 15 {
        assert!(
            Instant::now() < deadline,
            "only {} racers failed",
            losers.len()
        );
        for slot in racers.iter_mut() {
            let finished = slot
                .as_mut()
                .is_some_and(|child| child.try_wait().unwrap().is_some());
            if finished {
                let child = slot.take().unwrap();
                losers.push(child.wait_with_output().unwrap());
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    let mut still_running: Vec<Child> = racers.into_iter().flatten().collect();
    assert_eq!(still_running.len(), 1, "exactly one racer holds the lock");
    let winner = still_running.pop().unwrap();
    assert!(winner.id() != 0 && pids.contains(&winner.id()));

    let holder = quickstart
        .backend()
        .current_lock("local")
        .unwrap()
        .expect("the winner's lock");
    assert_eq!(holder.pid, winner.id(), "the lock names the winner");
    assert_eq!(holder.operation, "apply");
    for loser in &losers {
        let log = text(loser);
        assert_eq!(loser.status.code(), Some(1), "{log}");
        assert!(
            log.contains(&format!(
                "is locked by {}@{} (pid {})",
                holder.who, holder.host, holder.pid
            )) && log.contains(&holder.id),
            "every loser names the winner: {log}"
        );
    }

    quickstart.let_go();
    let output = wait_output(winner, Duration::from_secs(120));
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert_eq!(quickstart.backend().current_lock("local").unwrap(), None);
    assert_eq!(quickstart.state().history.len(), 1, "one apply happened");
}

#[test]
fn sixteen_threads_with_their_own_clients_racing_for_the_lock_get_one_winner() {
    let Some(moto) = start_moto() else { return };
    create_bucket(&moto, "thread-race");
    let backends: Vec<S3Backend> = (0..16)
        .map(|_| s3_backend(&moto, "thread-race", "team/"))
        .collect();
    let start = Arc::new(Barrier::new(16));
    let racers: Vec<_> = backends
        .into_iter()
        .enumerate()
        .map(|(racer, backend)| {
            let start = Arc::clone(&start);
            std::thread::spawn(move || {
                start.wait();
                let result = backend.lock("prod", &format!("apply-{racer}"));
                (backend, result)
            })
        })
        .collect();
    let results: Vec<_> = racers.into_iter().map(|r| r.join().unwrap()).collect();
    let winners: Vec<_> = results
        .iter()
        .filter_map(|(_, result)| result.as_ref().ok())
        .collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    let winner = winners[0].info().clone();
    for (_, result) in &results {
        if let Err(error) = result {
            match error {
                StateError::Locked(holder) => assert_eq!(holder.as_ref(), &winner),
                other => panic!("unexpected error: {other}"),
            }
        }
    }
    let lock: slipway::state::LockInfo = serde_json::from_slice(
        &object(&moto, "thread-race", "team/prod.json.lock").expect("lock object"),
    )
    .unwrap();
    assert_eq!(
        lock, winner,
        "the lock object holds id, operation, who, host, pid, time"
    );
    drop(results);
    assert!(object(&moto, "thread-race", "team/prod.json.lock").is_none());
}

// ---------------------------------------------------------------------------
// 3. a write based on an old ETag
// ---------------------------------------------------------------------------

#[test]
fn a_write_based_on_an_old_etag_is_refused_and_nothing_is_lost() {
    let Some(moto) = start_moto() else { return };
    create_bucket(&moto, "etags");
    let first = s3_backend(&moto, "etags", "");
    let second = s3_backend(&moto, "etags", "");

    assert_eq!(first.read("prod").unwrap(), None);
    let mut mine = State::new("prod");
    first.write(&mut mine).unwrap();
    assert_eq!(mine.serial, 1);

    // Someone else reads and writes after us.
    let mut theirs = second.read("prod").unwrap().expect("state");
    theirs.history.push(slipway::state::HistoryEntry {
        apply_id: "theirs".to_string(),
        operation: HistoryOperation::Apply,
        who: "bob".to_string(),
        started_at: "2026-01-01T00:00:00Z".to_string(),
        finished_at: None,
        plan_digest: None,
        versions: Default::default(),
        result: HistoryResult::Succeeded,
        approvals: Vec::new(),
    });
    second.write(&mut theirs).unwrap();
    let stored = object(&moto, "etags", "prod.json").unwrap();

    // Our write, based on what we read before theirs, is refused.
    mine.deployments.clear();
    let error = first.write(&mut mine).expect_err("stale ETag");
    assert!(matches!(error, StateError::Conflict { .. }), "{error}");
    let message = error.to_string();
    assert!(message.contains("changed by someone else"), "{message}");
    assert!(message.contains("s3://etags/prod.json"), "{message}");
    assert!(message.contains("slipway plan"), "{message}");
    assert_eq!(mine.serial, 1, "a refused write does not change the serial");
    assert_eq!(
        object(&moto, "etags", "prod.json").unwrap(),
        stored,
        "their state is intact"
    );

    // A backend that never read the state does not overwrite it either.
    let blind = s3_backend(&moto, "etags", "");
    let error = blind
        .write(&mut State::new("prod"))
        .expect_err("never read");
    assert!(matches!(error, StateError::Conflict { .. }), "{error}");
    assert_eq!(object(&moto, "etags", "prod.json").unwrap(), stored);

    // After reading again, writing works, and serials go on from theirs.
    let mut fresh = first.read("prod").unwrap().unwrap();
    assert_eq!(fresh, theirs);
    first.write(&mut fresh).unwrap();
    assert_eq!(fresh.serial, 3);
    assert_eq!(second.read("prod").unwrap().unwrap(), fresh);
    assert_eq!(first.environments().unwrap(), ["prod"]);
}

/// Keys under `prefix` in `bucket`.
fn keys(moto: &Moto, bucket: &str, prefix: &str) -> Vec<String> {
    block_on(async {
        let output = moto
            .s3()
            .await
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .send()
            .await
            .unwrap();
        output
            .contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_string))
            .collect()
    })
}

fn put_object(moto: &Moto, bucket: &str, key: &str, contents: Vec<u8>) {
    block_on(async {
        moto.s3()
            .await
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(contents.into())
            .send()
            .await
            .unwrap();
    });
}

/// A state with deployment.web on hosts h0..h3, written whole.
fn fleet_state(backend: &S3Backend) -> State {
    let mut state = State::new("prod");
    let mut deployment = slipway::state::DeploymentState::new(
        "web",
        "1.0.0",
        DeploymentStatus::InProgress,
        "2026-12-07T00:00:00Z",
    );
    for i in 0..4 {
        deployment.hosts.insert(
            format!("h{i}"),
            slipway::state::HostState {
                version: "1.0.0".into(),
                artifact_sha256: None,
                status: HostStatus::Deployed,
                updated_at: "2026-12-07T00:00:00Z".into(),
                config_digest: None,
                rollout: None,
                previous: None,
            },
        );
    }
    state
        .deployments
        .insert("deployment.web".into(), deployment);
    backend.write(&mut state).unwrap();
    state
}

/// Move host `h{i}` to `version`: one host step's write.
fn host_step(backend: &S3Backend, state: &mut State, i: usize, version: &str) {
    let host = format!("h{i}");
    let deployment = state.deployments.get_mut("deployment.web").unwrap();
    let record = deployment.hosts.get_mut(&host).unwrap();
    record.version = version.into();
    record.status = HostStatus::InProgress;
    deployment.updated_at = format!("2026-12-07T00:00:0{i}Z");
    let touched = slipway::state::Touched {
        hosts: vec![("deployment.web".into(), host)],
        journal: Vec::new(),
    };
    backend.append(state, &touched).unwrap();
}

#[test]
fn host_steps_in_s3_are_small_objects_every_reader_replays_and_a_whole_write_folds() {
    let Some(moto) = start_moto() else { return };
    create_bucket(&moto, "deltas");
    let apply = s3_backend(&moto, "deltas", "app/");
    let mut state = fleet_state(&apply);
    let whole = object(&moto, "deltas", "app/prod.json").unwrap();

    for (i, version) in [(0, "2.0.0"), (2, "2.0.0"), (0, "2.0.1")] {
        host_step(&apply, &mut state, i, version);
    }
    assert_eq!(state.serial, 4);
    assert_eq!(
        keys(&moto, "deltas", "app/prod.json.journal/"),
        [2, 3, 4].map(|serial| format!("app/prod.json.journal/{serial:020}")),
        "one small object per step"
    );
    assert_eq!(
        object(&moto, "deltas", "app/prod.json").unwrap(),
        whole,
        "the state object is not rewritten"
    );
    assert_eq!(apply.environments().unwrap(), ["prod"]);

    // Any reader (plan, another apply after a kill) sees every step.
    let reader = s3_backend(&moto, "deltas", "app/");
    assert_eq!(reader.read("prod").unwrap().as_ref(), Some(&state));

    // A new apply after a kill goes on appending to what it read.
    let mut resumed = reader.read("prod").unwrap().unwrap();
    host_step(&reader, &mut resumed, 3, "2.0.0");
    assert_eq!(
        s3_backend(&moto, "deltas", "app/").read("prod").unwrap(),
        Some(resumed.clone())
    );

    // A whole write folds the steps into the state object and deletes them.
    resumed
        .deployments
        .get_mut("deployment.web")
        .unwrap()
        .status = DeploymentStatus::Deployed;
    reader.write(&mut resumed).unwrap();
    assert_eq!(
        keys(&moto, "deltas", "app/prod.json.journal/"),
        Vec::<String>::new()
    );
    let folded: State =
        serde_json::from_slice(&object(&moto, "deltas", "app/prod.json").unwrap()).unwrap();
    assert_eq!(folded, resumed);
    assert_eq!(
        s3_backend(&moto, "deltas", "app/").read("prod").unwrap(),
        Some(resumed)
    );
}

#[test]
fn steps_on_top_of_a_replaced_state_object_are_refused_and_leftovers_of_a_fold_ignored() {
    let Some(moto) = start_moto() else { return };
    create_bucket(&moto, "stray");
    let apply = s3_backend(&moto, "stray", "");
    let mut state = fleet_state(&apply);
    host_step(&apply, &mut state, 1, "2.0.0");
    let step = keys(&moto, "stray", "prod.json.journal/").remove(0);
    let step_bytes = object(&moto, "stray", &step).unwrap();

    // A leftover of a fold (its delete failed) continues an object that is
    // gone and is older than the state: ignored.
    apply.write(&mut state).unwrap();
    put_object(&moto, "stray", &step, step_bytes.clone());
    assert_eq!(
        s3_backend(&moto, "stray", "").read("prod").unwrap(),
        Some(state.clone())
    );

    // The state object replaced by hand with an older copy after a killed
    // apply's step: the step is newer than it and continues another object.
    let mut older: State =
        serde_json::from_slice(&object(&moto, "stray", "prod.json").unwrap()).unwrap();
    older.serial = 1;
    put_object(
        &moto,
        "stray",
        "prod.json",
        serde_json::to_vec(&older).unwrap(),
    );
    let error = s3_backend(&moto, "stray", "")
        .read("prod")
        .expect_err("a step on top of another state object");
    let message = error.to_string();
    assert!(matches!(error, StateError::Journal { .. }), "{message}");
    assert!(
        message.contains("s3://stray/prod.json.journal/"),
        "{message}"
    );
    assert!(message.contains("was replaced"), "{message}");
    assert!(message.contains("Nothing was changed"), "{message}");
    assert_eq!(object(&moto, "stray", &step).unwrap(), step_bytes);
}

// ---------------------------------------------------------------------------
// 4. a killed apply, and an interrupted one
// ---------------------------------------------------------------------------

#[test]
fn a_killed_apply_leaves_a_lock_that_force_unlock_removes_and_the_state_is_intact() {
    let Some(moto) = start_moto() else { return };
    let quickstart = Quickstart::new(&moto, "killed").with_hold_check();
    assert_eq!(quickstart.apply("1.0.0").status.code(), Some(0));

    quickstart.hold();
    let mut apply = quickstart.spawn_apply("1.0.1", &[]);
    // Killed while host-1 is in its health check, recorded as in progress.
    wait_until(
        "host-1 is recorded in progress",
        Duration::from_secs(60),
        || {
            quickstart.state().deployments["deployment.hello"].hosts["host-1"].status
                == HostStatus::InProgress
        },
    );
    let pid = apply.id();
    apply.kill().unwrap();
    apply.wait().unwrap();
    quickstart.let_go();

    let holder = quickstart
        .backend()
        .current_lock("local")
        .unwrap()
        .expect("the killed apply's lock is still there");
    assert_eq!(holder.pid, pid);
    let before = quickstart.state_bytes().expect("state object");
    let state = quickstart.state();
    let deployment = &state.deployments["deployment.hello"];
    assert_eq!(deployment.status, DeploymentStatus::InProgress);
    assert_eq!(deployment.version, "1.0.1");
    assert_eq!(deployment.hosts["host-2"].version, "1.0.0");

    // (On this machine the next apply would take the dead process's lock over
    // by itself, see tests/apply_resume.rs; force-unlock is what an operator
    // runs when the holder was another machine.)
    let unlocked = quickstart.plain(&["force-unlock", &holder.id, "."]);
    assert_eq!(unlocked.status.code(), Some(0), "{}", text(&unlocked));
    assert_eq!(
        String::from_utf8_lossy(&unlocked.stdout),
        format!("Removed lock {} of environment local.\n", holder.id)
    );
    assert_eq!(quickstart.backend().current_lock("local").unwrap(), None);
    assert_eq!(
        quickstart.state_bytes().unwrap(),
        before,
        "force-unlock leaves the state object as it was"
    );

    let resumed = quickstart.apply("1.0.1");
    assert_eq!(resumed.status.code(), Some(0), "{}", text(&resumed));
    quickstart.assert_serving("1.0.1");
}

#[test]
fn ctrl_c_during_apply_releases_the_lock() {
    let Some(moto) = start_moto() else { return };
    let quickstart = Quickstart::new(&moto, "interrupted").with_hold_check();
    quickstart.hold();
    let apply = quickstart.spawn_apply("1.0.0", &[]);
    wait_until(
        "host-1 is recorded in progress",
        Duration::from_secs(60),
        || {
            quickstart
                .backend()
                .read("local")
                .ok()
                .flatten()
                .is_some_and(|state| {
                    state
                        .deployments
                        .get("deployment.hello")
                        .and_then(|d| d.hosts.get("host-1"))
                        .is_some_and(|h| h.status == HostStatus::InProgress)
                })
        },
    );
    assert!(quickstart
        .backend()
        .current_lock("local")
        .unwrap()
        .is_some());
    let interrupted = Command::new("kill")
        .args(["-INT", &apply.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    // The host in flight finishes its step; no other host starts.
    quickstart.let_go();
    let output = wait_output(apply, Duration::from_secs(60));
    assert_eq!(output.status.code(), Some(130), "{}", text(&output));
    assert!(
        text(&output).contains("Apply interrupted: no new step was started")
            && text(&output).contains("the lock is released"),
        "{}",
        text(&output)
    );
    assert_eq!(quickstart.backend().current_lock("local").unwrap(), None);
    let state = quickstart.state();
    let hosts = &state.deployments["deployment.hello"].hosts;
    assert_eq!(
        hosts["host-1"].status,
        HostStatus::Deployed,
        "the step in flight finished and was recorded"
    );
    assert!(
        !hosts.contains_key("host-2"),
        "no new step started: {hosts:?}"
    );
    let resumed = quickstart.apply("1.0.0");
    assert_eq!(resumed.status.code(), Some(0), "{}", text(&resumed));
}

// ---------------------------------------------------------------------------
// 5. migration local → S3 → local
// ---------------------------------------------------------------------------

#[test]
fn migrate_local_to_s3_and_back_keeps_serial_lineage_and_history() {
    let Some(moto) = start_moto() else { return };
    let quickstart = Quickstart::new(&moto, "migrate");
    quickstart.use_local();
    let init = quickstart.plain(&["init", "."]);
    assert_eq!(init.status.code(), Some(0), "{}", text(&init));
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/states/quickstart-applied/local.json");
    std::fs::copy(&fixture, quickstart.root.join(".slipway/state/local.json")).unwrap();
    let local_state = quickstart.local_backend().read("local").unwrap().unwrap();

    // The backend block now names S3: nothing runs until init.
    quickstart.use_s3(PREFIX);
    for args in [&["plan", "."][..], &["state", "list", "."], &["init", "."]] {
        let refused = quickstart.plain(args);
        assert_eq!(
            refused.status.code(),
            Some(1),
            "{args:?}: {}",
            text(&refused)
        );
        assert!(
            text(&refused).contains("-migrate-state"),
            "{args:?}: {}",
            text(&refused)
        );
    }
    let migrated = quickstart.plain(&["init", "-migrate-state", "."]);
    assert_eq!(migrated.status.code(), Some(0), "{}", text(&migrated));
    assert!(
        text(&migrated).contains(&format!(
            "local: serial {}, lineage {}, 1 history entry copied",
            local_state.serial, local_state.lineage
        )),
        "{}",
        text(&migrated)
    );
    assert_eq!(
        quickstart.state(),
        local_state,
        "the same state, serial included"
    );
    let plan = quickstart.plain(&["plan", "."]);
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan));

    // A change made in S3 travels back.
    let removed = quickstart.plain(&["state", "rm", "deployment.hello", "."]);
    assert_eq!(removed.status.code(), Some(0), "{}", text(&removed));
    let s3_state = quickstart.state();
    assert_eq!(s3_state.serial, local_state.serial + 1);
    assert_eq!(s3_state.history.len(), 2);

    quickstart.use_local();
    let back = quickstart.plain(&["init", "-migrate-state", "."]);
    assert_eq!(back.status.code(), Some(0), "{}", text(&back));
    let returned = quickstart.local_backend().read("local").unwrap().unwrap();
    assert_eq!(returned, s3_state);
    assert_eq!(returned.lineage, local_state.lineage);
    assert_eq!(returned.history[..1], local_state.history[..]);
    assert_eq!(returned.history[1].operation, HistoryOperation::StateRm);

    // A destination holding a state of another lineage is refused.
    let other = s3_backend(&moto, "migrate", "other/");
    let mut foreign = State::new("local");
    assert_eq!(other.read("local").unwrap(), None);
    other.write(&mut foreign).unwrap();
    let foreign_bytes = object(&moto, "migrate", "other/local.json").unwrap();
    quickstart.use_s3("other/");
    let refused = quickstart.plain(&["init", "-migrate-state", "."]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(
        text(&refused).contains(&format!("lineage {}", foreign.lineage))
            && text(&refused).contains("Nothing was migrated"),
        "{}",
        text(&refused)
    );
    assert_eq!(
        object(&moto, "migrate", "other/local.json").unwrap(),
        foreign_bytes
    );
    assert!(object(&moto, "migrate", "other/local.json.lock").is_none());
    assert!(!quickstart.root.join(".slipway/state/local.lock").exists());
}

// ---------------------------------------------------------------------------
// 6. state push of another lineage
// ---------------------------------------------------------------------------

#[test]
fn state_push_of_another_lineage_is_refused() {
    let Some(moto) = start_moto() else { return };
    let quickstart = Quickstart::new(&moto, "push");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/states/quickstart-applied/local.json");
    let pushed = quickstart.plain(&["state", "push", fixture.to_str().unwrap(), "."]);
    assert_eq!(pushed.status.code(), Some(0), "{}", text(&pushed));
    let current = quickstart.state();
    let before = quickstart.state_bytes().unwrap();

    let mut foreign = State::new("local");
    foreign.serial = current.serial + 10;
    let file = quickstart.root.join("foreign.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&foreign).unwrap()).unwrap();
    let refused = quickstart.plain(&["state", "push", "foreign.json", "."]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    let message = text(&refused);
    assert!(
        message.contains(&current.lineage) && message.contains(&foreign.lineage),
        "{message}"
    );
    assert!(message.contains("-force"), "{message}");
    assert_eq!(
        quickstart.state_bytes().unwrap(),
        before,
        "nothing was written"
    );
    assert!(object(&moto, "push", "quickstart/local.json.lock").is_none());

    let forced = quickstart.plain(&["state", "push", "-force", "foreign.json", "."]);
    assert_eq!(forced.status.code(), Some(0), "{}", text(&forced));
    let replaced = quickstart.state();
    assert_eq!(replaced.lineage, foreign.lineage);
    assert_eq!(replaced.serial, foreign.serial + 1);
}

/// With state in S3, an approval records the AWS caller identity of the
/// credentials (moto answers `arn:aws:sts::123456789012:user/moto`), and an
/// `approvers` list is matched against it, not against `$USER`: USER=moto
/// cannot pass for another list, and the IAM user name `moto` may decide.
#[test]
fn approvals_with_state_in_s3_record_and_check_the_aws_caller_identity() {
    let Some(moto) = start_moto() else {
        return;
    };
    // A quickstart in its own bucket whose rollout waits after step 1 for an
    // approval `approvers` may give, applied up to that approval.
    let paused_for = |bucket: &str, approvers: &str| {
        let quickstart = Quickstart::new(&moto, bucket);
        quickstart.edit_config(
            "  on_failure = \"rollback\"\n}",
            &format!("  on_failure = \"rollback\"\n\n  approval \"release-manager\" {{\n    after_step = 1\n    approvers  = [{approvers}]\n  }}\n}}"),
        );
        let paused = quickstart.apply("1.0.0");
        assert_eq!(paused.status.code(), Some(0), "{}", text(&paused));
        quickstart
    };
    let approve_as = |quickstart: &Quickstart, user: &str| {
        let mut run = quickstart
            .sandbox
            .command_exactly(&["approve", "hello", "."]);
        moto.apply_env(&mut run);
        run.env("USER", user);
        run.output().unwrap()
    };

    let listed_elsewhere = paused_for("slipway-approvals-1", "\"someone-else\"");
    let refused = approve_as(&listed_elsewhere, "someone-else");
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(
        text(&refused).contains(
            "may be decided by someone-else only, not by arn:aws:sts::123456789012:user/moto (AWS caller identity)"
        ),
        "{}",
        text(&refused)
    );

    let listed = paused_for("slipway-approvals-2", "\"moto\"");
    let approved = approve_as(&listed, "someone-else");
    assert_eq!(approved.status.code(), Some(0), "{}", text(&approved));
    let state = listed.state();
    let record = &state.deployments["deployment.hello"].approvals[0];
    assert_eq!(
        record.decided_by.as_deref(),
        Some("arn:aws:sts::123456789012:user/moto (AWS caller identity)")
    );
    let entry = state.history.last().unwrap();
    assert_eq!(entry.operation, HistoryOperation::Approve);
    assert_eq!(entry.approvals[0].decided_by, record.decided_by);
}

/// The cost of one host step's state write with state in S3 (moto on
/// loopback), whole and appended, against the number of hosts the state
/// records. A benchmark, not a test: it asserts nothing about time.
/// `cargo test --test it s3_state_write_cost -- --ignored --nocapture`
#[test]
#[ignore]
fn s3_state_write_cost() {
    let Some(moto) = start_moto() else { return };
    create_bucket(&moto, "cost");
    for hosts in [10usize, 200, 1000] {
        let backend = s3_backend(&moto, "cost", &format!("{hosts}/"));
        let mut state = State::new("prod");
        let mut deployment = slipway::state::DeploymentState::new(
            "web",
            "2.0.0",
            DeploymentStatus::InProgress,
            "2026-12-07T00:00:00Z",
        );
        for i in 0..hosts {
            deployment.hosts.insert(
                format!("web-{i:04}.prod.internal"),
                slipway::state::HostState {
                    version: "2.0.0".into(),
                    artifact_sha256: Some(format!("{i:064}")),
                    status: HostStatus::Deployed,
                    updated_at: "2026-12-07T00:00:00Z".into(),
                    config_digest: Some(format!("{i:064}")),
                    rollout: Some("apply-20261207T000000Z-1a2b3c".into()),
                    previous: None,
                },
            );
        }
        state
            .deployments
            .insert("deployment.web".into(), deployment);
        backend.write(&mut state).unwrap();
        let steps = 100u32;
        let started = Instant::now();
        for _ in 0..steps {
            backend.write(&mut state).unwrap();
        }
        let whole = started.elapsed() / steps;
        let started = Instant::now();
        for n in 0..steps {
            let host = format!("web-{:04}.prod.internal", n as usize % hosts);
            let deployment = state.deployments.get_mut("deployment.web").unwrap();
            deployment.hosts.get_mut(&host).unwrap().status = HostStatus::InProgress;
            let touched = slipway::state::Touched {
                hosts: vec![("deployment.web".into(), host)],
                journal: Vec::new(),
            };
            backend.append(&mut state, &touched).unwrap();
        }
        let appended = started.elapsed() / steps;
        let started = Instant::now();
        let read = s3_backend(&moto, "cost", &format!("{hosts}/"))
            .read("prod")
            .unwrap();
        let read_time = started.elapsed();
        assert_eq!(read.as_ref(), Some(&state));
        eprintln!(
            "{hosts:>5} hosts: whole write {whole:>10.2?}; host step appended {appended:>10.2?}; \
             read with {steps} steps to replay {read_time:>10.2?}"
        );
    }
}

/// The worst day: a rollout fails, and state in S3 refuses every write from
/// then on (a role that lost `s3:PutObject`). The rollback still puts every
/// host back, says which hosts state could not record and what to run, and
/// says no host was "NOT rolled back" that was. Once writes work again,
/// `plan -refresh` names the hosts state is behind on and an apply converges.
#[test]
fn a_rollback_whose_state_writes_are_refused_still_restores_the_hosts_and_says_so() {
    let Some(moto) = start_moto() else { return };
    let quickstart = Quickstart::new(&moto, "state-refused");
    let first = quickstart.apply("1.0.0");
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));

    // 2.0.0: host-1 (the first batch) is healthy; host-2's check turns the
    // state's writes off and fails.
    let check = quickstart.root.join("app/bin/check.sh");
    let original_check = std::fs::read_to_string(&check).unwrap();
    let failing = original_check.replacen(
        "set -eu\n",
        &format!(
            "set -eu\nif [ \"$SLIPWAY_HOST\" = host-2 ]; then\n  \
               curl -sS -X POST -d '{{\"key_prefix\": \"{PREFIX}\"}}' {}/slipway-test/refuse-s3-writes >/dev/null\n  \
               echo 'host-2 is unwell' >&2; exit 1\nfi\n",
            moto.endpoint
        ),
        1,
    );
    quickstart.set_health_check(&failing);
    let failed = quickstart.apply("2.0.0");
    let shown = text(&failed);
    assert_eq!(failed.status.code(), Some(1), "{shown}");
    // Every host is back on 1.0.0, whatever state could record.
    quickstart.assert_serving("1.0.0");
    assert!(
        shown.contains("state could not record") && shown.contains("slipway plan -refresh"),
        "says state may be behind and what to run:\n{shown}"
    );
    assert!(
        !shown.contains("NOT rolled back"),
        "no host that was rolled back is called not rolled back:\n{shown}"
    );
    assert!(!shown.contains("panicked"), "{shown}");

    // Writes work again: refresh reads the hosts and shows where state is
    // behind; an apply of a healthy 2.0.0 converges.
    moto.refuse_s3_writes(None);
    let _ = quickstart.plain(&["force-unlock", "-force", "local"]);
    let refreshed = quickstart.slipway(&["plan", ".", "-refresh", "-var", "version=2.0.0"]);
    assert_eq!(refreshed.status.code(), Some(2), "{}", text(&refreshed));
    quickstart.set_health_check(&original_check);
    let fixed = quickstart.apply("2.0.0");
    assert_eq!(fixed.status.code(), Some(0), "{}", text(&fixed));
    quickstart.assert_serving("2.0.0");
    let state = quickstart.state();
    let deployment = state.deployments.values().next().unwrap();
    assert!(
        deployment
            .hosts
            .values()
            .all(|h| h.version == "2.0.0" && h.status == slipway::state::HostStatus::Deployed),
        "{deployment:#?}"
    );
}
