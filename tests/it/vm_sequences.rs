//! Random operation sequences on the VM path, checked on the hosts.
//!
//! A seeded random generator picks operations one after another on a lab of
//! real sshd hosts (see `support::ssh_lab`): apply a new version (new code,
//! new config content, or both), apply a version whose health check fails on
//! some hosts, apply a rebuild of the version the configuration asks for (CI
//! published that version again with other bytes: a hotfix tagged with the
//! same version, a build that is not reproducible; the rebuild fails its
//! health check on a host now and then), `kill -9` an apply (at one of the
//! recorder's crash points, after a random time, or while a host is in its
//! health check; the apply killed may be one of a rebuild, whose release
//! directory is replaced while `current` names it), Ctrl-C (SIGINT to the
//! apply's process group), approve and reject, a host's sshd stopped and
//! started again, a host added to and removed from the environment, a rollout
//! policy changed, the artifact's delivery switched between push (the runner
//! uploads it) and pull (each host downloads it, over https, from a repository
//! on an address of this machine every host's namespace reaches), and a host
//! changed by hand (`current` repointed, the release
//! marker edited or removed, the config file edited). After every operation the
//! test looks at the hosts themselves (where `current` points, which build the
//! release there holds, the config file's bytes, the marker, what the running
//! app answers) and at state and `slipway plan`, and checks the rules below.
//! At the end of each sequence every host comes back and one more version is
//! applied: the environment must converge.
//!
//! Builds: every build's `CODE` file names its version and build number (the
//! first build of a version is build 1), so builds differ in their bytes, and
//! the app answers with it. The release directory is named by the version
//! alone; which build it holds is its `CODE` file, and its
//! `.slipway-complete` must hold that build's sha256. State tells builds apart
//! by the artifact sha256 of each host record (and of the pair before the
//! rollout); the release marker names it too. So a pair below is (build of a
//! code version, config), and "the previous pair" may be an earlier build of
//! the same version.
//!
//! The rules (the VM invariants this project keeps):
//! 1. No mixed pairs: every host serves a release pair (code release, config)
//!    that some apply deployed as a pair, never the code of one version with the
//!    config of another, nor a build with a config no apply gave it.
//! 2. State tells the truth: after every operation that ends (kill -9
//!    included) each host's record in state equals the host's observed pair or
//!    is marked uncertain (a settled record names the build the host has and
//!    serves, and its marker names that build's sha256), and `plan -refresh`
//!    names exactly the hosts whose observed pair differs from state, or whose
//!    config it cannot tell (an unfinished update's pair without its config
//!    snapshot), no more, no fewer. Refresh reads the release `current` names,
//!    not the build in it: a host on the recorded release with another build
//!    than its record is not named, and must be one whose record is not
//!    settled (an update to that build was cut off).
//! 3. Rollback means the previous pair: a rollback puts every touched host
//!    back on the pair it served before the rollout began, whichever apply
//!    moved it (after a rebuild, the earlier build: unpacked again from its
//!    archive); a host it cannot reach is named and recorded as such, never as
//!    rolled back.
//! 4. Nothing done twice, nothing skipped: a resumed apply does not redo a
//!    host the interrupted apply recorded as finished (on the same build), and
//!    finishes the rest (hosts still on an earlier build of the version
//!    included).
//! 5. Drift is repairable: what `plan -refresh` reports, an apply puts right.
//!    (Here: the version applied at the end of a sequence repairs every host;
//!    `apply -refresh` and saved plans are tested elsewhere.)
//! 6. Confinement: not checked here (see `confinement.rs`).
//! 7. Nothing left behind: after slipway exits, by any path, no ssh master it
//!    started, and no download it began on a host, outlives it for long; no
//!    host keeps a partial download; and the state lock is free or held by a
//!    process that is gone.
//! 15. Apply does what plan showed: an apply that succeeds touches only the
//!     hosts the plan before it scheduled (marker, app process) and leaves
//!     every listed host on the pair applied (the build applied, not an
//!     earlier build of its version); the plan after it shows no changes.
//!
//! `SLIPWAY_SEQ_SEED=N` replays the sequence a failure printed (the seed of
//! that sequence); `SLIPWAY_SEQ_SECONDS=S` runs sequences for S seconds
//! (default 240). Operations that depend on timing (a kill after a random
//! time, a Ctrl-C) replay the same operation list, though the moment they hit
//! may differ by a few milliseconds.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use slipway::state::{config_digest, Backend, DeploymentState, HostStatus, LocalBackend, State};

use crate::artifact_repo::ArtifactRepo;
use crate::sshd::HostOptions;
use crate::support::processes_naming;
use crate::support::sequences::{run, OperationSequence, Rng};
use crate::support::ssh_lab::{Lab, ENVIRONMENT, GREETING};
use crate::tls::Pki;

/// sshd hosts started per sequence; the environment lists 6 to all of them.
const HOSTS: usize = 10;
/// Hosts listed when a sequence starts.
const FIRST_LISTED: usize = 8;
/// Operations per sequence (before the closing apply).
const STEPS_PER_SEQUENCE: usize = 24;
/// No slipway command may take longer than this.
const COMMAND_LIMIT: Duration = Duration::from_secs(240);
const DEPLOYMENT: &str = "deployment.app";
const CONFIG_DESTINATION: &str = "/opt/app/config/app.env";

/// The rollout policies a sequence switches between (bodies of the rollout
/// block).
const POLICIES: [&str; 6] = [
    "strategy   = \"rolling\"\n  batches    = [2]\n  on_failure = \"rollback\"",
    "strategy   = \"rolling\"\n  batches    = [1, \"50%\"]\n  on_failure = \"rollback\"",
    "strategy   = \"rolling\"\n  batches    = [3]\n  on_failure = \"pause\"",
    "strategy   = \"rolling\"\n  batches    = [2]\n  on_failure = \"rollback\"\n\n  approval \"release-manager\" {\n    after_step = 1\n  }",
    "strategy   = \"rolling\"\n  batches    = [3]\n  on_failure = \"abort\"",
    "strategy   = \"all_at_once\"\n  on_failure = \"rollback\"",
];

/// The pair a host serves: its code release (a build of a code version:
/// CI may publish a version again with other bytes, build 2, 3…) and its
/// config (a flavour).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Pair {
    version: String,
    build: u32,
    flavor: String,
}

impl std::fmt::Debug for Pair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "({} build {}, {})",
            self.version, self.build, self.flavor
        )
    }
}

impl Pair {
    /// Build `build` of `version` with config flavour `flavor`.
    fn new(version: &str, build: u32, flavor: &str) -> Pair {
        Pair {
            version: version.to_string(),
            build,
            flavor: flavor.to_string(),
        }
    }

    /// The same code with another config.
    fn with_flavor(&self, flavor: &str) -> Pair {
        Pair::new(&self.version, self.build, flavor)
    }

    /// What the build's `CODE` file holds (and the app names as its code).
    fn code(&self) -> String {
        code_of(&self.version, self.build)
    }
}

/// The `CODE` file of build `build` of `version`.
fn code_of(version: &str, build: u32) -> String {
    format!("{version} build {build}")
}

/// (version, build) a `CODE` file names.
fn parse_code(code: &str) -> Option<(String, u32)> {
    let (version, build) = code.trim().rsplit_once(" build ")?;
    Some((version.to_string(), build.parse().ok()?))
}

/// A config half of a pair: (code version, flavour). The config file names
/// the version, not the build: every build of a version has the same config.
type ConfigOf = (String, String);

/// A host's release marker's apply id and its app's pid.
type MarkerAndPid = (Option<String>, Option<String>);

#[derive(Debug, Clone)]
enum Op {
    Apply(Pair),
    /// CI publishes the version the configuration asks for again, with
    /// other bytes (a hotfix tagged with the same version, a build that is
    /// not reproducible), and the release manager applies it: the pair is
    /// the new build. (The kill variants may take a new build too.)
    ApplyRebuild(Pair),
    /// `SLIPWAY_TEST_CRASH_AT`: SIGKILL at the recorder's Nth crash point.
    KillAtCrashPoint(Pair, u32),
    KillAfter(Pair, u64),
    /// kill -9 while host N (index) waits in its health check.
    KillInHealthCheck(Pair, usize),
    /// SIGINT to the apply's process group while host N waits in its health
    /// check.
    CtrlC(Pair, usize),
    Approve,
    Reject,
    HostDown(usize),
    HostUp(usize),
    AddHost(usize),
    RemoveHost(usize),
    Policy(usize),
    RepointCurrent(usize),
    EditMarker(usize),
    RemoveMarker(usize),
    EditConfig(usize),
    /// `true`: hosts download the artifact themselves (`delivery = "pull"`);
    /// `false`: the runner uploads it.
    Delivery(bool),
}

impl Op {
    fn target(&self) -> Option<&Pair> {
        match self {
            Op::Apply(p)
            | Op::ApplyRebuild(p)
            | Op::KillAtCrashPoint(p, _)
            | Op::KillAfter(p, _)
            | Op::KillInHealthCheck(p, _)
            | Op::CtrlC(p, _) => Some(p),
            _ => None,
        }
    }
}

/// What the test sees on one host.
#[derive(Debug, Clone, Default, PartialEq)]
struct Seen {
    /// The link `current`, as written.
    current: Option<String>,
    /// The `CODE` file of the release `current` names: which build of
    /// which version it holds.
    code: Option<String>,
    /// Its `.slipway-complete`: the sha256 of the build slipway unpacked
    /// there.
    built: Option<String>,
    config: Option<String>,
    marker: Option<String>,
    /// What the app answers on `/` (`None`: nothing listens).
    served: Option<String>,
    pid: Option<String>,
}

impl Seen {
    /// The release `current` names (`releases/X` → X).
    fn release(&self) -> Option<&str> {
        let target = self.current.as_deref()?.trim_end_matches('/');
        Some(target.rsplit_once("releases/").map_or(target, |(_, v)| v))
    }

    fn marker_field(&self, field: &str) -> Option<String> {
        let value: serde_json::Value = serde_json::from_str(self.marker.as_deref()?).ok()?;
        value[field].as_str().map(str::to_string)
    }

    /// The pair the app answers with: the build its code is (the `CODE`
    /// file it started from) and the config it read; `Err` when they are
    /// not of one version (or the code is no build of any).
    fn served_pair(&self) -> Option<Result<Pair, String>> {
        let (code, version, flavor) = self.served_parts()?;
        Some(match parse_code(&code) {
            Some((code_version, build)) if code_version == version => {
                Ok(Pair::new(&version, build, &flavor))
            }
            _ => Err(format!(
                "serves code {code} with the config of ({version}, {flavor})"
            )),
        })
    }

    /// (code, version, flavor) of what the app answers.
    fn served_parts(&self) -> Option<(String, String, String)> {
        let text = self.served.as_deref()?;
        let rest = text.strip_prefix(&format!("{GREETING} (version "))?;
        let mut parts = rest.split(", ");
        let version = parts.next()?.to_string();
        let flavor = parts.next()?.strip_prefix("flavor ")?.to_string();
        let code = parts.next()?.strip_prefix("code ")?.to_string();
        Some((code, version, flavor))
    }
}

/// The outcome of one slipway command.
struct Outcome {
    /// Exit code; `None` when a signal ended it.
    code: Option<i32>,
    /// Standard output, then standard error.
    log: String,
    stdout: String,
    /// The TMPDIR it ran with (its ssh masters' directories go there).
    tmpdir: tempfile::TempDir,
}

/// One sequence: the lab, what the test did to it, and what it knows.
struct Sequence {
    seed: u64,
    rng: Rng,
    lab: Lab,
    ops: Vec<String>,
    listed: Vec<usize>,
    down: BTreeSet<usize>,
    policy: usize,
    /// What the configuration asks for now.
    target: Pair,
    /// Code versions made so far, each with its builds (build 1 first; the
    /// last is what CI publishes as the version now), each with the hosts
    /// (indexes) whose health check fails on it.
    releases: BTreeMap<String, Vec<Vec<usize>>>,
    version_counter: usize,
    /// Operations that applied a new build of a version (killed or not).
    rebuilds: usize,
    flavor_counter: usize,
    /// Every pair an apply was asked to deploy.
    deployed_pairs: BTreeSet<Pair>,
    /// Config digest (as state records it) → the config half of a pair.
    digests: BTreeMap<String, ConfigOf>,
    /// Hosts changed by hand that slipway has not put right since (their app
    /// process is the one the change found).
    tampered: BTreeMap<usize, Option<String>>,
    /// Markers changed by hand, likewise.
    marker_tampered: BTreeMap<usize, Option<String>>,
    /// The rollout the test has seen begin, and the pair each host served
    /// before that rollout first moved it (`None`: nothing was there).
    rollout: Option<(String, BTreeMap<usize, Option<Pair>>)>,
    /// Hosts that were tampered with when the rollout moved them: their pair
    /// before is not one state can know.
    rollout_tainted: BTreeSet<usize>,
    /// After an interrupted apply of a pair: the hosts it recorded finished
    /// on it, with their marker's apply id and app pid then.
    finished_before_interrupt: Option<(Pair, BTreeMap<usize, MarkerAndPid>)>,
    /// Hosts removed from the environment (and from state): what they had
    /// then, which no later apply may change.
    removed: BTreeMap<usize, Seen>,
    seen: Vec<Seen>,
    /// The host records state had after the previous operation.
    records: BTreeMap<String, slipway::state::HostState>,
    last_log: String,
    /// Where hosts pull the artifact from, each version as
    /// `app-VERSION.tar.gz` (the bytes push would send), and the CA its
    /// certificate comes from.
    repo: ArtifactRepo,
    _pki: Pki,
    /// Whether the configuration has hosts pull the artifact now.
    pull: bool,
    /// The sha256 of every artifact published (a host's download names it,
    /// state records it, `.slipway-complete` holds it) → the build it is.
    published: std::cell::RefCell<BTreeMap<String, (String, u32)>>,
}

impl Sequence {
    fn new(seed: u64, lab: Lab) -> Sequence {
        let shared = lab
            .hosts
            .shared_address()
            .expect("hosts with their own network have a shared address");
        let pki = Pki::make_for(&[&shared]).expect("openssl makes the repository's certificate");
        let repo = ArtifactRepo::start_open_on(&pki, &shared);
        let mut sequence = Sequence {
            seed,
            rng: Rng(seed),
            lab,
            ops: Vec::new(),
            listed: (0..FIRST_LISTED).collect(),
            down: BTreeSet::new(),
            policy: 0,
            target: Pair::new("1.0.0", 1, "a"),
            releases: BTreeMap::new(),
            version_counter: 0,
            rebuilds: 0,
            flavor_counter: 0,
            deployed_pairs: BTreeSet::new(),
            digests: BTreeMap::new(),
            tampered: BTreeMap::new(),
            marker_tampered: BTreeMap::new(),
            rollout: None,
            rollout_tainted: BTreeSet::new(),
            finished_before_interrupt: None,
            removed: BTreeMap::new(),
            seen: Vec::new(),
            records: BTreeMap::new(),
            last_log: String::new(),
            repo,
            _pki: pki,
            pull: false,
            published: Default::default(),
        };
        sequence.releases.insert("1.0.0".into(), vec![Vec::new()]);
        sequence.prepare_lab();
        sequence.seen = sequence.observe_all();
        sequence
    }

    /// The fixture configuration gets a `flavor` variable in its config
    /// file; the app answers with its code release and its config; each host
    /// gets a port of its own (hosts come and go, so the host's index in the
    /// list cannot name its port).
    fn prepare_lab(&mut self) {
        let main = self.lab.root.join("main.hcl");
        let text = std::fs::read_to_string(&main).unwrap();
        let text = text.replace(
            "variable \"base_port\" {",
            "variable \"flavor\" {\n  type = string\n}\n\nvariable \"base_port\" {",
        );
        let text = text.replace(
            "VERSION='${var.version}'\n",
            "VERSION='${var.version}'\n        FLAVOR='${var.flavor}'\n",
        );
        assert!(text.contains("FLAVOR="), "the fixture changed: {text}");
        assert!(
            text.contains(PUSHED_ARTIFACT),
            "the fixture changed: {text}"
        );
        let text = text.replacen(
            "slipway {\n",
            &format!(
                "slipway {{\n  ca_file = {:?}\n",
                self._pki.ca_pem().display().to_string()
            ),
            1,
        );
        std::fs::write(&main, text).unwrap();
        for i in 0..HOSTS {
            std::fs::create_dir_all(self.lab_file(i, "")).unwrap();
        }
        self.configure();
    }

    /// A file of the test's own on host `i`: `/opt/.lab/NAME` there.
    fn lab_file(&self, i: usize, name: &str) -> PathBuf {
        self.lab.hosts.hosts[i].root.join("opt/.lab").join(name)
    }

    fn configure(&self) {
        self.lab.configure(&self.listed, POLICIES[self.policy]);
    }

    fn config_of(&self, pair: &Pair) -> String {
        let (version, flavor) = (&pair.version, &pair.flavor);
        format!(
            "BASE_PORT={}\nGREETING='{GREETING}'\nVERSION='{version}'\nFLAVOR='{flavor}'\n",
            self.lab.base_port
        )
    }

    /// The service's artifact block: pushed from `./app`, or pulled by the
    /// hosts from the repository.
    fn set_delivery(&mut self, pull: bool) {
        let main = self.lab.root.join("main.hcl");
        let text = std::fs::read_to_string(&main).unwrap();
        let pulled = self.pulled_artifact();
        let (from, to) = if pull {
            (PUSHED_ARTIFACT, pulled.as_str())
        } else {
            (pulled.as_str(), PUSHED_ARTIFACT)
        };
        assert!(text.contains(from), "the artifact block changed: {text}");
        std::fs::write(&main, text.replace(from, to)).unwrap();
        self.pull = pull;
    }

    fn pulled_artifact(&self) -> String {
        format!(
            "  artifact {{\n    source   = \"{}\"\n    delivery = \"pull\"\n  }}\n",
            self.repo.url("files", "app-${var.version}.tar.gz")
        )
    }

    /// The artifact directory as the build of `code` has it (its `CODE`
    /// file names version and build, so builds differ in their bytes and a
    /// host shows which one it has), and in the repository, as
    /// `app-VERSION.tar.gz`, the bytes the runner would push of it. Only
    /// the version's last build is published: CI replaced the others.
    fn write_artifact(&self, code: &Pair) {
        let builds = &self.releases[&code.version];
        assert_eq!(
            builds.len(),
            code.build as usize,
            "only the last build of {} is published",
            code.version
        );
        let app = self.lab.root.join("app");
        let bin = app.join("bin");
        let failing: Vec<String> = builds[code.build as usize - 1]
            .iter()
            .map(|&i| self.lab.address(i).to_string())
            .collect();
        std::fs::write(app.join("CODE"), format!("{}\n", code.code())).unwrap();
        let fail: String = failing.iter().map(|a| format!("{a}\n")).collect();
        std::fs::write(app.join("FAIL"), fail).unwrap();
        std::fs::write(bin.join("start.sh"), START_SH).unwrap();
        std::fs::write(bin.join("check.sh"), CHECK_SH).unwrap();
        let packed = slipway::artifact::pack_directory(&app).unwrap();
        self.repo
            .publish(&format!("app-{}.tar.gz", code.version), &packed);
        let sha = slipway::artifact::sha256_hex(&packed);
        let build = (code.version.clone(), code.build);
        let known = self.published.borrow_mut().insert(sha, build.clone());
        assert!(
            known.is_none_or(|b| b == build),
            "two builds with the same bytes"
        );
    }

    /// The build an artifact's sha256 names.
    fn build_of(&self, sha: &str) -> Option<(String, u32)> {
        self.published.borrow().get(sha.trim()).cloned()
    }

    fn digest_of(&self, pair: &Pair) -> String {
        let files = BTreeMap::from([(CONFIG_DESTINATION.to_string(), self.config_of(pair))]);
        config_digest(&files, None)
    }

    fn note_pair(&mut self, pair: &Pair) {
        self.deployed_pairs.insert(pair.clone());
        let digest = self.digest_of(pair);
        self.digests
            .insert(digest, (pair.version.clone(), pair.flavor.clone()));
    }

    // ----- looking at hosts and state -----

    fn observe(&self, i: usize) -> Seen {
        let dir = self.lab.install_dir(i);
        let served = self.lab.hosts.http_get_on_host(i, self.lab.base_port, "/");
        Seen {
            current: std::fs::read_link(dir.join("current"))
                .ok()
                .map(|p| p.display().to_string()),
            code: std::fs::read_to_string(dir.join("current/CODE"))
                .ok()
                .map(|c| c.trim().to_string()),
            built: std::fs::read_to_string(dir.join("current/.slipway-complete"))
                .ok()
                .map(|c| c.trim().to_string()),
            config: std::fs::read_to_string(dir.join("config/app.env")).ok(),
            marker: std::fs::read_to_string(dir.join(".slipway/release.json")).ok(),
            served: (!served.starts_with("(nothing on port")).then_some(served),
            pid: std::fs::read_to_string(dir.join("run/app.pid"))
                .ok()
                .map(|p| p.trim().to_string()),
        }
    }

    /// Wait until no script runs on any host. A killed slipway's remote
    /// steps go on without it (sshd does not stop a command whose client
    /// went away), so a host may still change for a moment after the kill;
    /// what state says of such a host is "uncertain", and the checks look
    /// once it is still. Every process of a host runs in its network
    /// namespace: any there but its sshd listener and the app servers is a
    /// session still at work.
    fn wait_for_quiet_hosts(&self) -> Result<(), String> {
        use std::os::unix::fs::MetadataExt;
        let namespaces: Vec<String> = self
            .lab
            .hosts
            .hosts
            .iter()
            .map(|host| {
                let name = host.netns.as_deref().expect("hosts with their own network");
                let inode = std::fs::metadata(format!("/run/netns/{name}"))
                    .expect("the host's network namespace")
                    .ino();
                format!("net:[{inode}]")
            })
            .collect();
        let listeners: Vec<u32> = (0..HOSTS)
            .filter_map(|i| self.lab.hosts.server_pid(i))
            .collect();
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let mut busy = Vec::new();
            for entry in std::fs::read_dir("/proc").unwrap().flatten() {
                let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                    continue;
                };
                let Ok(namespace) = std::fs::read_link(entry.path().join("ns/net")) else {
                    continue;
                };
                let Some(host) = namespaces
                    .iter()
                    .position(|n| Path::new(n) == namespace.as_path())
                else {
                    continue;
                };
                let line = std::fs::read(entry.path().join("cmdline"))
                    .map(|raw| String::from_utf8_lossy(&raw).replace('\0', " "))
                    .unwrap_or_default();
                if !listeners.contains(&pid) && !line.contains("server.py") && !line.is_empty() {
                    busy.push(format!("host {}: {pid}: {line}", host + 1));
                }
            }
            if busy.is_empty() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "scripts still run on the hosts after 90 s: {busy:#?}"
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn observe_all(&self) -> Vec<Seen> {
        (0..HOSTS).map(|i| self.observe(i)).collect()
    }

    fn read_state(&self) -> Option<State> {
        LocalBackend::new(self.lab.root.join(".slipway/state"))
            .read(ENVIRONMENT)
            .unwrap()
    }

    fn index_of(&self, address: &str) -> usize {
        (0..HOSTS)
            .find(|&i| self.lab.address(i) == address)
            .unwrap_or_else(|| panic!("state names a host the lab does not have: {address}"))
    }

    /// The pair the host's files make (the build in the release `current`
    /// names, and the config file), when they make one a pair some apply
    /// deployed; `Err` says why not. The release directory is named by the
    /// version alone: its `CODE` file tells the build, and its
    /// `.slipway-complete` must name that build's bytes.
    fn files_pair(&self, seen: &Seen) -> Result<Option<Pair>, String> {
        match (seen.release(), seen.config.as_deref()) {
            (None, None) => Ok(None),
            (Some(release), Some(config)) => {
                let code = seen.code.as_deref().unwrap_or("(no CODE file)");
                let (version, build) = parse_code(code)
                    .filter(|(version, _)| version == release)
                    .ok_or_else(|| {
                    format!("current -> {release}, which holds the code {code:?}")
                })?;
                if let Some(sha) = &seen.built {
                    let marked = self.build_of(sha);
                    if marked.is_some() && marked != Some((version.clone(), build)) {
                        return Err(format!(
                            "current -> {release}, which holds {code} but is marked complete as the build {marked:?} ({sha})"
                        ));
                    }
                }
                let found = self.deployed_pairs.iter().find(|p| {
                    p.version == version && p.build == build && self.config_of(p) == config
                });
                match found {
                    Some(p) => Ok(Some(p.clone())),
                    None => Err(format!(
                        "current -> {release} holding {code}, with config {config:?}: not a pair any apply deployed"
                    )),
                }
            }
            (release, config) => Err(format!("current -> {release:?}, config {config:?}")),
        }
    }

    /// The pair of a record's version, artifact and config digest.
    fn pair_named(
        &self,
        version: &str,
        sha: Option<&str>,
        digest: Option<&str>,
    ) -> Result<Pair, String> {
        let digest = digest.ok_or("no config digest")?;
        let (config_version, flavor) = self
            .digests
            .get(digest)
            .ok_or_else(|| format!("config digest {digest} of no pair the test applied"))?;
        if config_version != version {
            return Err(format!(
                "version {version} with the config digest of ({config_version}, {flavor})"
            ));
        }
        let sha = sha.ok_or("no artifact digest")?;
        let (built_version, build) = self
            .build_of(sha)
            .ok_or_else(|| format!("artifact {sha} of no build the test published"))?;
        if built_version != version {
            return Err(format!(
                "version {version} with the artifact of {}",
                code_of(&built_version, build)
            ));
        }
        Ok(Pair::new(version, build, flavor))
    }

    /// The pair a state record says the host serves.
    fn record_pair(&self, record: &slipway::state::HostState) -> Result<Pair, String> {
        self.pair_named(
            &record.version,
            record.artifact_sha256.as_deref(),
            record.config_digest.as_deref(),
        )
    }

    fn pair_before(&self, record: &slipway::state::HostState) -> Option<Pair> {
        let previous = record.previous.as_ref()?;
        self.pair_named(
            &previous.version,
            previous.artifact_sha256.as_deref(),
            previous.config_digest.as_deref(),
        )
        .ok()
    }

    /// Whether host `i` holds the config snapshot of the pair `record`
    /// names (`.slipway/config/VERSION+DIGEST`, saved by an update right
    /// after it wrote the config files).
    fn has_snapshot(&self, i: usize, record: &slipway::state::HostState) -> bool {
        let name = match &record.config_digest {
            Some(digest) => format!("{}+{digest}", record.version),
            None => record.version.clone(),
        };
        self.lab
            .install_dir(i)
            .join(".slipway/config")
            .join(name)
            .join("manifest")
            .is_file()
    }

    /// A download's temporary files on host `i` (`*.pull.PID`).
    fn partial_downloads(&self, i: usize) -> Vec<String> {
        let dir = self.lab.install_dir(i).join(".slipway/artifacts");
        std::fs::read_dir(&dir)
            .map(|entries| {
                entries
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|name| name.contains(".pull."))
                    .map(|name| format!("{}: {name}", self.lab.address(i)))
                    .collect()
            })
            .unwrap_or_default()
    }

    // ----- running slipway -----

    fn target_vars(&self, pair: &Pair) -> Vec<String> {
        vec![
            "-var".into(),
            format!("version={}", pair.version),
            "-var".into(),
            format!("flavor={}", pair.flavor),
        ]
    }

    fn slipway(&self, args: &[&str], vars: Option<&Pair>) -> Command {
        let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        if let Some(pair) = vars {
            all.extend(self.target_vars(pair));
        }
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        self.lab.command(&refs)
    }

    /// Start a command with its own TMPDIR and process group.
    fn spawn(&self, mut command: Command) -> (Child, tempfile::TempDir) {
        use std::os::unix::process::CommandExt;
        let tmpdir = tempfile::Builder::new()
            .prefix("slipway-seq-tmp-")
            .tempdir()
            .unwrap();
        let child = command
            .env("TMPDIR", tmpdir.path())
            .process_group(0)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        (child, tmpdir)
    }

    fn finish(&self, mut child: Child, tmpdir: tempfile::TempDir) -> Result<Outcome, String> {
        let mut out = child.stdout.take().unwrap();
        let mut err = child.stderr.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = out.read_to_string(&mut text);
            text
        });
        let err_reader = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = err.read_to_string(&mut text);
            text
        });
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if started.elapsed() > COMMAND_LIMIT {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "slipway did not end within {COMMAND_LIMIT:?}:\n{}{}",
                    reader.join().unwrap(),
                    err_reader.join().unwrap()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let stdout = reader.join().unwrap();
        let log = stdout.clone() + &err_reader.join().unwrap();
        if log.contains("panicked") {
            return Err(format!("slipway panicked:\n{log}"));
        }
        Ok(Outcome {
            code: status.code(),
            log,
            stdout,
            tmpdir,
        })
    }

    fn run(&self, command: Command) -> Result<Outcome, String> {
        let (child, tmpdir) = self.spawn(command);
        self.finish(child, tmpdir)
    }

    fn apply_command(&self, pair: &Pair) -> Command {
        self.write_artifact(pair);
        self.slipway(&["apply", ".", "-auto-approve"], Some(pair))
    }

    /// `plan -json` (plus `extra`) for the configuration's target.
    fn plan_json(&self, extra: &[&str]) -> Result<(Option<i32>, serde_json::Value), String> {
        self.write_artifact(&self.target);
        let mut args = vec!["plan", ".", "-json"];
        args.extend(extra);
        let outcome = self.run(self.slipway(&args, Some(&self.target)))?;
        let document = serde_json::from_str(&outcome.stdout)
            .map_err(|e| format!("plan -json is not JSON ({e}):\n{}", outcome.log))?;
        Ok((outcome.code, document))
    }

    /// The hosts the plan schedules, in every step.
    fn scheduled(plan: &serde_json::Value) -> BTreeSet<String> {
        let mut hosts = BTreeSet::new();
        for wave in plan["schedule"]["waves"].as_array().into_iter().flatten() {
            for deployment in wave["deployments"].as_array().into_iter().flatten() {
                for step in deployment["steps"].as_array().into_iter().flatten() {
                    for host in step["hosts"].as_array().into_iter().flatten() {
                        hosts.insert(host.as_str().unwrap_or_default().to_string());
                    }
                }
            }
        }
        hosts
    }

    fn hold(&self, i: usize) {
        let _ = std::fs::remove_file(self.lab_file(i, "health-held"));
        std::fs::write(self.lab_file(i, "hold-health"), "").unwrap();
    }

    /// Wait until host `i` is held in its health check, or the apply ended.
    fn wait_held(&self, i: usize, child: &mut Child) -> bool {
        let held = self.lab_file(i, "health-held");
        let deadline = Instant::now() + COMMAND_LIMIT;
        loop {
            if held.exists() {
                return true;
            }
            if child.try_wait().unwrap().is_some() || Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn release(&self, i: usize) {
        let _ = std::fs::remove_file(self.lab_file(i, "hold-health"));
        let _ = std::fs::remove_file(self.lab_file(i, "health-held"));
    }

    // ----- choosing operations -----

    fn new_version(&mut self, failing: Vec<usize>) -> String {
        self.version_counter += 1;
        let version = if failing.is_empty() {
            format!("1.{}.0", self.version_counter)
        } else {
            format!("1.{}.0-bad", self.version_counter)
        };
        self.releases.insert(version.clone(), vec![failing]);
        version
    }

    /// CI publishes the version the configuration asks for again, with
    /// other bytes: its next build (a hotfix: its health check passes where
    /// the build before failed; now and then one that fails on a listed
    /// host). Its config is the target's.
    fn rebuild(&mut self) -> Pair {
        let failing = if self.rng.chance(25) {
            vec![self.rng.pick(&self.listed)]
        } else {
            Vec::new()
        };
        let builds = self
            .releases
            .get_mut(&self.target.version)
            .expect("the target version was made");
        builds.push(failing);
        self.rebuilds += 1;
        Pair::new(
            &self.target.version,
            builds.len() as u32,
            &self.target.flavor,
        )
    }

    /// What a kill interrupts: an apply of one of [`Self::choose_target`]'s
    /// targets or, a quarter of the time, of a new build of the target
    /// version (its release directory is replaced while `current` names
    /// it).
    fn choose_kill_target(&mut self) -> Pair {
        if self.rng.chance(25) {
            self.rebuild()
        } else {
            self.choose_target()
        }
    }

    fn choose_target(&mut self) -> Pair {
        let roll = self.rng.below(100);
        if roll < 35 {
            let version = self.new_version(Vec::new());
            Pair::new(&version, 1, &self.target.flavor)
        } else if roll < 55 {
            self.flavor_counter += 1;
            let flavor = format!("f{}", self.flavor_counter);
            self.target.with_flavor(&flavor)
        } else if roll < 72 {
            let count = 1 + self.rng.below(2);
            let mut failing = Vec::new();
            for _ in 0..count {
                let host = self.rng.pick(&self.listed);
                if !failing.contains(&host) {
                    failing.push(host);
                }
            }
            let version = self.new_version(failing);
            Pair::new(&version, 1, &self.target.flavor)
        } else {
            self.target.clone()
        }
    }

    fn choose(&mut self) -> Op {
        let waiting = self
            .read_state()
            .and_then(|s| s.deployments.get(DEPLOYMENT).cloned())
            .is_some_and(|d| d.waiting_approval().is_some());
        loop {
            let roll = self.rng.below(111);
            let op = match roll {
                0..=27 => Op::Apply(self.choose_target()),
                28..=33 => {
                    let point = 1 + self.rng.below(3 * self.listed.len() + 6) as u32;
                    Op::KillAtCrashPoint(self.choose_kill_target(), point)
                }
                34..=37 => Op::KillAfter(self.choose_kill_target(), self.rng.below(3000) as u64),
                38..=41 => {
                    let host = self.rng.pick(&self.listed);
                    Op::KillInHealthCheck(self.choose_kill_target(), host)
                }
                42..=46 => {
                    let host = self.rng.pick(&self.listed);
                    Op::CtrlC(self.choose_kill_target(), host)
                }
                47..=54 if waiting => Op::Approve,
                55..=58 if waiting => Op::Reject,
                59..=62 => {
                    if self.down.len() >= 2 {
                        continue;
                    }
                    Op::HostDown(self.rng.below(HOSTS))
                }
                63..=68 => {
                    let down: Vec<usize> = self.down.iter().copied().collect();
                    if down.is_empty() {
                        continue;
                    }
                    Op::HostUp(self.rng.pick(&down))
                }
                69..=72 => {
                    let unlisted: Vec<usize> =
                        (0..HOSTS).filter(|i| !self.listed.contains(i)).collect();
                    if unlisted.is_empty() {
                        continue;
                    }
                    Op::AddHost(self.rng.pick(&unlisted))
                }
                73..=75 => {
                    if self.listed.len() <= 6 {
                        continue;
                    }
                    Op::RemoveHost(self.rng.pick(&self.listed))
                }
                76..=81 => Op::Policy(self.rng.below(POLICIES.len())),
                82..=86 => Op::RepointCurrent(self.rng.pick(&self.listed)),
                87..=90 => Op::EditMarker(self.rng.pick(&self.listed)),
                91..=93 => Op::RemoveMarker(self.rng.pick(&self.listed)),
                94..=99 => Op::EditConfig(self.rng.pick(&self.listed)),
                100..=104 => Op::Delivery(!self.pull),
                105..=110 => Op::ApplyRebuild(self.rebuild()),
                _ => continue,
            };
            return op;
        }
    }

    // ----- doing operations -----

    /// Do `op`; `Ok(Some(outcome))` for a slipway command that ran.
    fn perform(&mut self, op: &Op) -> Result<Option<(Outcome, BTreeSet<String>)>, String> {
        if let Some(target) = op.target() {
            self.target = target.clone();
            self.note_pair(target);
        }
        let scheduled = match op.target() {
            Some(_) => Self::scheduled(&self.plan_json(&[])?.1),
            None => BTreeSet::new(),
        };
        let outcome = match op {
            Op::Apply(target) | Op::ApplyRebuild(target) => self.run(self.apply_command(target))?,
            Op::KillAtCrashPoint(target, point) => {
                let mut command = self.apply_command(target);
                command.env("SLIPWAY_TEST_CRASH_AT", point.to_string());
                self.run(command)?
            }
            Op::KillAfter(target, millis) => {
                let (mut child, tmpdir) = self.spawn(self.apply_command(target));
                let until = Instant::now() + Duration::from_millis(*millis);
                while Instant::now() < until && child.try_wait().unwrap().is_none() {
                    std::thread::sleep(Duration::from_millis(5));
                }
                let _ = child.kill();
                self.finish(child, tmpdir)?
            }
            Op::KillInHealthCheck(target, host) | Op::CtrlC(target, host) => {
                self.hold(*host);
                let (mut child, tmpdir) = self.spawn(self.apply_command(target));
                if self.wait_held(*host, &mut child) {
                    if matches!(op, Op::CtrlC(..)) {
                        let group = format!("-{}", child.id());
                        let _ = Command::new("kill").args(["-INT", "--", &group]).status();
                    } else {
                        let _ = child.kill();
                    }
                }
                self.release(*host);
                self.finish(child, tmpdir)?
            }
            Op::Approve => {
                let mut command = Command::new(env!("CARGO_BIN_EXE_slipway"));
                command
                    .args(["approve", "app", "."])
                    .current_dir(&self.lab.root)
                    .stdin(Stdio::null())
                    .env("NO_COLOR", "1");
                self.run(command)?
            }
            Op::Reject => {
                self.write_artifact(&self.target);
                self.run(self.slipway(&["reject", "app", "."], Some(&self.target.clone())))?
            }
            Op::HostDown(i) => {
                self.lab.hosts.stop_host(*i);
                self.down.insert(*i);
                return Ok(None);
            }
            Op::HostUp(i) => {
                self.lab.hosts.start_host(*i);
                self.down.remove(i);
                return Ok(None);
            }
            Op::AddHost(i) => {
                self.listed.push(*i);
                self.listed.sort();
                self.removed.remove(i);
                self.configure();
                return Ok(None);
            }
            Op::RemoveHost(i) => {
                self.listed.retain(|h| h != i);
                self.configure();
                return Ok(None);
            }
            Op::Policy(p) => {
                self.policy = *p;
                self.configure();
                return Ok(None);
            }
            Op::Delivery(pull) => {
                self.set_delivery(*pull);
                return Ok(None);
            }
            Op::RepointCurrent(i) => {
                let dir = self.lab.install_dir(*i);
                let mut others: Vec<String> = std::fs::read_dir(dir.join("releases"))
                    .map(|entries| {
                        entries
                            .flatten()
                            .map(|e| e.file_name().to_string_lossy().to_string())
                            .collect()
                    })
                    .unwrap_or_default();
                others.sort();
                others.retain(|r| Some(r.as_str()) != self.seen[*i].release());
                let from = dir.join("current");
                if others.is_empty() && !from.join("bin").is_dir() {
                    // Nothing installed to copy and no other release: a hand
                    // hotfix needs code (a `current` naming an empty directory
                    // makes every stop fail, which slipway reports and does not
                    // get past: fail-safe, and not what this operation models).
                    return Ok(None);
                }
                let to = if others.is_empty() || (self.rng.chance(30) && from.join("bin").is_dir())
                {
                    // A hotfix made by hand: a copy of the release `current`
                    // names, with code of its own.
                    let hotfix = format!("hotfix-{}", self.ops.len());
                    let into = dir.join("releases").join(&hotfix);
                    crate::support::copy_dir(&from, &into);
                    std::fs::write(into.join("CODE"), format!("{hotfix}\n")).unwrap();
                    hotfix
                } else {
                    self.rng.pick(&others)
                };
                let current = dir.join("current");
                let _ = std::fs::remove_file(&current);
                std::os::unix::fs::symlink(format!("releases/{to}"), &current).unwrap();
                self.tampered.insert(*i, self.seen[*i].pid.clone());
                return Ok(None);
            }
            Op::EditMarker(i) | Op::RemoveMarker(i) => {
                let path = self.lab.install_dir(*i).join(".slipway/release.json");
                if matches!(op, Op::RemoveMarker(_)) {
                    let _ = std::fs::remove_file(&path);
                } else if let Ok(text) = std::fs::read_to_string(&path) {
                    let mut marker: serde_json::Value =
                        serde_json::from_str(&text).unwrap_or_default();
                    marker["version"] = "0.0.1-by-hand".into();
                    marker["apply_id"] = "edited-by-hand".into();
                    std::fs::write(&path, marker.to_string()).unwrap();
                }
                self.marker_tampered.insert(*i, self.seen[*i].pid.clone());
                return Ok(None);
            }
            Op::EditConfig(i) => {
                let path = self.lab.install_dir(*i).join("config/app.env");
                if let Ok(mut text) = std::fs::read_to_string(&path) {
                    text.push_str("# edited by hand\n");
                    std::fs::write(&path, text).unwrap();
                    self.tampered.insert(*i, self.seen[*i].pid.clone());
                }
                return Ok(None);
            }
        };
        Ok(Some((outcome, scheduled)))
    }

    // ----- checking -----

    /// Every check after `op` (which ended with `result`).
    fn check(
        &mut self,
        op: &Op,
        before: &[Seen],
        result: Option<(Outcome, BTreeSet<String>)>,
    ) -> Result<(), String> {
        self.wait_for_quiet_hosts()?;
        let seen = self.observe_all();
        // A host slipway restarted (new app process) is no longer as the
        // hand left it.
        for tampered in [&mut self.tampered, &mut self.marker_tampered] {
            tampered.retain(|&i, pid| seen[i].pid == *pid);
        }
        let state = self.read_state();
        let deployment = state
            .as_ref()
            .and_then(|s| s.deployments.get(DEPLOYMENT))
            .cloned();
        if let Some(d) = &deployment {
            // The digest state computes is the one the test computes.
            if let Some((version, config)) = Some((&d.version, &d.config_files)) {
                let digest = config_digest(config, d.systemd_unit.as_deref());
                if let Some(p) = self.digests.get(&digest) {
                    ensure(
                        &p.0 == version,
                        format!("state's config is {p:?}'s, its version {version}"),
                    )?;
                }
            }
            // The artifact state records for the deployment is a build of
            // its version.
            if let Some(sha) = &d.artifact_sha256 {
                let build = self.build_of(sha);
                ensure(
                    build.as_ref().is_some_and(|(v, _)| v == &d.version),
                    format!(
                        "state records version {} with the artifact {sha} of {build:?}",
                        d.version
                    ),
                )?;
            }
        }

        if let Some((outcome, scheduled)) = &result {
            self.check_outcome(op, outcome, scheduled, before, &seen, deployment.as_ref())?;
        }
        if let Some(d) = &deployment {
            self.track_rollout(d, before);
            self.check_hosts(d, &seen)?;
        } else {
            self.check_unmanaged(&seen)?;
        }
        self.check_removed(&seen, deployment.as_ref())?;
        if let Some(state) = &state {
            // At most one uncertain step per host, whichever applies were
            // killed: an apply first settles what a killed one left open on
            // a host before it journals a step of its own there.
            let mut per_host: BTreeMap<&str, Vec<String>> = BTreeMap::new();
            for entry in state.uncertain_steps() {
                if let Some(host) = &entry.host {
                    per_host.entry(host.as_str()).or_default().push(format!(
                        "{} (apply {})",
                        entry.describe(),
                        entry.apply_id
                    ));
                }
            }
            ensure(
                per_host.values().all(|steps| steps.len() <= 1),
                format!("more than one uncertain step for a host: {per_host:#?}"),
            )?;
        }
        self.check_refresh(&seen, deployment.as_ref())?;
        self.seen = seen;
        self.records = deployment.map(|d| d.hosts).unwrap_or_default();
        Ok(())
    }

    fn check_outcome(
        &mut self,
        op: &Op,
        outcome: &Outcome,
        scheduled: &BTreeSet<String>,
        before: &[Seen],
        seen: &[Seen],
        deployment: Option<&DeploymentState>,
    ) -> Result<(), String> {
        let killed = outcome.code.is_none();
        let allowed: &[Option<i32>] = match op {
            Op::KillAtCrashPoint(..) | Op::KillAfter(..) | Op::KillInHealthCheck(..) => {
                &[None, Some(0), Some(1)]
            }
            Op::CtrlC(..) => &[Some(130), Some(0), Some(1)],
            _ => &[Some(0), Some(1)],
        };
        ensure(
            allowed.contains(&outcome.code),
            format!("exit {:?}", outcome.code),
        )?;
        // 7. The ssh masters end soon after slipway, however it ended.
        let needle = outcome.tmpdir.path().display().to_string();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = processes_naming(&needle);
            if left.is_empty() {
                break;
            }
            ensure(
                Instant::now() < deadline,
                format!("30 s after slipway ended, still running: {left:#?}"),
            )?;
            std::thread::sleep(Duration::from_millis(100));
        }
        // 7. No host goes on downloading, or keeps a partial download (the
        // pull step's watcher checks its session once a second).
        loop {
            let published = self.published.borrow();
            let running: Vec<String> = processes_naming(".tar.gz.pull.")
                .into_iter()
                .filter(|line| published.keys().any(|sha| line.contains(sha.as_str())))
                .collect();
            let partial: Vec<String> = (0..HOSTS).flat_map(|i| self.partial_downloads(i)).collect();
            if running.is_empty() && partial.is_empty() {
                break;
            }
            ensure(
                Instant::now() < deadline,
                format!("30 s after slipway ended, downloads still running: {running:#?}, partial files: {partial:?}"),
            )?;
            std::thread::sleep(Duration::from_millis(100));
        }
        // 7. The lock: free after an orderly end.
        if !killed {
            let lock = LocalBackend::new(self.lab.root.join(".slipway/state"))
                .current_lock(ENVIRONMENT)
                .map_err(|e| e.to_string())?;
            ensure(
                lock.is_none(),
                format!("the lock is held after slipway ended: {lock:?}"),
            )?;
        }
        let Some(target) = op.target() else {
            return Ok(());
        };
        let Some(d) = deployment else {
            return Ok(());
        };
        let paused = outcome.log.contains("waits for approval");

        // 4. Nothing done twice after an interruption.
        if let Some((pair, finished)) = self.finished_before_interrupt.take() {
            if &pair == target && outcome.code == Some(0) {
                for (&i, (apply_id, pid)) in &finished {
                    if self.tampered.contains_key(&i) || self.marker_tampered.contains_key(&i) {
                        continue;
                    }
                    ensure(
                        &seen[i].marker_field("apply_id") == apply_id && &seen[i].pid == pid,
                        format!(
                            "host {} was recorded on {pair:?} by the interrupted apply, and the next apply updated it again (marker {:?} → {:?}, pid {pid:?} → {:?})",
                            self.lab.address(i),
                            apply_id,
                            seen[i].marker_field("apply_id"),
                            seen[i].pid
                        ),
                    )?;
                }
            }
        }
        if killed || outcome.code == Some(130) {
            let uncertain: BTreeSet<String> = self
                .read_state()
                .map(|s| s.uncertain_steps().filter_map(|e| e.host.clone()).collect())
                .unwrap_or_default();
            let mut finished = BTreeMap::new();
            for &i in &self.listed {
                let Some(record) = d.hosts.get(self.lab.address(i)) else {
                    continue;
                };
                if record.status == HostStatus::Deployed
                    && self.record_pair(record).as_ref() == Ok(target)
                    && !uncertain.contains(self.lab.address(i))
                    && self.files_pair(&seen[i]) == Ok(Some(target.clone()))
                {
                    finished.insert(i, (seen[i].marker_field("apply_id"), seen[i].pid.clone()));
                }
            }
            self.finished_before_interrupt = Some((target.clone(), finished));
        }

        // 15. An apply that succeeded touched only what its plan scheduled,
        // and left every listed host on the pair applied.
        if outcome.code == Some(0) && !killed {
            let apply_id = self
                .read_state()
                .and_then(|s| s.history.last().map(|h| h.apply_id.clone()));
            for i in 0..HOSTS {
                let address = self.lab.address(i).to_string();
                let touched = seen[i].pid != before[i].pid
                    || (apply_id.is_some()
                        && seen[i].marker_field("apply_id") == apply_id
                        && before[i].marker_field("apply_id") != apply_id);
                ensure(
                    !touched || scheduled.contains(&address),
                    format!(
                        "host {address} was changed (pid {:?} → {:?}, marker {:?} → {:?}) but the plan did not schedule it: {scheduled:?}",
                        before[i].pid,
                        seen[i].pid,
                        before[i].marker_field("apply_id"),
                        seen[i].marker_field("apply_id")
                    ),
                )?;
            }
            if !paused {
                for &i in &self.listed {
                    let address = self.lab.address(i);
                    let record = d
                        .hosts
                        .get(address)
                        .ok_or_else(|| format!("no record of listed host {address}"))?;
                    ensure(
                        record.status == HostStatus::Deployed
                            && self.record_pair(record).as_ref() == Ok(target),
                        format!(
                            "apply succeeded, but {address} is recorded {:?} on {:?}, not deployed on {target:?}",
                            record.status,
                            self.record_pair(record)
                        ),
                    )?;
                    if !self.tampered.contains_key(&i) {
                        ensure(
                            self.files_pair(&seen[i]) == Ok(Some(target.clone())),
                            format!(
                                "apply succeeded, but {address} has {:?}",
                                self.files_pair(&seen[i])
                            ),
                        )?;
                    }
                }
                let (code, plan) = self.plan_json(&[])?;
                ensure(
                    code == Some(0),
                    format!("the plan after a successful apply is not empty:\n{plan:#}"),
                )?;
            }
        }
        Ok(())
    }

    /// Learn where each host was before the rollout in flight moved it.
    fn track_rollout(&mut self, d: &DeploymentState, before: &[Seen]) {
        let Some(id) = d.rollout_id.clone() else {
            return;
        };
        if self.rollout.as_ref().map(|(r, _)| r) != Some(&id) {
            self.rollout = Some((id.clone(), BTreeMap::new()));
            self.rollout_tainted.clear();
        }
        let mut learned = Vec::new();
        for (address, record) in &d.hosts {
            let i = self.index_of(address);
            let known = self.rollout.as_ref().unwrap().1.contains_key(&i);
            if record.rollout.as_deref() == Some(id.as_str()) && !known {
                let base = self.files_pair(&before[i]);
                // A host that was not settled when the rollout moved it (its
                // update failed or was cut off) goes back to the last pair it
                // served well, which state knows and the files may not show.
                let settled = self.records.get(address).is_none_or(|r| {
                    r.status == HostStatus::Deployed
                        || (r.status == HostStatus::RolledBack && r.previous.is_some())
                });
                if base.is_err() || self.tampered.contains_key(&i) || !settled {
                    self.rollout_tainted.insert(i);
                }
                learned.push((i, base.ok().flatten()));
            }
        }
        self.rollout.as_mut().unwrap().1.extend(learned);
    }

    /// Rules 1-3 for each host state records.
    fn check_hosts(&self, d: &DeploymentState, seen: &[Seen]) -> Result<(), String> {
        for (address, record) in &d.hosts {
            let i = self.index_of(address);
            let s = &seen[i];
            let at = |what: String| {
                format!(
                    "{address} (recorded {:?} {} {:?}): {what}\n  seen: {s:?}",
                    record.status,
                    record.version,
                    self.record_pair(record)
                )
            };
            // 1. What the app serves is a pair some apply deployed.
            self.check_served(s).map_err(at)?;
            if self.tampered.contains_key(&i) {
                continue;
            }
            let recorded = self.record_pair(record).map_err(at)?;
            let files = self.files_pair(s);
            match record.status {
                // Rolled back to nothing (the rollout installed it first): the
                // service is stopped.
                HostStatus::RolledBack if record.previous.is_none() => {
                    ensure(
                        s.served.is_none(),
                        at("rolled back to nothing, but the app answers".into()),
                    )?;
                }
                // 2. A settled record is what the host has and serves.
                HostStatus::Deployed | HostStatus::RolledBack => {
                    ensure(files == Ok(Some(recorded.clone())), at("files".into()))?;
                    ensure(
                        s.served_pair() == Some(Ok(recorded.clone())),
                        at("what the app serves".into()),
                    )?;
                    if !self.marker_tampered.contains_key(&i) {
                        // The marker names the recorded build too.
                        ensure(
                            s.marker_field("version").as_deref() == Some(recorded.version.as_str())
                                && s.marker_field("sha256") == record.artifact_sha256,
                            at("the release marker".into()),
                        )?;
                    }
                }
                HostStatus::RollbackFailed => {
                    let before = self.pair_before(record);
                    ensure(
                        files == Ok(Some(recorded.clone())) || files == Ok(before.clone()),
                        at("files, after a failed rollback".into()),
                    )?;
                    // Named so by the rollback that could not reach it: the
                    // host was down then (a host started again since keeps
                    // that record until an apply reaches it).
                    let written_now = self.records.get(address) != Some(record);
                    ensure(
                        !written_now || self.down.contains(&i),
                        at("not rolled back, though it could be reached".into()),
                    )?;
                }
                HostStatus::Failed | HostStatus::InProgress | HostStatus::Pending => {}
            }
            // 3. Rolled back: on the pair from before the rollout.
            if record.status == HostStatus::RolledBack && record.previous.is_some() {
                if let Some((id, bases)) = &self.rollout {
                    if record.rollout.as_deref() == Some(id.as_str())
                        && !self.rollout_tainted.contains(&i)
                    {
                        if let Some(base) = bases.get(&i) {
                            ensure(
                                files == Ok(base.clone()),
                                at(format!(
                                    "rolled back, but the pair before the rollout was {base:?}"
                                )),
                            )?;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Before any state: nothing is installed yet, or a killed first apply
    /// left hosts that no record names (only allowed with an interrupted
    /// apply).
    fn check_unmanaged(&self, seen: &[Seen]) -> Result<(), String> {
        for (i, s) in seen.iter().enumerate() {
            self.check_served(s)
                .map_err(|e| format!("{}: {e}: {s:?}", self.lab.address(i)))?;
        }
        Ok(())
    }

    /// Rule 1 on one host: what its app answers (if anything) is a pair
    /// some apply deployed: code of one build, with the config of that
    /// build's version, that build applied with that config.
    fn check_served(&self, s: &Seen) -> Result<(), String> {
        match s.served_pair() {
            None if s.served.is_some() => Err("answers something else".into()),
            None => Ok(()),
            Some(Err(mixed)) => Err(mixed),
            Some(Ok(served)) => ensure(
                self.deployed_pairs.contains(&served),
                format!("serves {served:?}, a pair no apply deployed"),
            ),
        }
    }

    /// A host no longer in the environment or state is not touched again.
    fn check_removed(
        &mut self,
        seen: &[Seen],
        deployment: Option<&DeploymentState>,
    ) -> Result<(), String> {
        for (i, now) in seen.iter().enumerate() {
            let in_state = deployment.is_some_and(|d| d.hosts.contains_key(self.lab.address(i)));
            if self.listed.contains(&i) || in_state {
                self.removed.remove(&i);
                continue;
            }
            match self.removed.get(&i) {
                Some(then) => ensure(
                    then.current == now.current && then.config == now.config && then.pid == now.pid,
                    format!(
                        "{} is in neither the environment nor state, and was changed: {then:?} → {now:?}",
                        self.lab.address(i),
                    ),
                )?,
                None => {
                    self.removed.insert(i, now.clone());
                }
            }
        }
        Ok(())
    }

    /// Rule 2: `plan -refresh` names exactly the hosts whose pair differs
    /// from state, and the unreachable ones as such.
    fn check_refresh(
        &mut self,
        seen: &[Seen],
        deployment: Option<&DeploymentState>,
    ) -> Result<(), String> {
        let Some(d) = deployment else {
            return Ok(());
        };
        let (_, plan) = self.plan_json(&["-refresh"])?;
        let mut named = BTreeSet::new();
        let mut unreachable = BTreeSet::new();
        for change in plan["deployments"].as_array().into_iter().flatten() {
            if change["address"] != DEPLOYMENT {
                continue;
            }
            for reason in change["reasons"].as_array().into_iter().flatten() {
                if reason["kind"] != "drift" {
                    continue;
                }
                let summary = reason["summary"].as_str().unwrap_or_default();
                let host = summary
                    .strip_prefix("drift: ")
                    .and_then(|s| s.split_whitespace().next())
                    .unwrap_or(summary)
                    .to_string();
                if summary.contains(" is unreachable") {
                    unreachable.insert(host);
                } else {
                    named.insert(host);
                }
            }
        }
        let mut expected = BTreeSet::new();
        let mut expected_unreachable = BTreeSet::new();
        for (address, record) in &d.hosts {
            let i = self.index_of(address);
            if self.down.contains(&i) {
                expected_unreachable.insert(address.clone());
                continue;
            }
            let s = &seen[i];
            let release_differs = s.release() != Some(record.version.as_str());
            // On the recorded release, another build than the recorded one
            // (its directory is named by the version alone). Refresh reads
            // which release `current` names, not which build it holds
            // (drift is another release or none, other config files, or no
            // answer: docs/plan-json.md), so it does not name such a host.
            // Only an update to the recorded build that was cut off leaves
            // one: its record must not claim the host is on it.
            let build_differs = !release_differs
                && match (
                    self.record_pair(record),
                    s.code.as_deref().and_then(parse_code),
                ) {
                    (Ok(recorded), Some((version, build))) => {
                        version == recorded.version && build != recorded.build
                    }
                    _ => false,
                };
            ensure(
                !build_differs || !record.status.is_settled(),
                format!(
                    "{address} holds {:?}, but state records it {:?} on {:?}",
                    s.code,
                    record.status,
                    self.record_pair(record)
                ),
            )?;
            let config_differs = match self.record_pair(record) {
                Ok(p) => s.config.as_deref() != Some(self.config_of(&p).as_str()),
                Err(_) => false,
            };
            // On the recorded release, a record no finished step wrote
            // (in progress, failed) whose pair has no config snapshot on
            // the host: an update cut off before it saved the snapshot.
            // Refresh cannot tell which config the host has, and says so.
            let cannot_tell = !record.status.is_settled() && !self.has_snapshot(i, record);
            if release_differs || config_differs || cannot_tell {
                expected.insert(address.clone());
            }
        }
        if named == expected && unreachable == expected_unreachable {
            return Ok(());
        }
        let details: Vec<String> = named
            .symmetric_difference(&expected)
            .map(|address| {
                let record = &d.hosts[address];
                let s = &seen[self.index_of(address)];
                format!(
                    "  {address}: recorded {:?} {:?}; current -> {:?} holding {:?}, config {:?}",
                    record.status,
                    self.record_pair(record),
                    s.release(),
                    s.code,
                    s.config
                )
            })
            .collect();
        let reasons: Vec<String> = plan["deployments"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|change| {
                format!(
                    "{}: {} {}",
                    change["address"], change["action"], change["reasons"]
                )
            })
            .collect();
        Err(format!(
            "plan -refresh names {named:?} as drifted and {unreachable:?} as unreachable; the hosts differ from state on {expected:?} and {expected_unreachable:?} are down\n{}\nthe plan's changes:\n{}",
            details.join("\n"),
            reasons.join("\n")
        ))
    }

    /// The closing operations: every host back, one more version applied
    /// (approved where the rollout asks), until it succeeds.
    fn converge(&mut self) -> Result<(), String> {
        for i in self.down.clone() {
            self.step(Op::HostUp(i))?;
        }
        // The closing apply has the hosts pull the new version themselves:
        // every sequence ends with a download on every listed host.
        if !self.pull {
            self.step(Op::Delivery(true))?;
        }
        let version = self.new_version(Vec::new());
        let target = Pair::new(&version, 1, &self.target.flavor);
        for _ in 0..4 {
            let before = self.observe_all();
            let op = Op::Apply(target.clone());
            self.ops.push(format!("{op:?}"));
            let result = self.perform(&op)?;
            let (code, paused) = result
                .as_ref()
                .map(|(o, _)| (o.code, o.log.contains("waits for approval")))
                .unwrap_or_default();
            self.last_log = result
                .as_ref()
                .map(|(o, _)| o.log.clone())
                .unwrap_or_default();
            self.check(&op, &before, result)?;
            if code == Some(0) && !paused {
                // (A host removed from the environment is left as it is.)
                let left: Vec<&usize> = self
                    .tampered
                    .keys()
                    .chain(self.marker_tampered.keys())
                    .filter(|i| self.listed.contains(i))
                    .collect();
                ensure(
                    left.is_empty(),
                    format!(
                        "a new version applied everywhere left hosts as the hand changed them: {:?} {:?}",
                        self.tampered, self.marker_tampered
                    ),
                )?;
                // Each listed host downloaded the new version from the
                // repository, as the repository's own log tells.
                let pulled = self
                    .repo
                    .downloads_of_by(&format!("app-{version}.tar.gz"), "curl/");
                ensure(
                    pulled >= self.listed.len(),
                    format!(
                        "{} hosts are listed, but the repository served app-{version}.tar.gz to hosts {pulled} time(s)",
                        self.listed.len()
                    ),
                )?;
                let (code, plan) = self.plan_json(&["-refresh"])?;
                ensure(
                    code == Some(0),
                    format!("plan -refresh after the closing apply:\n{plan:#}"),
                )?;
                eprintln!(
                    "seed {}: {} of the operations applied a new build of a version",
                    self.seed, self.rebuilds
                );
                return Ok(());
            }
            if paused {
                self.step(Op::Approve)?;
            }
        }
        Err("the closing apply did not succeed in 4 tries".into())
    }

    fn step(&mut self, op: Op) -> Result<(), String> {
        let before = self.observe_all();
        self.ops.push(format!("{op:?}"));
        let result = self.perform(&op)?;
        self.last_log = result
            .as_ref()
            .map(|(o, _)| o.log.clone())
            .unwrap_or_default();
        self.check(&op, &before, result)
    }

    fn fail(&self, error: &str) -> ! {
        let ops: Vec<String> = self
            .ops
            .iter()
            .enumerate()
            .map(|(n, op)| format!("  {:>2}. {op}", n + 1))
            .collect();
        // Builds are told apart by their sha256 in state and on the hosts.
        let builds: Vec<String> = self
            .published
            .borrow()
            .iter()
            .map(|(sha, (version, build))| format!("  {sha}: {}", code_of(version, *build)))
            .collect();
        panic!(
            "operation sequence failed: {error}\n\nreplay with SLIPWAY_SEQ_SEED={}\noperations:\n{}\n\nbuilds published:\n{}\n\nlast slipway output:\n{}",
            self.seed,
            ops.join("\n"),
            builds.join("\n"),
            self.last_log
        );
    }
}

fn ensure(condition: bool, message: String) -> Result<(), String> {
    if condition {
        Ok(())
    } else {
        Err(message)
    }
}

/// The fixture's artifact block: the runner packs `./app` and pushes it.
const PUSHED_ARTIFACT: &str = "  artifact {\n    source = \"./app\"\n  }\n";

/// The app's start script: as the fixture's, but every host listens on the
/// same port (each is its own machine on the network) and the answer names
/// the code release too.
const START_SH: &str = r#"#!/bin/sh
set -eu
config=$1
. "./$config"   # BASE_PORT, GREETING, VERSION, FLAVOR
port=$BASE_PORT
release=$(cd "$(dirname "$0")/.." && pwd)
code=$(cat "$release/CODE")
mkdir -p run
rm -f run/app.ready
nohup python3 "$release/bin/server.py" "$port" \
    "$GREETING (version $VERSION, flavor $FLAVOR, code $code, ${SLIPWAY_HOST:-unknown host})" \
    </dev/null >run/app.log 2>&1 &
echo $! >run/app.pid
echo "$port" >run/app.port
tries=0
while [ ! -f run/app.ready ]; do
    if ! kill -0 "$(cat run/app.pid)" 2>/dev/null; then
        echo "the app exited at start:" >&2
        cat run/app.log >&2
        exit 1
    fi
    tries=$((tries + 1))
    if [ "$tries" -gt 400 ]; then
        echo "the app does not listen on 127.0.0.1:$port after 20s" >&2
        exit 1
    fi
    sleep 0.05
done
"#;

/// The health check: held while `/opt/.lab/hold-health` exists on the host;
/// fails on the hosts the release's `FAIL` file lists.
const CHECK_SH: &str = r#"#!/bin/sh
set -eu
port=$(cat run/app.port)
lab=/opt/.lab
if [ -f "$lab/hold-health" ]; then
    : >"$lab/health-held"
    waited=0
    while [ -f "$lab/hold-health" ] && [ "$waited" -lt 1200 ]; do
        sleep 0.1
        waited=$((waited + 1))
    done
fi
if grep -qxF "${SLIPWAY_HOST:-}" current/FAIL; then
    echo "health: this release fails on ${SLIPWAY_HOST:-}" >&2
    exit 1
fi
exec python3 - "$port" <<'PY'
import sys, urllib.request
url = "http://127.0.0.1:%s/health" % sys.argv[1]
try:
    with urllib.request.urlopen(url, timeout=2) as response:
        ok = response.status == 200 and response.read().strip() == b"ok"
except OSError as error:
    sys.exit("%s: %s" % (url, error))
sys.exit(0 if ok else "%s: unexpected answer" % url)
PY
"#;

/// Random operation sequences on 10 sshd hosts (8 listed at first), each
/// checked after every operation; see the module's documentation.
impl OperationSequence for Sequence {
    type Op = Op;

    fn start(seed: u64) -> Option<Self> {
        let hosts = HostOptions {
            own_network: true,
            ..HostOptions::default()
        };
        Some(Sequence::new(
            seed,
            Lab::start_with(HOSTS, "vm-sequences-", hosts)?,
        ))
    }

    fn first(&mut self) -> Op {
        Op::Apply(self.target.clone())
    }

    fn choose(&mut self) -> Op {
        Sequence::choose(self)
    }

    fn step(&mut self, op: Op) -> Result<(), String> {
        Sequence::step(self, op)
    }

    fn converge(&mut self) -> Result<(), String> {
        Sequence::converge(self)
    }

    fn steps_taken(&self) -> usize {
        self.ops.len()
    }

    fn fail(&self, error: &str) -> ! {
        Sequence::fail(self, error)
    }
}

#[test]
fn random_operation_sequences_keep_the_vm_invariants() {
    run::<Sequence>("VM", 240, STEPS_PER_SEQUENCE);
}
