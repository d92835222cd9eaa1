//! Builders of the remote steps of a VM deployment on one host.
//!
//! Each builder is a pure function of the service's [`VmSpec`] and a [`HostContext`]
//! and returns [`RemoteStep`]s: POSIX `sh` scripts to run on the host, with every path
//! under the host's root and every value quoted. See the module documentation of
//! [`crate::vm`] for the conventions, and section 11 of the language reference for the
//! order in which apply runs them:
//!
//! | phase | builder |
//! | --- | --- |
//! | connect | [`check_connection`], [`read_release_marker`] |
//! | 1 | [`prechecks`] |
//! | 2, 3 | [`hooks`] with [`Phase::BeforeStop`], [`Phase::Deregister`] |
//! | 4 | [`artifact_status`] (skip the upload when it passes), upload to [`artifact_upload_path`] (the transport creates its directory), [`verify_artifact`] |
//! | 5 | [`install_release`] |
//! | 6 | [`stop`] |
//! | 7 | [`config_files`] / [`write_config_file`] |
//! | 8 | [`install_systemd_unit`] |
//! | 9 | [`switch_current`], [`start`] |
//! | 10 | [`hooks`] with [`Phase::AfterStart`] |
//! | 11 | [`health_check`] for each check (command or url, all attempts on the host), [`smoke`] |
//! | 12 | [`hooks`] with [`Phase::Register`] |
//! | 13 | [`write_release_marker`], [`prune_releases`] |
//! | on failure | [`rollback`] |
//!
//! Apply runs consecutive steps that need nothing from the runner in between as
//! one [`chain`]: one session on the host instead of one per step.
//!
//! Layout of the install directory on a host:
//!
//! ```text
//! INSTALL_DIR/
//!   releases/VERSION/            one unpacked artifact each; `.slipway-complete` once whole
//!   releases/.tmp-VERSION/       where a release is unpacked before it is renamed
//!   current -> releases/VERSION  relative symlink to the running release
//!   .slipway/artifacts/SHA256.tar.gz
//!   .slipway/previous            line 1: what `current` pointed at before the last switch
//!                                line 2: the apply that made that switch
//!   .slipway/release.json        the release marker (ReleaseMarker)
//! ```

use serde::{Deserialize, Serialize};

use super::shell::{env_prefix, quote};
use std::time::Duration;

use crate::config::{ConfigFile, DurationText, HealthCheck, HookWhen, SystemdUnit, VmSpec};

/// The file in a release directory that says it was unpacked completely.
const COMPLETE: &str = ".slipway-complete";

/// Where and as what a step runs on one host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostContext {
    /// The host as listed in `hosts` (`SLIPWAY_HOST`).
    pub host: String,
    /// The host's position in `hosts`, from 0 (`SLIPWAY_HOST_INDEX`).
    pub host_index: usize,
    /// "/" over SSH, the host's directory with the local transport. An absolute path.
    pub host_root: String,
    /// The environment's name (`SLIPWAY_ENVIRONMENT`).
    pub environment: String,
    /// The deployment's name (`SLIPWAY_DEPLOYMENT`).
    pub deployment: String,
    /// The version being deployed (`SLIPWAY_VERSION`, `releases/VERSION`).
    pub version: String,
    /// The apply this step belongs to: recorded with a switch of `current`, so that
    /// [`rollback`] undoes only what this apply did.
    pub apply_id: String,
    /// Run what needs root through `sudo -n`.
    pub sudo: bool,
}

impl HostContext {
    /// Check the values the scripts use as path components or record in files line by
    /// line: the version names a directory under `releases/`, so it must be one plain
    /// file name. The scripts quote these values anyway; this keeps them from pointing
    /// outside the install directory.
    pub fn validate(&self) -> Result<(), StepError> {
        if let Err(problem) = crate::config::confine::release_name(&self.version) {
            return Err(StepError::Version(problem.to_string()));
        }
        if !self.host_root.starts_with('/') {
            return Err(StepError::HostRoot(self.host_root.clone()));
        }
        if self.apply_id.chars().any(char::is_control) {
            return Err(StepError::ApplyId(self.apply_id.clone()));
        }
        Ok(())
    }
}

/// A value the scripts cannot use safely.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StepError {
    #[error("the version cannot name a release directory: {0}")]
    Version(String),
    #[error("host root {0:?} is not an absolute path")]
    HostRoot(String),
    #[error("apply id {0:?} has control characters")]
    ApplyId(String),
    #[error("artifact digest {0:?} is not a sha256 (64 lowercase hex digits)")]
    Sha256(String),
}

/// Check that `sha256` is 64 lowercase hex digits, as the artifact builders expect
/// (it names the uploaded file).
pub fn check_sha256(sha256: &str) -> Result<(), StepError> {
    if sha256.len() == 64
        && sha256
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(())
    } else {
        Err(StepError::Sha256(sha256.to_string()))
    }
}

/// The points of a host's update, in the order apply reaches them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    Connect,
    Precheck,
    BeforeStop,
    Deregister,
    Stop,
    Transfer,
    Install,
    Configure,
    Unit,
    Switch,
    Start,
    AfterStart,
    Health,
    Smoke,
    Register,
    Marker,
    Prune,
    Rollback,
}

impl Phase {
    /// The phase as a lowercase name, for logs and events.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Connect => "connect",
            Phase::Precheck => "precheck",
            Phase::BeforeStop => "before_stop",
            Phase::Deregister => "deregister",
            Phase::Stop => "stop",
            Phase::Transfer => "transfer",
            Phase::Install => "install",
            Phase::Configure => "configure",
            Phase::Unit => "unit",
            Phase::Switch => "switch",
            Phase::Start => "start",
            Phase::AfterStart => "after_start",
            Phase::Health => "health",
            Phase::Smoke => "smoke",
            Phase::Register => "register",
            Phase::Marker => "marker",
            Phase::Prune => "prune",
            Phase::Rollback => "rollback",
        }
    }

    /// The `when` of the hooks that run at this phase, if hooks run at it.
    pub fn hook_when(self) -> Option<HookWhen> {
        match self {
            Phase::BeforeStop => Some(HookWhen::BeforeStop),
            Phase::Deregister => Some(HookWhen::Deregister),
            Phase::AfterStart => Some(HookWhen::AfterStart),
            Phase::Register => Some(HookWhen::Register),
            _ => None,
        }
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One remote step: a POSIX sh script run with `/bin/sh -c`, plus what it is for.
///
/// The script may hold sensitive values (config file contents): mask it before
/// showing or storing it, and prefer giving it to the shell on standard input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteStep {
    pub phase: Phase,
    /// What the step does, e.g. `precheck.java`, `config_file.app.properties`.
    pub name: String,
    pub script: String,
    /// How long the step may run: `None` for the runner's limit for one
    /// step; a health check sets its own (all its attempts).
    pub time_limit: Option<Duration>,
}

impl RemoteStep {
    fn new(phase: Phase, name: impl Into<String>, lines: Vec<String>) -> Self {
        RemoteStep {
            phase,
            name: name.into(),
            script: lines.join("\n"),
            time_limit: None,
        }
    }
}

/// What a [`chain`] prints on standard error, followed by the step's name,
/// when one of its steps fails.
pub const FAILED_STEP_MARKER: &str = "slipway-failed-step: ";

/// What a [`chain`] prints on standard error, followed by the step's name,
/// as each of its steps starts: if the connection goes mid-chain, the last
/// one says which step was running ([`started_step`]).
pub const STARTED_STEP_MARKER: &str = "slipway-step: ";

/// `steps` as one script, run in one session: each step's script runs in a
/// subshell of its own (its `set -e`, `cd` and variables stay inside), in
/// order; the first that fails stops the chain, which prints
/// [`FAILED_STEP_MARKER`] and that step's name on standard error and exits
/// with the step's status ([`failed_step`] reads the name back). One step is
/// returned as it is; no steps give `None`.
///
/// A session costs a round trip and a fork of the host's sshd; a host update
/// of a dozen steps pays that a dozen times, which over a link with tens of
/// milliseconds of latency is most of the update.
pub fn chain(steps: &[RemoteStep]) -> Option<RemoteStep> {
    match steps {
        [] => None,
        [one] => Some(one.clone()),
        [first, ..] => {
            let mut script = String::new();
            for step in steps {
                // The name only ever reaches the shell quoted: a label may
                // hold any character.
                script.push_str(&format!(
                    "printf '%s\\n' {} >&2\n",
                    quote(&format!("{STARTED_STEP_MARKER}{}", step.name))
                ));
                script.push_str(&format!("(\n{}\n)\n", step.script));
                script.push_str(&format!(
                    "status=$?\nif [ \"$status\" -ne 0 ]; then printf '%s\\n' {} >&2; exit \"$status\"; fi\n",
                    quote(&format!("{FAILED_STEP_MARKER}{}", step.name))
                ));
            }
            Some(RemoteStep {
                // The runner adds up the steps' own limits.
                time_limit: None,
                phase: first.phase,
                name: steps
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                script,
            })
        }
    }
}

/// The step a [`chain`] stopped at, from its standard error, and that
/// standard error without the marker lines.
/// When the chain ended without saying (killed by a signal), the step that
/// had started last.
pub fn failed_step(stderr: &str) -> Option<(String, String)> {
    let name = stderr
        .lines()
        .rev()
        .find_map(|line| line.strip_prefix(FAILED_STEP_MARKER))
        .map(str::to_string)
        .or_else(|| started_step(stderr))?;
    let rest = stderr
        .lines()
        .filter(|l| !l.starts_with(FAILED_STEP_MARKER) && !l.starts_with(STARTED_STEP_MARKER))
        .collect::<Vec<_>>()
        .join("\n");
    Some((name, rest))
}

/// The step of a [`chain`] that had started last, from what the chain had
/// printed on standard error when its session ended early.
pub fn started_step(stderr: &str) -> Option<String> {
    stderr
        .lines()
        .rev()
        .find_map(|line| line.strip_prefix(STARTED_STEP_MARKER))
        .map(str::to_string)
}

/// What `.slipway/release.json` on a host holds: the release the last successful
/// update installed there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseMarker {
    pub version: String,
    /// The artifact's sha256.
    pub sha256: String,
    /// When the update finished, RFC 3339.
    pub time: String,
    pub apply_id: String,
}

impl ReleaseMarker {
    /// Parse the output of [`read_release_marker`]: `None` when the host has no
    /// marker (empty output).
    pub fn parse(output: &str) -> Result<Option<ReleaseMarker>, serde_json::Error> {
        if output.trim().is_empty() {
            return Ok(None);
        }
        serde_json::from_str(output).map(Some)
    }
}

/// `absolute` placed under the host's root: unchanged when the root is `/`,
/// `ROOT/absolute` otherwise. Trailing slashes are dropped; a relative path is taken
/// as relative to the root.
pub fn host_path(ctx: &HostContext, absolute: &str) -> String {
    let root = ctx.host_root.trim_end_matches('/');
    let path = absolute.trim_matches('/');
    match (root.is_empty(), path.is_empty()) {
        (true, true) => "/".to_string(),
        (true, false) => format!("/{path}"),
        (false, true) => root.to_string(),
        (false, false) => format!("{root}/{path}"),
    }
}

/// The service's install directory on the host (under the host's root).
pub fn install_dir(vm: &VmSpec, ctx: &HostContext) -> String {
    host_path(ctx, &vm.install_dir)
}

/// `dir/name`, for `dir` from [`host_path`].
fn under(dir: &str, name: &str) -> String {
    if dir.ends_with('/') {
        format!("{dir}{name}")
    } else {
        format!("{dir}/{name}")
    }
}

fn state_dir(vm: &VmSpec, ctx: &HostContext) -> String {
    under(&install_dir(vm, ctx), ".slipway")
}

fn artifacts_dir(vm: &VmSpec, ctx: &HostContext) -> String {
    under(&state_dir(vm, ctx), "artifacts")
}

/// `sudo -n ` when the context asks for sudo, for commands that need root.
fn root(ctx: &HostContext) -> &'static str {
    if ctx.sudo {
        "sudo -n "
    } else {
        ""
    }
}

/// A line that prints `message` (with `%s` filled from `args`, shell words) on
/// standard error.
fn complain(format: &str, args: &[&str]) -> String {
    let mut line = format!("printf {}", quote(&format!("slipway: {format}\\n")));
    for arg in args {
        line.push(' ');
        line.push_str(arg);
    }
    line.push_str(" >&2");
    line
}

/// Shell functions the confinement checks use:
/// `inside REAL BASE` holds when the real path `REAL` is `BASE` or below it;
/// `allowed REAL` when it is inside the real path of one of the service's own
/// directories (`install_dir`, `config_dirs`) on the host.
pub(crate) fn confinement_functions(vm: &VmSpec, ctx: &HostContext) -> Vec<String> {
    let bases: Vec<String> = allowed_dirs(vm, ctx).iter().map(|d| quote(d)).collect();
    vec![
        "inside() { [ \"$2\" = / ] && return 0; case \"$1/\" in \"$2\"/*) return 0 ;; esac; return 1; }"
            .to_string(),
        format!(
            "allowed() {{ for base in {}; do real=$(cd \"$base\" 2>/dev/null && pwd -P) || continue; inside \"$1\" \"$real\" && return 0; done; return 1; }}",
            bases.join(" ")
        ),
    ]
}

/// The service's own directories on the host: `install_dir`, then `config_dirs`.
fn allowed_dirs(vm: &VmSpec, ctx: &HostContext) -> Vec<String> {
    std::iter::once(&vm.install_dir)
        .chain(&vm.config_dirs)
        .map(|dir| host_path(ctx, dir))
        .collect()
}

/// The directories slipway manages under the install directory. Each must be
/// a real directory (or not exist yet): one that is a symbolic link would send
/// what slipway writes or deletes there wherever it points.
fn managed_dirs(vm: &VmSpec, ctx: &HostContext) -> Vec<String> {
    let install = install_dir(vm, ctx);
    [
        ".slipway",
        ".slipway/artifacts",
        ".slipway/config",
        "releases",
    ]
    .iter()
    .map(|name| under(&install, name))
    .collect()
}

/// Lines that fail the script when one of [`managed_dirs`] is a symbolic link.
pub(crate) fn refuse_managed_links(vm: &VmSpec, ctx: &HostContext) -> Vec<String> {
    let dirs: Vec<String> = managed_dirs(vm, ctx).iter().map(|d| quote(d)).collect();
    vec![
        format!("for managed in {}; do", dirs.join(" ")),
        "  if [ -L \"$managed\" ]; then".to_string(),
        format!(
            "    {}",
            complain(
                "%s is a symbolic link; slipway does not write or delete through one",
                &["\"$managed\""]
            )
        ),
        "    exit 1".to_string(),
        "  fi".to_string(),
        "done".to_string(),
    ]
}

/// Lines that write `content` (a shell word) to `dir/name` atomically: into a
/// new file made by `mktemp` in the same directory (never an existing file
/// or link), then renamed over `dir/name` with `mv -T`, which replaces a link
/// there instead of following it. `dir` is a shell word.
fn write_atomically(dir: &str, name: &str, printf: &str) -> Vec<String> {
    vec![
        format!("tmp=$(mktemp {dir}/{})", quote(&format!(".{name}.XXXXXX"))),
        format!("{printf} > \"$tmp\""),
        format!("mv -fT \"$tmp\" {dir}/{}", quote(name)),
    ]
}

/// Check that the install directory's managed parts are real directories: run
/// before anything is uploaded or written on a host.
pub fn check_layout(vm: &VmSpec, ctx: &HostContext) -> RemoteStep {
    let mut lines = vec!["set -eu".to_string()];
    lines.extend(refuse_managed_links(vm, ctx));
    RemoteStep::new(Phase::Connect, "layout", lines)
}

/// The longest command slipway runs: a command is the argument of
/// `/bin/sh -c` on the host, and Linux limits one argument to 128 KiB.
/// Validation refuses longer ones.
pub const MAX_COMMAND_BYTES: usize = 64 * 1024;

/// The line that runs a user command: in the install directory, with the
/// `SLIPWAY_*` variables, through `/bin/sh -c`. With `create_dir` the install
/// directory is created first (commands that may run before the first install).
fn user_command(vm: &VmSpec, ctx: &HostContext, command: &str, create_dir: bool) -> String {
    let dir = quote(&install_dir(vm, ctx));
    let index = ctx.host_index.to_string();
    let install = install_dir(vm, ctx);
    let env = env_prefix(&[
        ("SLIPWAY_HOST", &ctx.host),
        ("SLIPWAY_HOST_INDEX", &index),
        ("SLIPWAY_INSTALL_DIR", &install),
        ("SLIPWAY_HOST_ROOT", &ctx.host_root),
        ("SLIPWAY_VERSION", &ctx.version),
        ("SLIPWAY_ENVIRONMENT", &ctx.environment),
        ("SLIPWAY_DEPLOYMENT", &ctx.deployment),
    ]);
    let mkdir = if create_dir {
        format!("mkdir -p {dir} && ")
    } else {
        String::new()
    };
    format!("{mkdir}cd {dir} && {env} /bin/sh -c {}", quote(command))
}

/// Check that the host answers and can run the scripts: prints the user the steps
/// run as, checks for the tools the scripts use and, with sudo, that `sudo -n` works.
pub fn check_connection(ctx: &HostContext) -> RemoteStep {
    let mut lines = vec![
        "set -eu".to_string(),
        "id -un".to_string(),
        "for tool in tar gzip sha256sum readlink cmp; do".to_string(),
        "  if ! command -v \"$tool\" >/dev/null 2>&1; then".to_string(),
        format!(
            "    {}",
            complain("%s is not installed on this host", &["\"$tool\""])
        ),
        "    exit 1".to_string(),
        "  fi".to_string(),
        "done".to_string(),
    ];
    if ctx.sudo {
        lines.extend([
            "if ! sudo -n true; then".to_string(),
            format!(
                "  {}",
                complain(
                    "sudo -n true failed: vm_hosts.sudo needs sudo without a password",
                    &[]
                )
            ),
            "  exit 1".to_string(),
            "fi".to_string(),
        ]);
    }
    RemoteStep::new(Phase::Connect, "connect", lines)
}

/// One step per `precheck`, in order. They may run before anything is installed, so
/// each creates the install directory before changing into it.
pub fn prechecks(vm: &VmSpec, ctx: &HostContext) -> Vec<RemoteStep> {
    vm.prechecks
        .iter()
        .map(|check| {
            RemoteStep::new(
                Phase::Precheck,
                format!("precheck.{}", check.name),
                vec![user_command(vm, ctx, &check.command, true)],
            )
        })
        .collect()
}

/// Where the runner uploads the artifact: `INSTALL_DIR/.slipway/artifacts/SHA256.tar.gz`
/// under the host's root.
pub fn artifact_upload_path(vm: &VmSpec, ctx: &HostContext, sha256: &str) -> String {
    under(&artifacts_dir(vm, ctx), &format!("{sha256}.tar.gz"))
}

/// The line [`artifact_status`] prints when the artifact is on the host.
pub const ARTIFACT_PRESENT: &str = "slipway-artifact: present";

/// The shell test that holds when `file` (quoted) exists with the sha256
/// `sha256`.
fn holds_artifact(file: &str, sha256: &str) -> String {
    format!(
        "[ -f {file} ] && [ \"$(sha256sum < {file} | cut -c 1-64)\" = {} ]",
        quote(sha256)
    )
}

/// Prints [`ARTIFACT_PRESENT`] when the artifact is already on the host with
/// the right sha256 (the upload can be skipped), nothing otherwise; exits 0
/// either way, so it can end the chain of checks ([`artifact_present`] reads
/// the answer).
pub fn artifact_status(vm: &VmSpec, ctx: &HostContext, sha256: &str) -> RemoteStep {
    let file = quote(&artifact_upload_path(vm, ctx, sha256));
    let lines = vec![
        "set -eu".to_string(),
        format!("if {}; then", holds_artifact(&file, sha256)),
        format!("  echo {}", quote(ARTIFACT_PRESENT)),
        "fi".to_string(),
    ];
    RemoteStep::new(Phase::Transfer, "artifact.status", lines)
}

/// Whether the standard output of a session that ran [`artifact_status`]
/// says the artifact is on the host.
pub fn artifact_present(stdout: &str) -> bool {
    stdout.lines().any(|line| line == ARTIFACT_PRESENT)
}

/// Check the uploaded artifact's sha256; fails with both digests otherwise.
pub fn verify_artifact(vm: &VmSpec, ctx: &HostContext, sha256: &str) -> RemoteStep {
    let file = quote(&artifact_upload_path(vm, ctx, sha256));
    let expected = quote(sha256);
    let lines = vec![
        "set -eu".to_string(),
        format!("if [ ! -f {file} ]; then"),
        format!("  {}", complain("artifact %s is missing", &[&file])),
        "  exit 1".to_string(),
        "fi".to_string(),
        format!("actual=$(sha256sum < {file} | cut -c 1-64)"),
        format!("if [ \"$actual\" != {expected} ]; then"),
        format!(
            "  {}",
            complain(
                "artifact %s has sha256 %s, expected %s",
                &[&file, "\"$actual\"", &expected]
            )
        ),
        "  exit 1".to_string(),
        "fi".to_string(),
    ];
    RemoteStep::new(Phase::Transfer, "artifact.verify", lines)
}

/// The host downloads the artifact itself (`delivery = "pull"`) into
/// [`artifact_upload_path`], with curl or else wget, and keeps it only when
/// its sha256 is `sha256`: into a temporary file beside it first, so a
/// broken or wrong download is never used. Does nothing when the host has
/// the artifact already. The URL (a presigned one is a credential) reaches
/// the download tool on its standard input, never in a command line, and no
/// message shows it; `ca_pem` (`slipway { ca_file }`) is trusted besides the
/// host's own certificate authorities. The download stops when the session
/// that runs it goes ([`session_watch_functions`]): a killed slipway leaves
/// no download running on its hosts, and the temporary file is removed.
pub fn pull_artifact(
    vm: &VmSpec,
    ctx: &HostContext,
    sha256: &str,
    download: &crate::artifact::HostDownload,
    ca_pem: Option<&str>,
) -> RemoteStep {
    let file = quote(&artifact_upload_path(vm, ctx, sha256));
    let expected = quote(sha256);
    let shown = quote(&download.shown_source);
    let url = url_for_host_tool(&download.url);
    let mut lines = vec![
        "set -eu".to_string(),
        format!("if {}; then exit 0; fi", holds_artifact(&file, sha256)),
        format!("mkdir -p {}", quote(&artifacts_dir(vm, ctx))),
        // What a download cut short with its host (a reboot, a kill -9)
        // left: the temporary files of shells that are gone.
        format!("for old in {file}.pull.*; do"),
        "  [ -e \"$old\" ] || continue".to_string(),
        "  pid=${old##*.pull.}; pid=${pid%.ca}".to_string(),
        "  case $pid in ''|*[!0-9]*) continue ;; esac".to_string(),
        "  kill -0 \"$pid\" 2>/dev/null || rm -f \"$old\"".to_string(),
        "done".to_string(),
        format!("part={file}.pull.$$"),
        "trap 'rm -f \"$part\" \"$part.ca\"' EXIT".to_string(),
        // A message to a session that is gone fails instead of ending the
        // shell before its EXIT trap removes the temporary file.
        "trap '' PIPE".to_string(),
    ];
    let (curl_ca, wget_ca) = trust_ca_pem(&mut lines, ca_pem, "\"$part.ca\"");
    let failed = complain(
        "the host could not download artifact %s (the error above): check that the host reaches the source, or set delivery = \"push\" in the artifact block",
        &[&shown],
    );
    lines.extend(session_watch_functions());
    lines.extend([
        "if command -v curl >/dev/null 2>&1; then".to_string(),
        format!(
            "  curl -q -sS -f -L --max-redirs 5 --proto =https,http --proto-redir =https,http --connect-timeout 60 --speed-limit 1 --speed-time 60{curl_ca} -o \"$part\" -K - <<'SLIPWAY_URL' &"
        ),
        format!("url = \"{url}\""),
        "SLIPWAY_URL".to_string(),
        "elif command -v wget >/dev/null 2>&1; then".to_string(),
        format!(
            "  wget -q --max-redirect=5 --tries=1 --timeout=60{wget_ca} -O \"$part\" -i - <<'SLIPWAY_URL' &"
        ),
        url,
        "SLIPWAY_URL".to_string(),
        "else".to_string(),
        format!(
            "  {}",
            complain(
                "the host has neither curl nor wget to download artifact %s: install one, or set delivery = \"push\" in the artifact block",
                &[&shown]
            )
        ),
        "  exit 1".to_string(),
        "fi".to_string(),
        "download=$!".to_string(),
        "stop_when_session_ends \"$download\" >/dev/null 2>&1 &".to_string(),
        "watcher=$!".to_string(),
        "if ! wait \"$download\"; then".to_string(),
        "  kill \"$watcher\" 2>/dev/null || true".to_string(),
        format!("  {failed}"),
        "  exit 1".to_string(),
        "fi".to_string(),
        "kill \"$watcher\" 2>/dev/null || true".to_string(),
        "actual=$(sha256sum < \"$part\" | cut -c 1-64)".to_string(),
        format!("if [ \"$actual\" != {expected} ]; then"),
        format!(
            "  {}",
            complain(
                "artifact %s as the host downloaded it has sha256 %s, but the plan pinned %s: the source changed since, or serves this host other bytes",
                &[&shown, "\"$actual\"", &expected]
            )
        ),
        "  exit 1".to_string(),
        "fi".to_string(),
        format!("mv -f \"$part\" {file}"),
    ]);
    RemoteStep::new(Phase::Transfer, "artifact.pull", lines)
}

/// Shell functions that end a long-running command of a step when the
/// session that started it goes (slipway killed, its connection lost): sshd
/// sends no signal to a command without a terminal whose client went away,
/// and the local transport's shell outlives a killed slipway too.
/// `stop_when_session_ends PID` checks once a second, while PID runs,
/// whether this shell's parent (slipway or sshd) or the parent of its
/// session's leader (sshd, when a login shell stands between) changed, and
/// ends PID when one did. Reads `/proc`; where there is none, it watches
/// nothing and the command runs to its end.
fn session_watch_functions() -> Vec<String> {
    vec![
        "parent_of() { line=$(cat \"/proc/$1/stat\" 2>/dev/null) || return 0; set -- ${line##*) }; printf '%s' \"${2:-}\"; }".to_string(),
        "session_of() { line=$(cat \"/proc/$1/stat\" 2>/dev/null) || return 0; set -- ${line##*) }; printf '%s' \"${4:-}\"; }".to_string(),
        "session_leader=$(session_of $$)".to_string(),
        "shell_parent=$(parent_of $$)".to_string(),
        "leader_parent=$(parent_of \"$session_leader\")".to_string(),
        "stop_when_session_ends() {".to_string(),
        "  while kill -0 \"$1\" 2>/dev/null; do".to_string(),
        "    if [ \"$(parent_of $$)\" != \"$shell_parent\" ] || [ \"$(parent_of \"$session_leader\")\" != \"$leader_parent\" ]; then".to_string(),
        "      kill \"$1\" 2>/dev/null".to_string(),
        "      return 0".to_string(),
        "    fi".to_string(),
        "    sleep 1".to_string(),
        "  done".to_string(),
        "}".to_string(),
    ]
}

/// `url` as one line both curl's config (inside double quotes) and wget's
/// URL list read literally: every byte that is not printable ASCII, and the
/// space, `"` and `\`, percent-encoded (which a URL means the same way), so
/// no value can end the here-document it is written into.
fn url_for_host_tool(url: &str) -> String {
    let mut line = String::with_capacity(url.len());
    for byte in url.bytes() {
        if byte.is_ascii_graphic() && byte != b'"' && byte != b'\\' {
            line.push(byte as char);
        } else {
            line.push_str(&format!("%{byte:02X}"));
        }
    }
    line
}

/// Unpack the artifact into `INSTALL_DIR/releases/VERSION`: into a temporary directory
/// first, marked complete with the artifact's sha256 and given to `run_as`, then
/// renamed into place. Does nothing when that build of the release is already
/// installed completely; another build of the same version (an artifact rebuilt
/// without a new version) is replaced, the service being stopped by then. The
/// archive's top level becomes the release directory.
pub fn install_release(vm: &VmSpec, ctx: &HostContext, sha256: &str) -> RemoteStep {
    let releases = under(&install_dir(vm, ctx), "releases");
    let release = quote(&under(&releases, &ctx.version));
    let artifact = quote(&artifact_upload_path(vm, ctx, sha256));
    let mut lines = vec!["set -eu".to_string()];
    lines.extend(refuse_managed_links(vm, ctx));
    lines.extend([
        format!(
            "if [ ! -L {release} ] && [ \"$(cat {release}/{COMPLETE} 2>/dev/null)\" = {} ]; then",
            quote(sha256)
        ),
        format!(
            "  printf {} {release}",
            quote("slipway: %s is already installed\\n")
        ),
        "  exit 0".to_string(),
        "fi".to_string(),
    ]);
    lines.extend(unpack_release(vm, ctx, &ctx.version, &artifact, sha256));
    RemoteStep::new(Phase::Install, "install", lines)
}

/// Lines that unpack `artifact` (a quoted path) into `releases/VERSION` of
/// the install directory: into `releases/.tmp-VERSION` first, marked complete
/// with `sha256` (the build it holds) and given to `run_as`, then renamed
/// over what was there.
fn unpack_release(
    vm: &VmSpec,
    ctx: &HostContext,
    version: &str,
    artifact: &str,
    sha256: &str,
) -> Vec<String> {
    let releases = under(&install_dir(vm, ctx), "releases");
    let release = quote(&under(&releases, version));
    let temp = quote(&under(&releases, &format!(".tmp-{version}")));
    let mut lines = vec![
        format!("rm -rf {temp}"),
        format!("mkdir -p {temp}"),
        format!("tar -xzf {artifact} --no-same-owner -C {temp}"),
        format!("printf '%s\\n' {} > {temp}/{COMPLETE}", quote(sha256)),
        format!("touch {temp}"),
    ];
    if let Some(user) = &vm.run_as {
        lines.push(format!("{}chown -R {} {temp}", root(ctx), quote(user)));
    }
    lines.push(format!("rm -rf {release}"));
    lines.push(format!("mv {temp} {release}"));
    lines
}

/// Write one config file atomically: to a new temporary file next to it
/// (made by `mktemp`, readable by its writer only), then mode (default `0644`)
/// and owner (default `run_as`), then renamed over the destination with
/// `mv -T` (a link at the destination is replaced, never followed).
///
/// Confinement: the destination lies in one of the service's directories
/// (`install_dir`, `config_dirs`; validation checked that). The directories
/// from there down to the file are created one at a time, and each must
/// resolve (`pwd -P`) inside that directory's real path: a symbolic link on the
/// host that leads elsewhere fails the step before anything is written.
pub fn write_config_file(vm: &VmSpec, file: &ConfigFile, ctx: &HostContext) -> RemoteStep {
    let name = format!("config_file.{}", file.name);
    let destination = file.destination.trim_end_matches('/');
    let base = std::iter::once(&vm.install_dir)
        .chain(&vm.config_dirs)
        .map(|dir| dir.trim_end_matches('/'))
        .filter_map(|dir| Some((dir, destination.strip_prefix(dir)?.strip_prefix('/')?)))
        .max_by_key(|(dir, _)| dir.len());
    let Some((base, relative)) = base else {
        return RemoteStep::new(
            Phase::Configure,
            name,
            vec![
                complain(
                    "%s is outside the service's directories",
                    &[&quote(&file.destination)],
                ),
                "exit 1".to_string(),
            ],
        );
    };
    let (parents, base_name) = match relative.rsplit_once('/') {
        Some((parents, base_name)) => (parents.split('/').collect::<Vec<_>>(), base_name),
        None => (Vec::new(), relative),
    };
    let base = quote(&host_path(ctx, base));
    let mut lines = vec![
        "set -eu".to_string(),
        "inside() { [ \"$2\" = / ] && return 0; case \"$1/\" in \"$2\"/*) return 0 ;; esac; return 1; }"
            .to_string(),
        format!("mkdir -p {base}"),
        format!("real_base=$(cd {base} && pwd -P)"),
        format!("dir={base}"),
    ];
    for part in parents {
        lines.extend([
            format!("dir=\"$dir\"/{}", quote(part)),
            "[ -d \"$dir\" ] || mkdir \"$dir\"".to_string(),
            "if ! inside \"$(cd \"$dir\" && pwd -P)\" \"$real_base\"; then".to_string(),
            format!(
                "  {}",
                complain(
                    "%s leads outside %s (a symbolic link?); not writing through it",
                    &["\"$dir\"", &base]
                )
            ),
            "  exit 1".to_string(),
            "fi".to_string(),
        ]);
    }
    lines.extend([
        "umask 077".to_string(),
        format!(
            "tmp=$(mktemp \"$dir\"/{})",
            quote(&format!(".{base_name}.slipway-XXXXXX"))
        ),
        "trap 'rm -f \"$tmp\"' EXIT".to_string(),
        format!("printf %s {} > \"$tmp\"", quote(&file.content)),
        format!(
            "chmod {} \"$tmp\"",
            quote(file.mode.as_deref().unwrap_or("0644"))
        ),
    ]);
    if let Some(owner) = file.owner.as_ref().or(vm.run_as.as_ref()) {
        lines.push(format!("{}chown {} \"$tmp\"", root(ctx), quote(owner)));
    }
    lines.push(format!("mv -fT \"$tmp\" \"$dir\"/{}", quote(base_name)));
    lines.push("trap - EXIT".to_string());
    RemoteStep::new(Phase::Configure, name, lines)
}

/// [`write_config_file`] for each config file, in order.
pub fn config_files(vm: &VmSpec, ctx: &HostContext) -> Vec<RemoteStep> {
    vm.config_files
        .iter()
        .map(|file| write_config_file(vm, file, ctx))
        .collect()
}

/// Write `/etc/systemd/system/UNIT` (under the host's root) with `text` (see
/// `plan::render::systemd_unit_text`) when its content differs, then, with `systemd`,
/// `systemctl daemon-reload`. The text is staged in `INSTALL_DIR/.slipway` first and
/// compared there; an unchanged unit is left alone.
pub fn install_systemd_unit(
    vm: &VmSpec,
    unit: &SystemdUnit,
    ctx: &HostContext,
    text: &str,
    systemd: bool,
) -> RemoteStep {
    let stage = vec![format!("printf %s {} > \"$staged\"", quote(text))];
    RemoteStep::new(
        Phase::Unit,
        format!("systemd_unit.{}", unit.name),
        systemd_unit_script(vm, unit, ctx, stage, systemd),
    )
}

/// The script that writes `/etc/systemd/system/UNIT` (under the host's root)
/// with what the lines `stage` put into the file `$staged` (they may `exit 0`
/// to write nothing), when it differs from what is there, then, with
/// `systemd`, reloads systemd.
pub(crate) fn systemd_unit_script(
    vm: &VmSpec,
    unit: &SystemdUnit,
    ctx: &HostContext,
    stage: Vec<String>,
    systemd: bool,
) -> Vec<String> {
    let sudo = root(ctx);
    let state = quote(&state_dir(vm, ctx));
    let unit_dir = quote(&host_path(ctx, "/etc/systemd/system"));
    let host_root = quote(&host_path(ctx, "/"));
    let name = quote(&unit.name);
    let mut lines = vec!["set -eu".to_string()];
    lines.extend(refuse_managed_links(vm, ctx));
    lines.extend([
        "inside() { [ \"$2\" = / ] && return 0; case \"$1/\" in \"$2\"/*) return 0 ;; esac; return 1; }"
            .to_string(),
        format!("mkdir -p {state}"),
        "umask 077".to_string(),
        format!(
            "staged=$(mktemp {state}/{})",
            quote(&format!(".{}.unit.XXXXXX", unit.name))
        ),
        "tmp=".to_string(),
        format!("trap 'rm -f \"$staged\"; [ -z \"$tmp\" ] || {sudo}rm -f \"$tmp\"' EXIT"),
    ]);
    lines.extend(stage);
    lines.extend([
        format!("if [ ! -L {unit_dir}/{name} ] && cmp -s \"$staged\" {unit_dir}/{name}; then"),
        format!(
            "  printf {} {unit_dir}/{name}",
            quote("slipway: %s is unchanged\\n")
        ),
        "  exit 0".to_string(),
        "fi".to_string(),
        "umask 022".to_string(),
        format!("{sudo}mkdir -p {unit_dir}"),
        format!("if ! inside \"$(cd {unit_dir} && pwd -P)\" \"$(cd {host_root} && pwd -P)\"; then"),
        format!(
            "  {}",
            complain(
                "%s leads outside %s (a symbolic link?); not writing through it",
                &[&unit_dir, &host_root]
            )
        ),
        "  exit 1".to_string(),
        "fi".to_string(),
        format!(
            "tmp=$({sudo}mktemp {unit_dir}/{})",
            quote(&format!(".{}.slipway-XXXXXX", unit.name))
        ),
        format!("{sudo}cp \"$staged\" \"$tmp\""),
        format!("{sudo}chmod 0644 \"$tmp\""),
        format!("{sudo}mv -fT \"$tmp\" {unit_dir}/{name}"),
        "tmp=".to_string(),
    ]);
    if systemd {
        lines.push(format!("{sudo}systemctl daemon-reload"));
    }
    lines
}

/// Where the systemd unit `unit` is, under the host's root.
pub(crate) fn systemd_unit_path(ctx: &HostContext, unit: &SystemdUnit) -> String {
    format!(
        "{}/{}",
        host_path(ctx, "/etc/systemd/system").trim_end_matches('/'),
        unit.name
    )
}

/// The line that stops the service, if the service says how. When it fails
/// and `current` names a directory slipway did not install (no completion
/// marker: a release made by hand), the failure says so and what to do.
fn stop_line(vm: &VmSpec, ctx: &HostContext) -> Option<String> {
    let line = if let Some(unit) = &vm.systemd_unit {
        format!("{}systemctl stop {}", root(ctx), quote(&unit.name))
    } else {
        user_command(vm, ctx, vm.stop_command.as_ref()?, false)
    };
    let current = quote(&under(&install_dir(vm, ctx), "current"));
    let explain = complain(
        "current points at %s, which slipway did not install (it has no %s): stop what it runs by hand, then point current at an installed release or remove it",
        &[&format!("\"$(readlink {current} || echo {current})\""), COMPLETE],
    );
    Some(format!(
        "{line} || {{ status=$?; if [ ! -f {current}/{COMPLETE} ]; then {explain}; fi; exit $status; }}"
    ))
}

/// The line that starts the service, if the service says how.
fn start_line(vm: &VmSpec, ctx: &HostContext) -> Option<String> {
    if let Some(unit) = &vm.systemd_unit {
        Some(format!(
            "{}systemctl start {}",
            root(ctx),
            quote(&unit.name)
        ))
    } else {
        vm.start_command
            .as_ref()
            .map(|command| user_command(vm, ctx, command, false))
    }
}

/// `line` when `INSTALL_DIR/current` exists, a message otherwise.
fn when_installed(vm: &VmSpec, ctx: &HostContext, line: String, otherwise: &str) -> Vec<String> {
    let current = quote(&under(&install_dir(vm, ctx), "current"));
    vec![
        "set -eu".to_string(),
        format!("if [ -L {current} ] || [ -e {current} ]; then"),
        format!("  {line}"),
        "else".to_string(),
        format!("  echo {}", quote(&format!("slipway: {otherwise}"))),
        "fi".to_string(),
    ]
}

/// Stop the running release: `systemctl stop UNIT`, or the `stop_command`. Skipped
/// (with a message) when nothing is installed yet. `None` when the service has
/// neither a systemd unit nor a stop command.
pub fn stop(vm: &VmSpec, ctx: &HostContext) -> Option<RemoteStep> {
    let line = stop_line(vm, ctx)?;
    Some(RemoteStep::new(
        Phase::Stop,
        "stop",
        when_installed(vm, ctx, line, "nothing is installed yet, nothing to stop"),
    ))
}

/// Start the release `current` points at: `systemctl start UNIT`, or the
/// `start_command`. `None` when the service has neither.
pub fn start(vm: &VmSpec, ctx: &HostContext) -> Option<RemoteStep> {
    let line = start_line(vm, ctx)?;
    Some(RemoteStep::new(Phase::Start, "start", vec![line]))
}

/// Point `INSTALL_DIR/current` at `releases/VERSION` with an atomic rename, after
/// recording where it pointed before in `.slipway/previous` (with the apply id, once
/// per apply, so that running the step again keeps the first record; not when it
/// points there already). Fails when the release is not installed completely.
/// Pruning keeps the release the record names.
pub fn switch_current(vm: &VmSpec, ctx: &HostContext) -> RemoteStep {
    let target = quote(&format!("releases/{}", ctx.version));
    let release = quote(&under(
        &under(&install_dir(vm, ctx), "releases"),
        &ctx.version,
    ));
    let apply = quote(&ctx.apply_id);
    let mut lines = vec!["set -eu".to_string()];
    lines.extend(refuse_managed_links(vm, ctx));
    lines.extend([
        format!("if [ -L {release} ] || [ ! -f {release}/{COMPLETE} ]; then"),
        format!("  {}", complain("release %s is not installed", &[&release])),
        "  exit 1".to_string(),
        "fi".to_string(),
        format!("cd {}", quote(&install_dir(vm, ctx))),
        "mkdir -p .slipway".to_string(),
        // Recorded once per apply, and not when `current` already points at
        // the release (a host an earlier apply of the rollout had switched).
        format!("if [ \"$(sed -n 2p .slipway/previous 2>/dev/null)\" != {apply} ] && [ \"$(readlink current 2>/dev/null || true)\" != {target} ]; then"),
    ]);
    lines.extend(
        write_atomically(
            ".slipway",
            "previous",
            &format!("printf '%s\\n%s\\n' \"$(readlink current 2>/dev/null || true)\" {apply}"),
        )
        .into_iter()
        .map(|line| format!("  {line}")),
    );
    lines.extend([
        "fi".to_string(),
        format!("ln -sfn {target} current.tmp"),
        "mv -T current.tmp current".to_string(),
    ]);
    RemoteStep::new(Phase::Switch, "switch", lines)
}

/// How long a health check may take at most, every attempt timing out and
/// every wait between attempts counted: a time limit for the session it runs
/// in.
pub fn health_time_limit(check: &HealthCheck) -> Duration {
    let (timeout, retries, interval) = health_timing(check);
    (timeout + interval) * (retries + 1)
}

/// How many attempts a health check makes at most: the first and its
/// `retries`.
pub fn health_attempts(check: &HealthCheck) -> u32 {
    health_timing(check).1 + 1
}

/// A check's (timeout of one attempt, further attempts, wait between
/// attempts), defaults filled in.
fn health_timing(check: &HealthCheck) -> (Duration, u32, Duration) {
    let timeout = check
        .timeout
        .as_ref()
        .map_or(Duration::from_secs(10), DurationText::get);
    let interval = check
        .interval
        .as_ref()
        .map_or(Duration::from_secs(5), DurationText::get);
    (timeout, check.retries.unwrap_or(3), interval)
}

/// Seconds as `sleep` and `timeout` take them: `0.5`, `10`.
fn seconds(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis.is_multiple_of(1000) {
        (millis / 1000).to_string()
    } else {
        format!("{}.{:03}", millis / 1000, millis % 1000)
            .trim_end_matches('0')
            .to_string()
    }
}

/// One health check with all its attempts, on the host: the `command`, or a
/// GET of the `url` made on the host itself (with `curl`, or `wget` where
/// there is no curl), so `localhost` in it is the host. Each attempt is
/// limited to the check's `timeout` (with `timeout` from coreutils or
/// busybox); a failed one is tried again after `interval`, `retries` times.
/// The step passes with the first attempt that does; otherwise it prints
/// what the last attempt printed on standard error and exits with its
/// status. `ca_pem` (the certificates of `slipway { ca_file }`) is trusted by
/// a `url` check besides the host's own store.
///
/// Retrying on the host rather than from the runner keeps a host's whole
/// check in the session that started the service: no round trip per attempt.
pub fn health_check(
    check: &HealthCheck,
    vm: &VmSpec,
    ctx: &HostContext,
    ca_pem: Option<&str>,
) -> RemoteStep {
    let (timeout, retries, interval) = health_timing(check);
    let limit = seconds(timeout);
    let mut lines = vec![
        "if ! command -v timeout >/dev/null 2>&1; then".to_string(),
        format!(
            "  {}",
            complain(
                "timeout (coreutils) is not installed on this host; health checks need it",
                &[]
            )
        ),
        "  exit 1".to_string(),
        "fi".to_string(),
    ];
    match (&check.command, &check.url) {
        (Some(command), _) => {
            let line = user_command(vm, ctx, command, false);
            lines.push(format!(
                "attempt() {{ out=$(timeout -k 2 {limit} /bin/sh -c {} 2>&1); status=$?; }}",
                quote(&line)
            ));
        }
        (None, Some(url)) => {
            lines.extend(http_get_lines(
                url,
                check.expect_status.unwrap_or(200),
                &limit,
                ca_pem,
            ));
        }
        (None, None) => lines.push("attempt() { out=; status=0; }".to_string()),
    }
    lines.extend([
        "tries=0".to_string(),
        "while :; do".to_string(),
        "  tries=$((tries + 1))".to_string(),
        "  attempt".to_string(),
        "  [ \"$status\" -eq 0 ] && exit 0".to_string(),
        "  if [ \"$status\" -eq 124 ]; then".to_string(),
        format!("    out=\"$out${{out:+\n}}slipway: no answer within {limit}s\""),
        "  fi".to_string(),
        format!("  if [ \"$tries\" -gt {retries} ]; then"),
        "    printf '%s\\n' \"$out\" >&2".to_string(),
        "    exit \"$status\"".to_string(),
        "  fi".to_string(),
        format!("  sleep {}", seconds(interval)),
        "done".to_string(),
    ]);
    let mut step = RemoteStep::new(Phase::Health, format!("health.{}", check.name), lines);
    step.time_limit = Some(health_time_limit(check));
    step
}

/// With `ca_pem` (the certificates of `slipway { ca_file }`), lines writing
/// it to `file` (a shell word) and the curl and wget options that trust it
/// besides the host's own; empty options otherwise.
fn trust_ca_pem(lines: &mut Vec<String>, ca_pem: Option<&str>, file: &str) -> (String, String) {
    let Some(pem) = ca_pem else {
        return (String::new(), String::new());
    };
    lines.push(format!("cat > {file} <<'SLIPWAY_CA_PEM'"));
    lines.push(pem.trim_end().to_string());
    lines.push("SLIPWAY_CA_PEM".to_string());
    (
        format!(" --cacert {file}"),
        format!(" --ca-certificate={file}"),
    )
}

/// Lines defining `attempt` for a `url` health check: one GET made on the
/// host, which passes when it answers with `expect_status`.
fn http_get_lines(url: &str, expect_status: u16, limit: &str, ca_pem: Option<&str>) -> Vec<String> {
    let url = quote(url);
    let mut lines = vec![
        "work=$(mktemp -d)".to_string(),
        "trap 'rm -rf \"$work\"' EXIT".to_string(),
    ];
    let (curl_ca, wget_ca) = trust_ca_pem(&mut lines, ca_pem, "\"$work/ca.pem\"");
    lines.extend([
        "attempt() {".to_string(),
        "  if command -v curl >/dev/null 2>&1; then".to_string(),
        format!(
            "    code=$(curl -sS -o /dev/null -w '%{{http_code}}' --max-time {limit}{curl_ca} --url {url} 2>\"$work/err\")"
        ),
        "  elif command -v wget >/dev/null 2>&1; then".to_string(),
        format!("    timeout -k 2 {limit} wget -S -O /dev/null{wget_ca} -- {url} 2>\"$work/err\""),
        "    code=$(sed -n 's/^ *HTTP\\/[0-9.]* \\([0-9][0-9][0-9]\\).*/\\1/p' \"$work/err\" | tail -n 1)"
            .to_string(),
        "  else".to_string(),
        format!(
            "    out={}; status=1; return",
            quote("slipway: neither curl nor wget is installed on this host; a health check with url needs one (or check with command)")
        ),
        "  fi".to_string(),
        format!("  if [ \"$code\" = {expect_status} ]; then out=; status=0"),
        format!(
            "  elif [ -n \"$code\" ] && [ \"$code\" != 000 ]; then out=\"slipway: answered with HTTP status $code, expected {expect_status}\"; status=1"
        ),
        "  else out=$(tail -n 5 \"$work/err\"); status=1; fi".to_string(),
        "}".to_string(),
    ]);
    lines
}

/// A verification gate's `command` on one host: one attempt, in the install
/// directory with the `SLIPWAY_*` variables.
pub fn gate_command(name: &str, command: &str, vm: &VmSpec, ctx: &HostContext) -> RemoteStep {
    RemoteStep::new(
        Phase::Health,
        format!("gate.{name}"),
        vec![user_command(vm, ctx, command, false)],
    )
}

/// One step per `smoke` test, in order.
pub fn smoke(vm: &VmSpec, ctx: &HostContext) -> Vec<RemoteStep> {
    vm.smoke
        .iter()
        .map(|test| {
            RemoteStep::new(
                Phase::Smoke,
                format!("smoke.{}", test.name),
                vec![user_command(vm, ctx, &test.command, false)],
            )
        })
        .collect()
}

/// One step per hook that runs at `when` ([`Phase::BeforeStop`],
/// [`Phase::Deregister`], [`Phase::AfterStart`] or [`Phase::Register`]), in order;
/// none for other phases. Hooks that may run before the first install
/// (`before_stop`, `deregister`) create the install directory first.
pub fn hooks(vm: &VmSpec, ctx: &HostContext, when: Phase) -> Vec<RemoteStep> {
    let Some(name) = when.hook_when() else {
        return Vec::new();
    };
    let create_dir = matches!(when, Phase::BeforeStop | Phase::Deregister);
    vm.hooks
        .iter()
        .filter(|hook| hook.when == name)
        .map(|hook| {
            RemoteStep::new(
                when,
                format!("hook.{}", hook.name),
                vec![user_command(vm, ctx, &hook.command, create_dir)],
            )
        })
        .collect()
}

/// Write `.slipway/release.json` (a [`ReleaseMarker`] for `ctx.version`) atomically.
/// `time` is RFC 3339.
pub fn write_release_marker(
    vm: &VmSpec,
    ctx: &HostContext,
    sha256: &str,
    time: &str,
) -> RemoteStep {
    let marker = ReleaseMarker {
        version: ctx.version.clone(),
        sha256: sha256.to_string(),
        time: time.to_string(),
        apply_id: ctx.apply_id.clone(),
    };
    let json = serde_json::to_string(&marker).expect("a struct of strings serializes");
    let state = quote(&state_dir(vm, ctx));
    let mut lines = vec!["set -eu".to_string()];
    lines.extend(refuse_managed_links(vm, ctx));
    lines.push(format!("mkdir -p {state}"));
    lines.extend(write_atomically(
        &state,
        "release.json",
        &format!("printf '%s\\n' {}", quote(&json)),
    ));
    RemoteStep::new(Phase::Marker, "marker.write", lines)
}

/// Print `.slipway/release.json`; prints nothing (and succeeds) when there is none.
/// Parse the output with [`ReleaseMarker::parse`].
pub fn read_release_marker(vm: &VmSpec, ctx: &HostContext) -> RemoteStep {
    let marker = quote(&under(&state_dir(vm, ctx), "release.json"));
    let lines = vec![
        "set -eu".to_string(),
        format!("if [ -f {marker} ]; then"),
        format!("  cat {marker}"),
        "fi".to_string(),
    ];
    RemoteStep::new(Phase::Marker, "marker.read", lines)
}

/// Print where `INSTALL_DIR/current` points (one line, empty when there is
/// none), then `.slipway/release.json` if there is one. Parse the output with
/// [`HostRelease::parse`]. What `plan -refresh` reads: the release `current`
/// resolves to is what the host runs, whatever the marker says.
pub fn read_host_release(vm: &VmSpec, ctx: &HostContext) -> RemoteStep {
    let dir = quote(&install_dir(vm, ctx));
    let lines = vec![
        "set -eu".to_string(),
        format!("if ! cd {dir} 2>/dev/null; then"),
        "  echo".to_string(),
        "  exit 0".to_string(),
        "fi".to_string(),
        "printf '%s\\n' \"$(readlink current 2>/dev/null || true)\"".to_string(),
        "if [ -f .slipway/release.json ]; then".to_string(),
        "  cat .slipway/release.json".to_string(),
        "fi".to_string(),
    ];
    RemoteStep::new(Phase::Marker, "release.read", lines)
}

/// What [`read_host_release`] found on a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRelease {
    /// The release `current` points at: `VERSION` for `releases/VERSION`,
    /// the link's target as it is otherwise; `None` without `current`.
    pub current: Option<String>,
    pub marker: Option<ReleaseMarker>,
}

impl HostRelease {
    pub fn parse(output: &str) -> Result<HostRelease, serde_json::Error> {
        let (first, rest) = output.split_once('\n').unwrap_or((output, ""));
        let target = first.trim_end_matches('/');
        let current = if target.is_empty() {
            None
        } else {
            let name = target.rsplit_once("releases/").map_or(target, |(_, v)| v);
            Some(name.to_string())
        };
        Ok(HostRelease {
            current,
            marker: ReleaseMarker::parse(rest)?,
        })
    }
}

/// Remove old releases: keep the newest `keep_releases` release directories (by
/// modification time, which is when a release was installed) and never remove the
/// one `current` or the previous record points at, nor `rollback_to`: the release
/// a rollback of the rollout in flight would put back (state's record of the pair
/// the host served before the rollout moved it, which need not be what `current`
/// pointed at before this update). Also keeps the newest `keep_releases` uploaded
/// artifacts and, when `rollback_to_sha256` names its build, the archive of that
/// release: after a rebuild of its version the release directory holds another
/// build, and the rollback unpacks that archive again. Removes unpacking
/// leftovers.
pub fn prune_releases(
    vm: &VmSpec,
    ctx: &HostContext,
    rollback_to: Option<&str>,
    rollback_to_sha256: Option<&str>,
) -> RemoteStep {
    let keep = vm.keep_releases;
    let mut lines = vec![
        "set -eu".to_string(),
        format!("cd {} 2>/dev/null || exit 0", quote(&install_dir(vm, ctx))),
    ];
    lines.extend(refuse_managed_links(vm, ctx));
    lines.extend([
        "current=$(cd current 2>/dev/null && pwd -P || true)".to_string(),
        "previous=$(sed -n 1p .slipway/previous 2>/dev/null || true)".to_string(),
        "if [ -n \"$previous\" ]; then".to_string(),
        "  previous=$(cd \"$previous\" 2>/dev/null && pwd -P || true)".to_string(),
        "fi".to_string(),
        format!("rollback_to={}", quote(rollback_to.unwrap_or(""))),
        format!(
            "rollback_archive={}",
            quote(&rollback_to_sha256.map_or(String::new(), |sha| format!("{sha}.tar.gz")))
        ),
        "if [ -d releases ]; then".to_string(),
        "  kept=0".to_string(),
        "  ls -t releases | while IFS= read -r name; do".to_string(),
        "    case \"$name\" in .*|*/*) continue ;; esac".to_string(),
        "    # Only real directories: a link is left alone, never followed.".to_string(),
        "    if [ -L \"releases/$name\" ] || [ ! -d \"releases/$name\" ]; then continue; fi".to_string(),
        "    kept=$((kept + 1))".to_string(),
        format!("    [ \"$kept\" -gt {keep} ] || continue"),
        "    [ \"$name\" != \"$rollback_to\" ] || continue".to_string(),
        "    real=$(cd \"releases/$name\" && pwd -P)".to_string(),
        "    if [ \"$real\" = \"$current\" ] || [ \"$real\" = \"$previous\" ]; then".to_string(),
        "      continue".to_string(),
        "    fi".to_string(),
        "    rm -rf \"releases/$name\"".to_string(),
        "    printf 'slipway: removed release %s\\n' \"$name\"".to_string(),
        "  done".to_string(),
        "  rm -rf releases/.tmp-*".to_string(),
        "fi".to_string(),
        "if [ -d .slipway/artifacts ]; then".to_string(),
        "  kept=0".to_string(),
        "  ls -t .slipway/artifacts | while IFS= read -r name; do".to_string(),
        "    [ -f \".slipway/artifacts/$name\" ] && [ ! -L \".slipway/artifacts/$name\" ] || continue".to_string(),
        "    kept=$((kept + 1))".to_string(),
        format!("    [ \"$kept\" -gt {keep} ] || continue"),
        "    [ \"$name\" != \"$rollback_archive\" ] || continue".to_string(),
        "    rm -f \".slipway/artifacts/$name\"".to_string(),
        "  done".to_string(),
        "fi".to_string(),
    ]);
    RemoteStep::new(Phase::Prune, "prune", lines)
}

/// The release pair a rollback puts back on a host: the pair it served
/// before the rollout moved it, as state records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollbackTarget {
    /// The release `current` points at again (`releases/VERSION`).
    pub version: String,
    /// Its artifact's sha256: the release marker is rewritten to name it.
    pub sha256: Option<String>,
    /// Its config files' snapshot (`.slipway/config/NAME`, see
    /// [`super::config_snapshot::snapshot_name`]).
    pub config_snapshot: String,
}

/// The first step of [`rollback`]: fail, changing nothing, unless the
/// release `target` names and (when the service has config files) its config
/// snapshot are on the host. `slipway rollback` runs it on every host before
/// it changes any.
pub fn rollback_check(vm: &VmSpec, ctx: &HostContext, target: &RollbackTarget) -> RemoteStep {
    let release = quote(&format!("releases/{}", target.version));
    let snapshot = quote(&format!(".slipway/config/{}", target.config_snapshot));
    let mut check = vec![
        "set -eu".to_string(),
        format!(
            "if ! cd {} 2>/dev/null || [ ! -f {release}/{COMPLETE} ]; then",
            quote(&install_dir(vm, ctx))
        ),
        format!(
            "  {}",
            complain(
                "release %s is not installed on this host: cannot roll back to it (nothing was changed)",
                &[&quote(&target.version)]
            )
        ),
        "  exit 1".to_string(),
        "fi".to_string(),
    ];
    if let Some(sha256) = &target.sha256 {
        // Another build of the version is installed (a rebuilt artifact):
        // the rollback puts this one back from its archive, which must be
        // here. A release an older slipway marked complete without a
        // digest cannot tell: it is trusted.
        let archive = quote(&artifact_upload_path(vm, ctx, sha256));
        check.extend([
            format!(
                "built=$(cat {release}/{COMPLETE})"
            ),
            format!(
                "if [ -n \"$built\" ] && [ \"$built\" != {} ] && ! {{ {}; }}; then",
                quote(sha256),
                holds_artifact(&archive, sha256)
            ),
            format!(
                "  {}",
                complain(
                    "release %s on this host is another build (sha256 %s) than the one to roll back to (%s), whose archive is gone: cannot roll back to it (nothing was changed)",
                    &[&quote(&target.version), "\"$built\"", &quote(sha256)]
                )
            ),
            "  exit 1".to_string(),
            "fi".to_string(),
        ]);
    }
    if !vm.config_files.is_empty() {
        check.extend([
            format!("if [ ! -f {snapshot}/manifest ]; then"),
            format!(
                "  {}",
                complain(
                    "no saved configuration for release %s on this host: cannot roll back to it without mixing versions (nothing was changed)",
                    &[&quote(&target.version)]
                )
            ),
            "  exit 1".to_string(),
            "fi".to_string(),
        ]);
    }
    RemoteStep::new(Phase::Rollback, "rollback.check", check)
}

/// Put a host back on the release pair `target` it served before the rollout
/// moved it, whichever apply moved it: check that the release and (when the
/// service has config files) its config snapshot are on the host — if not,
/// fail before changing anything —, stop what runs, point `current` at
/// `releases/VERSION` (atomic rename), put that release's config files back,
/// rewrite the release marker to name it (when its sha256 is known) and
/// start. Running it again changes nothing more. Without a target (nothing
/// ran there before the rollout) only the stop runs.
///
/// With a systemd unit, the unit file saved with the config snapshot is put
/// back too (and, with `systemd`, systemd reloaded) before the start.
///
/// `ctx.version` must be the target's version: the start and stop commands
/// see it as `SLIPWAY_VERSION`; `time` (RFC 3339) goes into the marker.
pub fn rollback(
    vm: &VmSpec,
    ctx: &HostContext,
    target: Option<&RollbackTarget>,
    time: &str,
    systemd: bool,
) -> Vec<RemoteStep> {
    let mut steps = Vec::new();
    let stop = stop_line(vm, ctx).map(|line| {
        RemoteStep::new(
            Phase::Rollback,
            "rollback.stop",
            when_installed(vm, ctx, line, "nothing is installed, nothing to stop"),
        )
    });
    let Some(target) = target else {
        steps.extend(stop);
        return steps;
    };
    let release = quote(&format!("releases/{}", target.version));
    steps.push(rollback_check(vm, ctx, target));
    steps.extend(stop);
    if let Some(sha256) = &target.sha256 {
        // Another build of the version is installed: put this one back from
        // its archive (the check above found it).
        let installed = quote(&under(
            &under(&install_dir(vm, ctx), "releases"),
            &target.version,
        ));
        let archive = quote(&artifact_upload_path(vm, ctx, sha256));
        let mut lines = vec![
            "set -eu".to_string(),
            format!("built=$(cat {installed}/{COMPLETE})"),
            format!(
                "if [ -n \"$built\" ] && [ \"$built\" != {} ]; then",
                quote(sha256)
            ),
        ];
        lines.extend(
            unpack_release(vm, ctx, &target.version, &archive, sha256)
                .into_iter()
                .map(|line| format!("  {line}")),
        );
        lines.push("fi".to_string());
        steps.push(RemoteStep::new(Phase::Rollback, "rollback.install", lines));
    }
    steps.push(RemoteStep::new(
        Phase::Rollback,
        "rollback.switch",
        vec![
            "set -eu".to_string(),
            format!("cd {}", quote(&install_dir(vm, ctx))),
            format!("ln -sfn {release} current.tmp"),
            "mv -T current.tmp current".to_string(),
            format!("printf 'slipway: current points at %s again\\n' {release}"),
        ],
    ));
    steps.push(super::config_snapshot::restore(
        vm,
        ctx,
        &target.config_snapshot,
    ));
    if let Some(unit) = &vm.systemd_unit {
        steps.push(super::config_snapshot::restore_systemd_unit(
            vm,
            unit,
            ctx,
            &target.config_snapshot,
            systemd,
        ));
    }
    if let Some(sha256) = &target.sha256 {
        let mut marker = write_release_marker(vm, ctx, sha256, time);
        marker.phase = Phase::Rollback;
        marker.name = "rollback.marker".into();
        steps.push(marker);
    }
    if let Some(line) = start_line(vm, ctx) {
        steps.push(RemoteStep::new(
            Phase::Rollback,
            "rollback.start",
            when_installed(vm, ctx, line, "nothing is installed, nothing to start"),
        ));
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::collections::BTreeMap;
    use std::path::{Path, PathBuf};
    use std::process::{Command, Output};

    use sha2::{Digest, Sha256};

    use crate::config::{Hook, NamedCommand};

    const SHA: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    const TIME: &str = "2026-01-02T03:04:05Z";

    fn named(name: &str, command: &str) -> NamedCommand {
        NamedCommand {
            name: name.into(),
            command: command.into(),
        }
    }

    fn hook(name: &str, when: &str, command: &str) -> Hook {
        Hook {
            name: name.into(),
            when: serde_json::from_value(serde_json::json!(when)).unwrap(),
            command: command.into(),
        }
    }

    fn health(name: &str, url: Option<&str>, command: Option<&str>) -> HealthCheck {
        HealthCheck {
            name: name.into(),
            url: url.map(Into::into),
            command: command.map(Into::into),
            expect_status: None,
            timeout: None,
            retries: None,
            interval: None,
        }
    }

    /// A service installed with systemd, as in `examples/vm-myapp`.
    fn systemd_vm() -> VmSpec {
        VmSpec {
            install_dir: "/opt/myapp".into(),
            run_as: Some("myapp".into()),
            keep_releases: 3,
            config_dirs: vec!["/etc/myapp".into()],
            start_command: None,
            stop_command: None,
            systemd_unit: Some(SystemdUnit {
                name: "myapp.service".into(),
                exec_start: "/opt/myapp/current/bin/start.sh".into(),
                exec_stop: None,
                user: None,
                environment: BTreeMap::from([("APP_ENV".into(), "production".into())]),
                restart: Some("on-failure".into()),
                after: vec!["network-online.target".into()],
            }),
            config_files: vec![ConfigFile {
                name: "app.properties".into(),
                destination: "/opt/myapp/config/app.properties".into(),
                content: "port=8080\ngreeting='hi'\n".into(),
                mode: Some("0600".into()),
                owner: None,
            }],
            prechecks: vec![named("java", "command -v java >/dev/null && java -version")],
            health: vec![
                health("http", Some("http://localhost:8080/health"), None),
                health("db", None, Some("curl -fsS localhost:8080/health/db")),
            ],
            smoke: vec![named(
                "status",
                "curl -fsS localhost:8080/api/v1/status | grep -q running",
            )],
            hooks: vec![
                hook(
                    "drain",
                    "before_stop",
                    "curl -fsS -X POST localhost:8080/admin/drain",
                ),
                hook("lb-out", "deregister", "echo out"),
                hook("lb-in", "register", "echo in"),
            ],
        }
    }

    /// A service with start and stop commands, as in `examples/quickstart`.
    fn command_vm() -> VmSpec {
        VmSpec {
            install_dir: "/opt/hello".into(),
            run_as: None,
            keep_releases: 2,
            config_dirs: vec![],
            start_command: Some("sh current/bin/start.sh config/hello.env".into()),
            stop_command: Some("sh current/bin/stop.sh".into()),
            systemd_unit: None,
            config_files: vec![ConfigFile {
                name: "hello.env".into(),
                destination: "/opt/hello/config/hello.env".into(),
                content: "BASE_PORT=18080\n".into(),
                mode: None,
                owner: None,
            }],
            prechecks: vec![],
            health: vec![health("http", None, Some("sh current/bin/check.sh"))],
            smoke: vec![],
            hooks: vec![hook(
                "hello",
                "after_start",
                "echo \"started $SLIPWAY_VERSION\"",
            )],
        }
    }

    fn ssh_ctx() -> HostContext {
        HostContext {
            host: "prod-vm-01.internal".into(),
            host_index: 0,
            host_root: "/".into(),
            environment: "production".into(),
            deployment: "myapp-prod".into(),
            version: "1.4.0".into(),
            apply_id: "apply-1".into(),
            sudo: true,
        }
    }

    fn local_ctx(root: &str) -> HostContext {
        HostContext {
            host: "host-1".into(),
            host_index: 1,
            host_root: root.into(),
            environment: "local".into(),
            deployment: "hello".into(),
            version: "1.0.0".into(),
            apply_id: "apply-1".into(),
            sudo: false,
        }
    }

    /// Every step of one host's update in apply's order, then prune and rollback.
    fn all_steps(vm: &VmSpec, ctx: &HostContext, systemd: bool) -> Vec<RemoteStep> {
        let mut steps = vec![check_connection(ctx), read_release_marker(vm, ctx)];
        steps.extend(prechecks(vm, ctx));
        steps.extend(hooks(vm, ctx, Phase::BeforeStop));
        steps.extend(hooks(vm, ctx, Phase::Deregister));
        steps.extend(stop(vm, ctx));
        steps.push(artifact_status(vm, ctx, SHA));
        steps.push(verify_artifact(vm, ctx, SHA));
        steps.push(install_release(vm, ctx, SHA));
        steps.extend(config_files(vm, ctx));
        if let Some(unit) = &vm.systemd_unit {
            let text = crate::plan::render::systemd_unit_text(vm, unit, &ctx.deployment);
            steps.push(install_systemd_unit(vm, unit, ctx, &text, systemd));
        }
        steps.push(switch_current(vm, ctx));
        steps.extend(start(vm, ctx));
        steps.extend(hooks(vm, ctx, Phase::AfterStart));
        steps.extend(
            vm.health
                .iter()
                .map(|check| health_check(check, vm, ctx, None)),
        );
        steps.extend(smoke(vm, ctx));
        steps.extend(hooks(vm, ctx, Phase::Register));
        steps.push(write_release_marker(vm, ctx, SHA, TIME));
        steps.push(prune_releases(
            vm,
            ctx,
            Some("0.9.0 $(touch PWNED)"),
            Some(SHA),
        ));
        let target = RollbackTarget {
            version: "0.9.0 $(touch PWNED)".into(),
            sha256: Some(SHA.into()),
            config_snapshot: "0.9.0 $(touch PWNED)+ab".into(),
        };
        steps.extend(rollback(vm, ctx, Some(&target), TIME, true));
        steps
    }

    fn script_step(name: &str, lines: &[&str]) -> RemoteStep {
        RemoteStep::new(
            Phase::Install,
            name,
            lines.iter().map(|l| l.to_string()).collect(),
        )
    }

    #[test]
    fn a_chain_is_its_steps_in_subshells_with_a_check_after_each() {
        let one = script_step("one", &["set -eu", "echo one"]);
        assert_eq!(chain(&[]), None);
        assert_eq!(chain(std::slice::from_ref(&one)), Some(one.clone()));
        let chained = chain(&[one, script_step("it's two", &["echo two"])]).unwrap();
        assert_eq!(chained.name, "one, it's two");
        assert_eq!(chained.phase, Phase::Install);
        insta::assert_snapshot!(chained.script, @r#"
        printf '%s\n' 'slipway-step: one' >&2
        (
        set -eu
        echo one
        )
        status=$?
        if [ "$status" -ne 0 ]; then printf '%s\n' 'slipway-failed-step: one' >&2; exit "$status"; fi
        printf '%s\n' 'slipway-step: it'\''s two' >&2
        (
        echo two
        )
        status=$?
        if [ "$status" -ne 0 ]; then printf '%s\n' 'slipway-failed-step: it'\''s two' >&2; exit "$status"; fi
        "#);
    }

    #[test]
    fn a_chain_stops_at_the_first_failed_step_and_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        let log = quote(log.to_str().unwrap());
        let chained = chain(&[
            // `cd` and variables stay inside their step.
            script_step(
                "first",
                &["set -eu", "cd /", "x=1", &format!("echo first >> {log}")],
            ),
            // `set -e` holds inside a step of a chain: `false` ends it.
            script_step(
                "second; touch PWNED",
                &[
                    "set -eu",
                    "[ -z \"${x:-}\" ]",
                    &format!("echo second >> {log}"),
                    "echo broke >&2",
                    "false",
                    &format!("echo after-false >> {log}"),
                ],
            ),
            script_step("third", &[&format!("echo third >> {log}")]),
        ])
        .unwrap();
        let output = Command::new("/bin/sh")
            .arg("-c")
            .arg(&chained.script)
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1));
        assert_eq!(
            std::fs::read_to_string(dir.path().join("log")).unwrap(),
            "first\nsecond\n"
        );
        assert!(!dir.path().join("PWNED").exists());
        let stderr = String::from_utf8(output.stderr).unwrap();
        let (step, rest) = failed_step(&stderr).expect(&stderr);
        assert_eq!(step, "second; touch PWNED");
        assert_eq!(rest, "broke");
        assert_eq!(failed_step("plain failure\n"), None);
    }

    fn transcript(steps: &[RemoteStep]) -> String {
        steps
            .iter()
            .map(|step| format!("# {} {}\n{}\n", step.phase, step.name, step.script))
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn exact_text_over_ssh() {
        let text = transcript(&all_steps(&systemd_vm(), &ssh_ctx(), true));
        insta::assert_snapshot!(text, @r#"
        # connect connect
        set -eu
        id -un
        for tool in tar gzip sha256sum readlink cmp; do
          if ! command -v "$tool" >/dev/null 2>&1; then
            printf 'slipway: %s is not installed on this host\n' "$tool" >&2
            exit 1
          fi
        done
        if ! sudo -n true; then
          printf 'slipway: sudo -n true failed: vm_hosts.sudo needs sudo without a password\n' >&2
          exit 1
        fi

        # marker marker.read
        set -eu
        if [ -f /opt/myapp/.slipway/release.json ]; then
          cat /opt/myapp/.slipway/release.json
        fi

        # precheck precheck.java
        mkdir -p /opt/myapp && cd /opt/myapp && env SLIPWAY_HOST=prod-vm-01.internal SLIPWAY_HOST_INDEX=0 SLIPWAY_INSTALL_DIR=/opt/myapp SLIPWAY_HOST_ROOT=/ SLIPWAY_VERSION=1.4.0 SLIPWAY_ENVIRONMENT=production SLIPWAY_DEPLOYMENT=myapp-prod /bin/sh -c 'command -v java >/dev/null && java -version'

        # before_stop hook.drain
        mkdir -p /opt/myapp && cd /opt/myapp && env SLIPWAY_HOST=prod-vm-01.internal SLIPWAY_HOST_INDEX=0 SLIPWAY_INSTALL_DIR=/opt/myapp SLIPWAY_HOST_ROOT=/ SLIPWAY_VERSION=1.4.0 SLIPWAY_ENVIRONMENT=production SLIPWAY_DEPLOYMENT=myapp-prod /bin/sh -c 'curl -fsS -X POST localhost:8080/admin/drain'

        # deregister hook.lb-out
        mkdir -p /opt/myapp && cd /opt/myapp && env SLIPWAY_HOST=prod-vm-01.internal SLIPWAY_HOST_INDEX=0 SLIPWAY_INSTALL_DIR=/opt/myapp SLIPWAY_HOST_ROOT=/ SLIPWAY_VERSION=1.4.0 SLIPWAY_ENVIRONMENT=production SLIPWAY_DEPLOYMENT=myapp-prod /bin/sh -c 'echo out'

        # stop stop
        set -eu
        if [ -L /opt/myapp/current ] || [ -e /opt/myapp/current ]; then
          sudo -n systemctl stop myapp.service || { status=$?; if [ ! -f /opt/myapp/current/.slipway-complete ]; then printf 'slipway: current points at %s, which slipway did not install (it has no %s): stop what it runs by hand, then point current at an installed release or remove it\n' "$(readlink /opt/myapp/current || echo /opt/myapp/current)" .slipway-complete >&2; fi; exit $status; }
        else
          echo 'slipway: nothing is installed yet, nothing to stop'
        fi

        # transfer artifact.status
        set -eu
        if [ -f /opt/myapp/.slipway/artifacts/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.tar.gz ] && [ "$(sha256sum < /opt/myapp/.slipway/artifacts/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.tar.gz | cut -c 1-64)" = 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef ]; then
          echo 'slipway-artifact: present'
        fi

        # transfer artifact.verify
        set -eu
        if [ ! -f /opt/myapp/.slipway/artifacts/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.tar.gz ]; then
          printf 'slipway: artifact %s is missing\n' /opt/myapp/.slipway/artifacts/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.tar.gz >&2
          exit 1
        fi
        actual=$(sha256sum < /opt/myapp/.slipway/artifacts/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.tar.gz | cut -c 1-64)
        if [ "$actual" != 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef ]; then
          printf 'slipway: artifact %s has sha256 %s, expected %s\n' /opt/myapp/.slipway/artifacts/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.tar.gz "$actual" 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef >&2
          exit 1
        fi

        # install install
        set -eu
        for managed in /opt/myapp/.slipway /opt/myapp/.slipway/artifacts /opt/myapp/.slipway/config /opt/myapp/releases; do
          if [ -L "$managed" ]; then
            printf 'slipway: %s is a symbolic link; slipway does not write or delete through one\n' "$managed" >&2
            exit 1
          fi
        done
        if [ ! -L /opt/myapp/releases/1.4.0 ] && [ "$(cat /opt/myapp/releases/1.4.0/.slipway-complete 2>/dev/null)" = 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef ]; then
          printf 'slipway: %s is already installed\n' /opt/myapp/releases/1.4.0
          exit 0
        fi
        rm -rf /opt/myapp/releases/.tmp-1.4.0
        mkdir -p /opt/myapp/releases/.tmp-1.4.0
        tar -xzf /opt/myapp/.slipway/artifacts/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.tar.gz --no-same-owner -C /opt/myapp/releases/.tmp-1.4.0
        printf '%s\n' 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef > /opt/myapp/releases/.tmp-1.4.0/.slipway-complete
        touch /opt/myapp/releases/.tmp-1.4.0
        sudo -n chown -R myapp /opt/myapp/releases/.tmp-1.4.0
        rm -rf /opt/myapp/releases/1.4.0
        mv /opt/myapp/releases/.tmp-1.4.0 /opt/myapp/releases/1.4.0

        # configure config_file.app.properties
        set -eu
        inside() { [ "$2" = / ] && return 0; case "$1/" in "$2"/*) return 0 ;; esac; return 1; }
        mkdir -p /opt/myapp
        real_base=$(cd /opt/myapp && pwd -P)
        dir=/opt/myapp
        dir="$dir"/config
        [ -d "$dir" ] || mkdir "$dir"
        if ! inside "$(cd "$dir" && pwd -P)" "$real_base"; then
          printf 'slipway: %s leads outside %s (a symbolic link?); not writing through it\n' "$dir" /opt/myapp >&2
          exit 1
        fi
        umask 077
        tmp=$(mktemp "$dir"/.app.properties.slipway-XXXXXX)
        trap 'rm -f "$tmp"' EXIT
        printf %s 'port=8080
        greeting='\''hi'\''
        ' > "$tmp"
        chmod 0600 "$tmp"
        sudo -n chown myapp "$tmp"
        mv -fT "$tmp" "$dir"/app.properties
        trap - EXIT

        # unit systemd_unit.myapp.service
        set -eu
        for managed in /opt/myapp/.slipway /opt/myapp/.slipway/artifacts /opt/myapp/.slipway/config /opt/myapp/releases; do
          if [ -L "$managed" ]; then
            printf 'slipway: %s is a symbolic link; slipway does not write or delete through one\n' "$managed" >&2
            exit 1
          fi
        done
        inside() { [ "$2" = / ] && return 0; case "$1/" in "$2"/*) return 0 ;; esac; return 1; }
        mkdir -p /opt/myapp/.slipway
        umask 077
        staged=$(mktemp /opt/myapp/.slipway/.myapp.service.unit.XXXXXX)
        tmp=
        trap 'rm -f "$staged"; [ -z "$tmp" ] || sudo -n rm -f "$tmp"' EXIT
        printf %s '[Unit]
        Description=myapp-prod (managed by slipway)
        After=network-online.target

        [Service]
        User=myapp
        WorkingDirectory=/opt/myapp/current
        Environment="APP_ENV=production"
        ExecStart=/opt/myapp/current/bin/start.sh
        Restart=on-failure

        [Install]
        WantedBy=multi-user.target
        ' > "$staged"
        if [ ! -L /etc/systemd/system/myapp.service ] && cmp -s "$staged" /etc/systemd/system/myapp.service; then
          printf 'slipway: %s is unchanged\n' /etc/systemd/system/myapp.service
          exit 0
        fi
        umask 022
        sudo -n mkdir -p /etc/systemd/system
        if ! inside "$(cd /etc/systemd/system && pwd -P)" "$(cd / && pwd -P)"; then
          printf 'slipway: %s leads outside %s (a symbolic link?); not writing through it\n' /etc/systemd/system / >&2
          exit 1
        fi
        tmp=$(sudo -n mktemp /etc/systemd/system/.myapp.service.slipway-XXXXXX)
        sudo -n cp "$staged" "$tmp"
        sudo -n chmod 0644 "$tmp"
        sudo -n mv -fT "$tmp" /etc/systemd/system/myapp.service
        tmp=
        sudo -n systemctl daemon-reload

        # switch switch
        set -eu
        for managed in /opt/myapp/.slipway /opt/myapp/.slipway/artifacts /opt/myapp/.slipway/config /opt/myapp/releases; do
          if [ -L "$managed" ]; then
            printf 'slipway: %s is a symbolic link; slipway does not write or delete through one\n' "$managed" >&2
            exit 1
          fi
        done
        if [ -L /opt/myapp/releases/1.4.0 ] || [ ! -f /opt/myapp/releases/1.4.0/.slipway-complete ]; then
          printf 'slipway: release %s is not installed\n' /opt/myapp/releases/1.4.0 >&2
          exit 1
        fi
        cd /opt/myapp
        mkdir -p .slipway
        if [ "$(sed -n 2p .slipway/previous 2>/dev/null)" != apply-1 ] && [ "$(readlink current 2>/dev/null || true)" != releases/1.4.0 ]; then
          tmp=$(mktemp .slipway/.previous.XXXXXX)
          printf '%s\n%s\n' "$(readlink current 2>/dev/null || true)" apply-1 > "$tmp"
          mv -fT "$tmp" .slipway/previous
        fi
        ln -sfn releases/1.4.0 current.tmp
        mv -T current.tmp current

        # start start
        sudo -n systemctl start myapp.service

        # health health.http
        if ! command -v timeout >/dev/null 2>&1; then
          printf 'slipway: timeout (coreutils) is not installed on this host; health checks need it\n' >&2
          exit 1
        fi
        work=$(mktemp -d)
        trap 'rm -rf "$work"' EXIT
        attempt() {
          if command -v curl >/dev/null 2>&1; then
            code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 10 --url http://localhost:8080/health 2>"$work/err")
          elif command -v wget >/dev/null 2>&1; then
            timeout -k 2 10 wget -S -O /dev/null -- http://localhost:8080/health 2>"$work/err"
            code=$(sed -n 's/^ *HTTP\/[0-9.]* \([0-9][0-9][0-9]\).*/\1/p' "$work/err" | tail -n 1)
          else
            out='slipway: neither curl nor wget is installed on this host; a health check with url needs one (or check with command)'; status=1; return
          fi
          if [ "$code" = 200 ]; then out=; status=0
          elif [ -n "$code" ] && [ "$code" != 000 ]; then out="slipway: answered with HTTP status $code, expected 200"; status=1
          else out=$(tail -n 5 "$work/err"); status=1; fi
        }
        tries=0
        while :; do
          tries=$((tries + 1))
          attempt
          [ "$status" -eq 0 ] && exit 0
          if [ "$status" -eq 124 ]; then
            out="$out${out:+
        }slipway: no answer within 10s"
          fi
          if [ "$tries" -gt 3 ]; then
            printf '%s\n' "$out" >&2
            exit "$status"
          fi
          sleep 5
        done

        # health health.db
        if ! command -v timeout >/dev/null 2>&1; then
          printf 'slipway: timeout (coreutils) is not installed on this host; health checks need it\n' >&2
          exit 1
        fi
        attempt() { out=$(timeout -k 2 10 /bin/sh -c 'cd /opt/myapp && env SLIPWAY_HOST=prod-vm-01.internal SLIPWAY_HOST_INDEX=0 SLIPWAY_INSTALL_DIR=/opt/myapp SLIPWAY_HOST_ROOT=/ SLIPWAY_VERSION=1.4.0 SLIPWAY_ENVIRONMENT=production SLIPWAY_DEPLOYMENT=myapp-prod /bin/sh -c '\''curl -fsS localhost:8080/health/db'\''' 2>&1); status=$?; }
        tries=0
        while :; do
          tries=$((tries + 1))
          attempt
          [ "$status" -eq 0 ] && exit 0
          if [ "$status" -eq 124 ]; then
            out="$out${out:+
        }slipway: no answer within 10s"
          fi
          if [ "$tries" -gt 3 ]; then
            printf '%s\n' "$out" >&2
            exit "$status"
          fi
          sleep 5
        done

        # smoke smoke.status
        cd /opt/myapp && env SLIPWAY_HOST=prod-vm-01.internal SLIPWAY_HOST_INDEX=0 SLIPWAY_INSTALL_DIR=/opt/myapp SLIPWAY_HOST_ROOT=/ SLIPWAY_VERSION=1.4.0 SLIPWAY_ENVIRONMENT=production SLIPWAY_DEPLOYMENT=myapp-prod /bin/sh -c 'curl -fsS localhost:8080/api/v1/status | grep -q running'

        # register hook.lb-in
        cd /opt/myapp && env SLIPWAY_HOST=prod-vm-01.internal SLIPWAY_HOST_INDEX=0 SLIPWAY_INSTALL_DIR=/opt/myapp SLIPWAY_HOST_ROOT=/ SLIPWAY_VERSION=1.4.0 SLIPWAY_ENVIRONMENT=production SLIPWAY_DEPLOYMENT=myapp-prod /bin/sh -c 'echo in'

        # marker marker.write
        set -eu
        for managed in /opt/myapp/.slipway /opt/myapp/.slipway/artifacts /opt/myapp/.slipway/config /opt/myapp/releases; do
          if [ -L "$managed" ]; then
            printf 'slipway: %s is a symbolic link; slipway does not write or delete through one\n' "$managed" >&2
            exit 1
          fi
        done
        mkdir -p /opt/myapp/.slipway
        tmp=$(mktemp /opt/myapp/.slipway/.release.json.XXXXXX)
        printf '%s\n' '{"version":"1.4.0","sha256":"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef","time":"2026-01-02T03:04:05Z","apply_id":"apply-1"}' > "$tmp"
        mv -fT "$tmp" /opt/myapp/.slipway/release.json

        # prune prune
        set -eu
        cd /opt/myapp 2>/dev/null || exit 0
        for managed in /opt/myapp/.slipway /opt/myapp/.slipway/artifacts /opt/myapp/.slipway/config /opt/myapp/releases; do
          if [ -L "$managed" ]; then
            printf 'slipway: %s is a symbolic link; slipway does not write or delete through one\n' "$managed" >&2
            exit 1
          fi
        done
        current=$(cd current 2>/dev/null && pwd -P || true)
        previous=$(sed -n 1p .slipway/previous 2>/dev/null || true)
        if [ -n "$previous" ]; then
          previous=$(cd "$previous" 2>/dev/null && pwd -P || true)
        fi
        rollback_to='0.9.0 $(touch PWNED)'
        rollback_archive=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.tar.gz
        if [ -d releases ]; then
          kept=0
          ls -t releases | while IFS= read -r name; do
            case "$name" in .*|*/*) continue ;; esac
            # Only real directories: a link is left alone, never followed.
            if [ -L "releases/$name" ] || [ ! -d "releases/$name" ]; then continue; fi
            kept=$((kept + 1))
            [ "$kept" -gt 3 ] || continue
            [ "$name" != "$rollback_to" ] || continue
            real=$(cd "releases/$name" && pwd -P)
            if [ "$real" = "$current" ] || [ "$real" = "$previous" ]; then
              continue
            fi
            rm -rf "releases/$name"
            printf 'slipway: removed release %s\n' "$name"
          done
          rm -rf releases/.tmp-*
        fi
        if [ -d .slipway/artifacts ]; then
          kept=0
          ls -t .slipway/artifacts | while IFS= read -r name; do
            [ -f ".slipway/artifacts/$name" ] && [ ! -L ".slipway/artifacts/$name" ] || continue
            kept=$((kept + 1))
            [ "$kept" -gt 3 ] || continue
            [ "$name" != "$rollback_archive" ] || continue
            rm -f ".slipway/artifacts/$name"
          done
        fi

        # rollback rollback.check
        set -eu
        if ! cd /opt/myapp 2>/dev/null || [ ! -f 'releases/0.9.0 $(touch PWNED)'/.slipway-complete ]; then
          printf 'slipway: release %s is not installed on this host: cannot roll back to it (nothing was changed)\n' '0.9.0 $(touch PWNED)' >&2
          exit 1
        fi
        built=$(cat 'releases/0.9.0 $(touch PWNED)'/.slipway-complete)
        if [ -n "$built" ] && [ "$built" != 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef ] && ! { [ -f /opt/myapp/.slipway/artifacts/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.tar.gz ] && [ "$(sha256sum < /opt/myapp/.slipway/artifacts/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.tar.gz | cut -c 1-64)" = 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef ]; }; then
          printf 'slipway: release %s on this host is another build (sha256 %s) than the one to roll back to (%s), whose archive is gone: cannot roll back to it (nothing was changed)\n' '0.9.0 $(touch PWNED)' "$built" 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef >&2
          exit 1
        fi
        if [ ! -f '.slipway/config/0.9.0 $(touch PWNED)+ab'/manifest ]; then
          printf 'slipway: no saved configuration for release %s on this host: cannot roll back to it without mixing versions (nothing was changed)\n' '0.9.0 $(touch PWNED)' >&2
          exit 1
        fi

        # rollback rollback.stop
        set -eu
        if [ -L /opt/myapp/current ] || [ -e /opt/myapp/current ]; then
          sudo -n systemctl stop myapp.service || { status=$?; if [ ! -f /opt/myapp/current/.slipway-complete ]; then printf 'slipway: current points at %s, which slipway did not install (it has no %s): stop what it runs by hand, then point current at an installed release or remove it\n' "$(readlink /opt/myapp/current || echo /opt/myapp/current)" .slipway-complete >&2; fi; exit $status; }
        else
          echo 'slipway: nothing is installed, nothing to stop'
        fi

        # rollback rollback.install
        set -eu
        built=$(cat '/opt/myapp/releases/0.9.0 $(touch PWNED)'/.slipway-complete)
        if [ -n "$built" ] && [ "$built" != 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef ]; then
          rm -rf '/opt/myapp/releases/.tmp-0.9.0 $(touch PWNED)'
          mkdir -p '/opt/myapp/releases/.tmp-0.9.0 $(touch PWNED)'
          tar -xzf /opt/myapp/.slipway/artifacts/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.tar.gz --no-same-owner -C '/opt/myapp/releases/.tmp-0.9.0 $(touch PWNED)'
          printf '%s\n' 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef > '/opt/myapp/releases/.tmp-0.9.0 $(touch PWNED)'/.slipway-complete
          touch '/opt/myapp/releases/.tmp-0.9.0 $(touch PWNED)'
          sudo -n chown -R myapp '/opt/myapp/releases/.tmp-0.9.0 $(touch PWNED)'
          rm -rf '/opt/myapp/releases/0.9.0 $(touch PWNED)'
          mv '/opt/myapp/releases/.tmp-0.9.0 $(touch PWNED)' '/opt/myapp/releases/0.9.0 $(touch PWNED)'
        fi

        # rollback rollback.switch
        set -eu
        cd /opt/myapp
        ln -sfn 'releases/0.9.0 $(touch PWNED)' current.tmp
        mv -T current.tmp current
        printf 'slipway: current points at %s again\n' 'releases/0.9.0 $(touch PWNED)'

        # rollback rollback.config
        set -eu
        for managed in /opt/myapp/.slipway /opt/myapp/.slipway/artifacts /opt/myapp/.slipway/config /opt/myapp/releases; do
          if [ -L "$managed" ]; then
            printf 'slipway: %s is a symbolic link; slipway does not write or delete through one\n' "$managed" >&2
            exit 1
          fi
        done
        inside() { [ "$2" = / ] && return 0; case "$1/" in "$2"/*) return 0 ;; esac; return 1; }
        allowed() { for base in /opt/myapp /etc/myapp; do real=$(cd "$base" 2>/dev/null && pwd -P) || continue; inside "$1" "$real" && return 0; done; return 1; }
        snapshot='/opt/myapp/.slipway/config/0.9.0 $(touch PWNED)+ab'
        if [ ! -f "$snapshot/manifest" ]; then
          printf 'slipway: no saved configuration for %s, config files left as they are\n' '0.9.0 $(touch PWNED)+ab'
          exit 0
        fi
        i=0
        while IFS= read -r destination; do
          i=$((i + 1))
          dir=$(dirname "$destination")
          if ! allowed "$(cd "$dir" 2>/dev/null && pwd -P)"; then
            printf 'slipway: %s is outside the service'\''s directories; not restoring it\n' "$destination" >&2
            exit 1
          fi
          tmp=$(mktemp "$dir/.slipway-restore-XXXXXX")
          cp -p "$snapshot/$i" "$tmp"
          mv -fT "$tmp" "$destination"
        done < "$snapshot/manifest"

        # rollback rollback.systemd_unit
        set -eu
        for managed in /opt/myapp/.slipway /opt/myapp/.slipway/artifacts /opt/myapp/.slipway/config /opt/myapp/releases; do
          if [ -L "$managed" ]; then
            printf 'slipway: %s is a symbolic link; slipway does not write or delete through one\n' "$managed" >&2
            exit 1
          fi
        done
        inside() { [ "$2" = / ] && return 0; case "$1/" in "$2"/*) return 0 ;; esac; return 1; }
        mkdir -p /opt/myapp/.slipway
        umask 077
        staged=$(mktemp /opt/myapp/.slipway/.myapp.service.unit.XXXXXX)
        tmp=
        trap 'rm -f "$staged"; [ -z "$tmp" ] || sudo -n rm -f "$tmp"' EXIT
        if [ ! -f '/opt/myapp/.slipway/config/0.9.0 $(touch PWNED)+ab/systemd.unit' ]; then
          printf 'slipway: no saved systemd unit for %s, %s left as it is\n' '0.9.0 $(touch PWNED)+ab' myapp.service
          exit 0
        fi
        cp '/opt/myapp/.slipway/config/0.9.0 $(touch PWNED)+ab/systemd.unit' "$staged"
        if [ ! -L /etc/systemd/system/myapp.service ] && cmp -s "$staged" /etc/systemd/system/myapp.service; then
          printf 'slipway: %s is unchanged\n' /etc/systemd/system/myapp.service
          exit 0
        fi
        umask 022
        sudo -n mkdir -p /etc/systemd/system
        if ! inside "$(cd /etc/systemd/system && pwd -P)" "$(cd / && pwd -P)"; then
          printf 'slipway: %s leads outside %s (a symbolic link?); not writing through it\n' /etc/systemd/system / >&2
          exit 1
        fi
        tmp=$(sudo -n mktemp /etc/systemd/system/.myapp.service.slipway-XXXXXX)
        sudo -n cp "$staged" "$tmp"
        sudo -n chmod 0644 "$tmp"
        sudo -n mv -fT "$tmp" /etc/systemd/system/myapp.service
        tmp=
        sudo -n systemctl daemon-reload

        # rollback rollback.marker
        set -eu
        for managed in /opt/myapp/.slipway /opt/myapp/.slipway/artifacts /opt/myapp/.slipway/config /opt/myapp/releases; do
          if [ -L "$managed" ]; then
            printf 'slipway: %s is a symbolic link; slipway does not write or delete through one\n' "$managed" >&2
            exit 1
          fi
        done
        mkdir -p /opt/myapp/.slipway
        tmp=$(mktemp /opt/myapp/.slipway/.release.json.XXXXXX)
        printf '%s\n' '{"version":"1.4.0","sha256":"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef","time":"2026-01-02T03:04:05Z","apply_id":"apply-1"}' > "$tmp"
        mv -fT "$tmp" /opt/myapp/.slipway/release.json

        # rollback rollback.start
        set -eu
        if [ -L /opt/myapp/current ] || [ -e /opt/myapp/current ]; then
          sudo -n systemctl start myapp.service
        else
          echo 'slipway: nothing is installed, nothing to start'
        fi
        "#);
    }

    #[test]
    fn exact_text_with_the_local_transport() {
        let text = transcript(&all_steps(
            &command_vm(),
            &local_ctx("/tmp/x/host-1"),
            false,
        ));
        insta::assert_snapshot!(text, @r#"
        # connect connect
        set -eu
        id -un
        for tool in tar gzip sha256sum readlink cmp; do
          if ! command -v "$tool" >/dev/null 2>&1; then
            printf 'slipway: %s is not installed on this host\n' "$tool" >&2
            exit 1
          fi
        done

        # marker marker.read
        set -eu
        if [ -f /tmp/x/host-1/opt/hello/.slipway/release.json ]; then
          cat /tmp/x/host-1/opt/hello/.slipway/release.json
        fi

        # stop stop
        set -eu
        if [ -L /tmp/x/host-1/opt/hello/current ] || [ -e /tmp/x/host-1/opt/hello/current ]; then
          cd /tmp/x/host-1/opt/hello && env SLIPWAY_HOST=host-1 SLIPWAY_HOST_INDEX=1 SLIPWAY_INSTALL_DIR=/tmp/x/host-1/opt/hello SLIPWAY_HOST_ROOT=/tmp/x/host-1 SLIPWAY_VERSION=1.0.0 SLIPWAY_ENVIRONMENT=local SLIPWAY_DEPLOYMENT=hello /bin/sh -c 'sh current/bin/stop.sh' || { status=$?; if [ ! -f /tmp/x/host-1/opt/hello/current/.slipway-complete ]; then printf 'slipway: current points at %s, which slipway did not install (it has no %s): stop what it runs by hand, then point current at an installed release or remove it\n' "$(readlink /tmp/x/host-1/opt/hello/current || echo /tmp/x/host-1/opt/hello/current)" .slipway-complete >&2; fi; exit $status; }
        else
          echo 'slipway: nothing is installed yet, nothing to stop'
        fi

        # transfer artifact.status
        set -eu
        if [ -f /tmp/x/host-1/opt/hello/.slipway/artifacts/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.tar.gz ] && [ "$(sha256sum < /tmp/x/host-1/opt/hello/.slipway/artifacts/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.tar.gz | cut -c 1-64)" = 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef ]; then
          echo 'slipway-artifact: present'
        fi

        # transfer artifact.verify
        set -eu
        if [ ! -f /tmp/x/host-1/opt/hello/.slipway/artifacts/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.tar.gz ]; then
          printf 'slipway: artifact %s is missing\n' /tmp/x/host-1/opt/hello/.slipway/artifacts/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.tar.gz >&2
          exit 1
        fi
        actual=$(sha256sum < /tmp/x/host-1/opt/hello/.slipway/artifacts/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.tar.gz | cut -c 1-64)
        if [ "$actual" != 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef ]; then
          printf 'slipway: artifact %s has sha256 %s, expected %s\n' /tmp/x/host-1/opt/hello/.slipway/artifacts/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.tar.gz "$actual" 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef >&2
          exit 1
        fi

        # install install
        set -eu
        for managed in /tmp/x/host-1/opt/hello/.slipway /tmp/x/host-1/opt/hello/.slipway/artifacts /tmp/x/host-1/opt/hello/.slipway/config /tmp/x/host-1/opt/hello/releases; do
          if [ -L "$managed" ]; then
            printf 'slipway: %s is a symbolic link; slipway does not write or delete through one\n' "$managed" >&2
            exit 1
          fi
        done
        if [ ! -L /tmp/x/host-1/opt/hello/releases/1.0.0 ] && [ "$(cat /tmp/x/host-1/opt/hello/releases/1.0.0/.slipway-complete 2>/dev/null)" = 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef ]; then
          printf 'slipway: %s is already installed\n' /tmp/x/host-1/opt/hello/releases/1.0.0
          exit 0
        fi
        rm -rf /tmp/x/host-1/opt/hello/releases/.tmp-1.0.0
        mkdir -p /tmp/x/host-1/opt/hello/releases/.tmp-1.0.0
        tar -xzf /tmp/x/host-1/opt/hello/.slipway/artifacts/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.tar.gz --no-same-owner -C /tmp/x/host-1/opt/hello/releases/.tmp-1.0.0
        printf '%s\n' 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef > /tmp/x/host-1/opt/hello/releases/.tmp-1.0.0/.slipway-complete
        touch /tmp/x/host-1/opt/hello/releases/.tmp-1.0.0
        rm -rf /tmp/x/host-1/opt/hello/releases/1.0.0
        mv /tmp/x/host-1/opt/hello/releases/.tmp-1.0.0 /tmp/x/host-1/opt/hello/releases/1.0.0

        # configure config_file.hello.env
        set -eu
        inside() { [ "$2" = / ] && return 0; case "$1/" in "$2"/*) return 0 ;; esac; return 1; }
        mkdir -p /tmp/x/host-1/opt/hello
        real_base=$(cd /tmp/x/host-1/opt/hello && pwd -P)
        dir=/tmp/x/host-1/opt/hello
        dir="$dir"/config
        [ -d "$dir" ] || mkdir "$dir"
        if ! inside "$(cd "$dir" && pwd -P)" "$real_base"; then
          printf 'slipway: %s leads outside %s (a symbolic link?); not writing through it\n' "$dir" /tmp/x/host-1/opt/hello >&2
          exit 1
        fi
        umask 077
        tmp=$(mktemp "$dir"/.hello.env.slipway-XXXXXX)
        trap 'rm -f "$tmp"' EXIT
        printf %s 'BASE_PORT=18080
        ' > "$tmp"
        chmod 0644 "$tmp"
        mv -fT "$tmp" "$dir"/hello.env
        trap - EXIT

        # switch switch
        set -eu
        for managed in /tmp/x/host-1/opt/hello/.slipway /tmp/x/host-1/opt/hello/.slipway/artifacts /tmp/x/host-1/opt/hello/.slipway/config /tmp/x/host-1/opt/hello/releases; do
          if [ -L "$managed" ]; then
            printf 'slipway: %s is a symbolic link; slipway does not write or delete through one\n' "$managed" >&2
            exit 1
          fi
        done
        if [ -L /tmp/x/host-1/opt/hello/releases/1.0.0 ] || [ ! -f /tmp/x/host-1/opt/hello/releases/1.0.0/.slipway-complete ]; then
          printf 'slipway: release %s is not installed\n' /tmp/x/host-1/opt/hello/releases/1.0.0 >&2
          exit 1
        fi
        cd /tmp/x/host-1/opt/hello
        mkdir -p .slipway
        if [ "$(sed -n 2p .slipway/previous 2>/dev/null)" != apply-1 ] && [ "$(readlink current 2>/dev/null || true)" != releases/1.0.0 ]; then
          tmp=$(mktemp .slipway/.previous.XXXXXX)
          printf '%s\n%s\n' "$(readlink current 2>/dev/null || true)" apply-1 > "$tmp"
          mv -fT "$tmp" .slipway/previous
        fi
        ln -sfn releases/1.0.0 current.tmp
        mv -T current.tmp current

        # start start
        cd /tmp/x/host-1/opt/hello && env SLIPWAY_HOST=host-1 SLIPWAY_HOST_INDEX=1 SLIPWAY_INSTALL_DIR=/tmp/x/host-1/opt/hello SLIPWAY_HOST_ROOT=/tmp/x/host-1 SLIPWAY_VERSION=1.0.0 SLIPWAY_ENVIRONMENT=local SLIPWAY_DEPLOYMENT=hello /bin/sh -c 'sh current/bin/start.sh config/hello.env'

        # after_start hook.hello
        cd /tmp/x/host-1/opt/hello && env SLIPWAY_HOST=host-1 SLIPWAY_HOST_INDEX=1 SLIPWAY_INSTALL_DIR=/tmp/x/host-1/opt/hello SLIPWAY_HOST_ROOT=/tmp/x/host-1 SLIPWAY_VERSION=1.0.0 SLIPWAY_ENVIRONMENT=local SLIPWAY_DEPLOYMENT=hello /bin/sh -c 'echo "started $SLIPWAY_VERSION"'

        # health health.http
        if ! command -v timeout >/dev/null 2>&1; then
          printf 'slipway: timeout (coreutils) is not installed on this host; health checks need it\n' >&2
          exit 1
        fi
        attempt() { out=$(timeout -k 2 10 /bin/sh -c 'cd /tmp/x/host-1/opt/hello && env SLIPWAY_HOST=host-1 SLIPWAY_HOST_INDEX=1 SLIPWAY_INSTALL_DIR=/tmp/x/host-1/opt/hello SLIPWAY_HOST_ROOT=/tmp/x/host-1 SLIPWAY_VERSION=1.0.0 SLIPWAY_ENVIRONMENT=local SLIPWAY_DEPLOYMENT=hello /bin/sh -c '\''sh current/bin/check.sh'\''' 2>&1); status=$?; }
        tries=0
        while :; do
          tries=$((tries + 1))
          attempt
          [ "$status" -eq 0 ] && exit 0
          if [ "$status" -eq 124 ]; then
            out="$out${out:+
        }slipway: no answer within 10s"
          fi
          if [ "$tries" -gt 3 ]; then
            printf '%s\n' "$out" >&2
            exit "$status"
          fi
          sleep 5
        done

        # marker marker.write
        set -eu
        for managed in /tmp/x/host-1/opt/hello/.slipway /tmp/x/host-1/opt/hello/.slipway/artifacts /tmp/x/host-1/opt/hello/.slipway/config /tmp/x/host-1/opt/hello/releases; do
          if [ -L "$managed" ]; then
            printf 'slipway: %s is a symbolic link; slipway does not write or delete through one\n' "$managed" >&2
            exit 1
          fi
        done
        mkdir -p /tmp/x/host-1/opt/hello/.slipway
        tmp=$(mktemp /tmp/x/host-1/opt/hello/.slipway/.release.json.XXXXXX)
        printf '%s\n' '{"version":"1.0.0","sha256":"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef","time":"2026-01-02T03:04:05Z","apply_id":"apply-1"}' > "$tmp"
        mv -fT "$tmp" /tmp/x/host-1/opt/hello/.slipway/release.json

        # prune prune
        set -eu
        cd /tmp/x/host-1/opt/hello 2>/dev/null || exit 0
        for managed in /tmp/x/host-1/opt/hello/.slipway /tmp/x/host-1/opt/hello/.slipway/artifacts /tmp/x/host-1/opt/hello/.slipway/config /tmp/x/host-1/opt/hello/releases; do
          if [ -L "$managed" ]; then
            printf 'slipway: %s is a symbolic link; slipway does not write or delete through one\n' "$managed" >&2
            exit 1
          fi
        done
        current=$(cd current 2>/dev/null && pwd -P || true)
        previous=$(sed -n 1p .slipway/previous 2>/dev/null || true)
        if [ -n "$previous" ]; then
          previous=$(cd "$previous" 2>/dev/null && pwd -P || true)
        fi
        rollback_to='0.9.0 $(touch PWNED)'
        rollback_archive=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.tar.gz
        if [ -d releases ]; then
          kept=0
          ls -t releases | while IFS= read -r name; do
            case "$name" in .*|*/*) continue ;; esac
            # Only real directories: a link is left alone, never followed.
            if [ -L "releases/$name" ] || [ ! -d "releases/$name" ]; then continue; fi
            kept=$((kept + 1))
            [ "$kept" -gt 2 ] || continue
            [ "$name" != "$rollback_to" ] || continue
            real=$(cd "releases/$name" && pwd -P)
            if [ "$real" = "$current" ] || [ "$real" = "$previous" ]; then
              continue
            fi
            rm -rf "releases/$name"
            printf 'slipway: removed release %s\n' "$name"
          done
          rm -rf releases/.tmp-*
        fi
        if [ -d .slipway/artifacts ]; then
          kept=0
          ls -t .slipway/artifacts | while IFS= read -r name; do
            [ -f ".slipway/artifacts/$name" ] && [ ! -L ".slipway/artifacts/$name" ] || continue
            kept=$((kept + 1))
            [ "$kept" -gt 2 ] || continue
            [ "$name" != "$rollback_archive" ] || continue
            rm -f ".slipway/artifacts/$name"
          done
        fi

        # rollback rollback.check
        set -eu
        if ! cd /tmp/x/host-1/opt/hello 2>/dev/null || [ ! -f 'releases/0.9.0 $(touch PWNED)'/.slipway-complete ]; then
          printf 'slipway: release %s is not installed on this host: cannot roll back to it (nothing was changed)\n' '0.9.0 $(touch PWNED)' >&2
          exit 1
        fi
        built=$(cat 'releases/0.9.0 $(touch PWNED)'/.slipway-complete)
        if [ -n "$built" ] && [ "$built" != 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef ] && ! { [ -f /tmp/x/host-1/opt/hello/.slipway/artifacts/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.tar.gz ] && [ "$(sha256sum < /tmp/x/host-1/opt/hello/.slipway/artifacts/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.tar.gz | cut -c 1-64)" = 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef ]; }; then
          printf 'slipway: release %s on this host is another build (sha256 %s) than the one to roll back to (%s), whose archive is gone: cannot roll back to it (nothing was changed)\n' '0.9.0 $(touch PWNED)' "$built" 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef >&2
          exit 1
        fi
        if [ ! -f '.slipway/config/0.9.0 $(touch PWNED)+ab'/manifest ]; then
          printf 'slipway: no saved configuration for release %s on this host: cannot roll back to it without mixing versions (nothing was changed)\n' '0.9.0 $(touch PWNED)' >&2
          exit 1
        fi

        # rollback rollback.stop
        set -eu
        if [ -L /tmp/x/host-1/opt/hello/current ] || [ -e /tmp/x/host-1/opt/hello/current ]; then
          cd /tmp/x/host-1/opt/hello && env SLIPWAY_HOST=host-1 SLIPWAY_HOST_INDEX=1 SLIPWAY_INSTALL_DIR=/tmp/x/host-1/opt/hello SLIPWAY_HOST_ROOT=/tmp/x/host-1 SLIPWAY_VERSION=1.0.0 SLIPWAY_ENVIRONMENT=local SLIPWAY_DEPLOYMENT=hello /bin/sh -c 'sh current/bin/stop.sh' || { status=$?; if [ ! -f /tmp/x/host-1/opt/hello/current/.slipway-complete ]; then printf 'slipway: current points at %s, which slipway did not install (it has no %s): stop what it runs by hand, then point current at an installed release or remove it\n' "$(readlink /tmp/x/host-1/opt/hello/current || echo /tmp/x/host-1/opt/hello/current)" .slipway-complete >&2; fi; exit $status; }
        else
          echo 'slipway: nothing is installed, nothing to stop'
        fi

        # rollback rollback.install
        set -eu
        built=$(cat '/tmp/x/host-1/opt/hello/releases/0.9.0 $(touch PWNED)'/.slipway-complete)
        if [ -n "$built" ] && [ "$built" != 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef ]; then
          rm -rf '/tmp/x/host-1/opt/hello/releases/.tmp-0.9.0 $(touch PWNED)'
          mkdir -p '/tmp/x/host-1/opt/hello/releases/.tmp-0.9.0 $(touch PWNED)'
          tar -xzf /tmp/x/host-1/opt/hello/.slipway/artifacts/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.tar.gz --no-same-owner -C '/tmp/x/host-1/opt/hello/releases/.tmp-0.9.0 $(touch PWNED)'
          printf '%s\n' 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef > '/tmp/x/host-1/opt/hello/releases/.tmp-0.9.0 $(touch PWNED)'/.slipway-complete
          touch '/tmp/x/host-1/opt/hello/releases/.tmp-0.9.0 $(touch PWNED)'
          rm -rf '/tmp/x/host-1/opt/hello/releases/0.9.0 $(touch PWNED)'
          mv '/tmp/x/host-1/opt/hello/releases/.tmp-0.9.0 $(touch PWNED)' '/tmp/x/host-1/opt/hello/releases/0.9.0 $(touch PWNED)'
        fi

        # rollback rollback.switch
        set -eu
        cd /tmp/x/host-1/opt/hello
        ln -sfn 'releases/0.9.0 $(touch PWNED)' current.tmp
        mv -T current.tmp current
        printf 'slipway: current points at %s again\n' 'releases/0.9.0 $(touch PWNED)'

        # rollback rollback.config
        set -eu
        for managed in /tmp/x/host-1/opt/hello/.slipway /tmp/x/host-1/opt/hello/.slipway/artifacts /tmp/x/host-1/opt/hello/.slipway/config /tmp/x/host-1/opt/hello/releases; do
          if [ -L "$managed" ]; then
            printf 'slipway: %s is a symbolic link; slipway does not write or delete through one\n' "$managed" >&2
            exit 1
          fi
        done
        inside() { [ "$2" = / ] && return 0; case "$1/" in "$2"/*) return 0 ;; esac; return 1; }
        allowed() { for base in /tmp/x/host-1/opt/hello; do real=$(cd "$base" 2>/dev/null && pwd -P) || continue; inside "$1" "$real" && return 0; done; return 1; }
        snapshot='/tmp/x/host-1/opt/hello/.slipway/config/0.9.0 $(touch PWNED)+ab'
        if [ ! -f "$snapshot/manifest" ]; then
          printf 'slipway: no saved configuration for %s, config files left as they are\n' '0.9.0 $(touch PWNED)+ab'
          exit 0
        fi
        i=0
        while IFS= read -r destination; do
          i=$((i + 1))
          dir=$(dirname "$destination")
          if ! allowed "$(cd "$dir" 2>/dev/null && pwd -P)"; then
            printf 'slipway: %s is outside the service'\''s directories; not restoring it\n' "$destination" >&2
            exit 1
          fi
          tmp=$(mktemp "$dir/.slipway-restore-XXXXXX")
          cp -p "$snapshot/$i" "$tmp"
          mv -fT "$tmp" "$destination"
        done < "$snapshot/manifest"

        # rollback rollback.marker
        set -eu
        for managed in /tmp/x/host-1/opt/hello/.slipway /tmp/x/host-1/opt/hello/.slipway/artifacts /tmp/x/host-1/opt/hello/.slipway/config /tmp/x/host-1/opt/hello/releases; do
          if [ -L "$managed" ]; then
            printf 'slipway: %s is a symbolic link; slipway does not write or delete through one\n' "$managed" >&2
            exit 1
          fi
        done
        mkdir -p /tmp/x/host-1/opt/hello/.slipway
        tmp=$(mktemp /tmp/x/host-1/opt/hello/.slipway/.release.json.XXXXXX)
        printf '%s\n' '{"version":"1.0.0","sha256":"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef","time":"2026-01-02T03:04:05Z","apply_id":"apply-1"}' > "$tmp"
        mv -fT "$tmp" /tmp/x/host-1/opt/hello/.slipway/release.json

        # rollback rollback.start
        set -eu
        if [ -L /tmp/x/host-1/opt/hello/current ] || [ -e /tmp/x/host-1/opt/hello/current ]; then
          cd /tmp/x/host-1/opt/hello && env SLIPWAY_HOST=host-1 SLIPWAY_HOST_INDEX=1 SLIPWAY_INSTALL_DIR=/tmp/x/host-1/opt/hello SLIPWAY_HOST_ROOT=/tmp/x/host-1 SLIPWAY_VERSION=1.0.0 SLIPWAY_ENVIRONMENT=local SLIPWAY_DEPLOYMENT=hello /bin/sh -c 'sh current/bin/start.sh config/hello.env'
        else
          echo 'slipway: nothing is installed, nothing to start'
        fi
        "#);
    }

    #[test]
    fn host_path_joins_the_root() {
        let at = |root: &str, path: &str| host_path(&local_ctx(root), path);
        assert_eq!(at("/", "/opt/app"), "/opt/app");
        assert_eq!(at("/", "/opt/app/"), "/opt/app");
        assert_eq!(at("/", "/"), "/");
        assert_eq!(at("", "/opt/app"), "/opt/app");
        assert_eq!(at("/tmp/x/host-1", "/opt/app"), "/tmp/x/host-1/opt/app");
        assert_eq!(at("/tmp/x/host-1/", "/opt/app/"), "/tmp/x/host-1/opt/app");
        assert_eq!(at("/tmp/x/host-1", "/"), "/tmp/x/host-1");
        assert_eq!(at("/tmp/x/host-1", "opt/app"), "/tmp/x/host-1/opt/app");
        assert_eq!(
            artifact_upload_path(&command_vm(), &local_ctx("/r/h"), SHA),
            format!("/r/h/opt/hello/.slipway/artifacts/{SHA}.tar.gz")
        );
    }

    #[test]
    fn validate_and_check_sha256() {
        assert_eq!(ssh_ctx().validate(), Ok(()));
        let long = "9".repeat(201);
        for version in [
            "",
            ".",
            "..",
            ".hidden",
            "1/2",
            "../x",
            "1\n2",
            long.as_str(),
        ] {
            let ctx = HostContext {
                version: version.into(),
                ..ssh_ctx()
            };
            assert!(
                matches!(ctx.validate(), Err(StepError::Version(_))),
                "{version:?}"
            );
        }
        let spaced = HostContext {
            version: "1.0 beta $(x)".into(),
            ..ssh_ctx()
        };
        assert_eq!(spaced.validate(), Ok(()));
        let relative = local_ctx(".slipway/hosts/host-1");
        assert!(matches!(relative.validate(), Err(StepError::HostRoot(_))));
        let apply = HostContext {
            apply_id: "a\nb".into(),
            ..ssh_ctx()
        };
        assert!(matches!(apply.validate(), Err(StepError::ApplyId(_))));
        assert_eq!(check_sha256(SHA), Ok(()));
        for bad in ["", "abc", &SHA.to_uppercase(), &format!("{}/", &SHA[..63])] {
            assert!(check_sha256(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn phases_hooks_and_absent_steps() {
        assert_eq!(Phase::BeforeStop.hook_when(), Some(HookWhen::BeforeStop));
        assert_eq!(Phase::Register.to_string(), "register");
        assert_eq!(Phase::Stop.hook_when(), None);
        let vm = systemd_vm();
        assert!(hooks(&vm, &ssh_ctx(), Phase::Stop).is_empty());
        assert!(hooks(&vm, &ssh_ctx(), Phase::AfterStart).is_empty());
        assert_eq!(hooks(&vm, &ssh_ctx(), Phase::BeforeStop).len(), 1);
        // A url check is a GET made on the host, all attempts in one step.
        let url_check = health_check(&vm.health[0], &vm, &ssh_ctx(), None);
        assert!(
            url_check.script.contains("curl -sS"),
            "{}",
            url_check.script
        );
        assert_eq!(url_check.time_limit, Some(health_time_limit(&vm.health[0])));
        let bare = VmSpec {
            systemd_unit: None,
            start_command: None,
            stop_command: None,
            ..systemd_vm()
        };
        assert_eq!(stop(&bare, &ssh_ctx()), None);
        assert_eq!(start(&bare, &ssh_ctx()), None);
        let target = RollbackTarget {
            version: "1.0.0".into(),
            sha256: None,
            config_snapshot: "1.0.0+ab".into(),
        };
        let names: Vec<String> = rollback(&bare, &ssh_ctx(), Some(&target), TIME, true)
            .into_iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(
            names,
            ["rollback.check", "rollback.switch", "rollback.config"]
        );
        assert!(rollback(&bare, &ssh_ctx(), None, TIME, true).is_empty());
    }

    #[test]
    fn host_release_reads_current_before_the_marker() {
        let marker = r#"{"version":"2.0","sha256":"ab","time":"t","apply_id":"a"}"#;
        let both = HostRelease::parse(&format!("releases/1.0\n{marker}\n")).unwrap();
        assert_eq!(both.current.as_deref(), Some("1.0"));
        assert_eq!(both.marker.map(|m| m.version).as_deref(), Some("2.0"));
        let bare = HostRelease::parse("releases/1.0\n").unwrap();
        assert_eq!((bare.current.as_deref(), bare.marker), (Some("1.0"), None));
        let elsewhere = HostRelease::parse("/srv/other\n").unwrap();
        assert_eq!(elsewhere.current.as_deref(), Some("/srv/other"));
        let nothing = HostRelease::parse("\n").unwrap();
        assert_eq!((nothing.current, nothing.marker), (None, None));
        let text = read_host_release(&command_vm(), &ssh_ctx()).script;
        assert!(text.contains("readlink current"), "{text}");
    }

    #[test]
    fn release_marker_parses_its_own_output() {
        assert_eq!(ReleaseMarker::parse("").unwrap(), None);
        assert_eq!(ReleaseMarker::parse(" \n").unwrap(), None);
        let text =
            r#"{"version":"1.4.0","sha256":"ab","time":"2026-01-02T03:04:05Z","apply_id":"a-1"}"#;
        assert_eq!(
            ReleaseMarker::parse(&format!("{text}\n")).unwrap(),
            Some(ReleaseMarker {
                version: "1.4.0".into(),
                sha256: "ab".into(),
                time: TIME.into(),
                apply_id: "a-1".into(),
            })
        );
        assert!(ReleaseMarker::parse("{").is_err());
    }

    /// A value that runs `touch PWNED` or `reboot` if a shell ever reads it as code.
    const EVIL: &str = "$(touch PWNED) `touch PWNED` '; touch PWNED; ' \"; reboot; \" \\ \n x";

    fn hostile_vm(systemd: bool) -> VmSpec {
        let evil = |what: &str| format!("{what} {EVIL}");
        VmSpec {
            install_dir: format!("/opt/{EVIL}"),
            run_as: Some(evil("user")),
            keep_releases: 1,
            config_dirs: vec![format!("/etc/{EVIL}")],
            start_command: Some(evil("start")),
            stop_command: Some(evil("stop")),
            systemd_unit: systemd.then(|| SystemdUnit {
                name: evil("unit"),
                exec_start: evil("exec"),
                exec_stop: Some(evil("exec-stop")),
                user: Some(evil("unit-user")),
                environment: BTreeMap::from([("A".into(), evil("env"))]),
                restart: Some(evil("restart")),
                after: vec![evil("after")],
            }),
            config_files: vec![
                ConfigFile {
                    name: evil("file"),
                    destination: format!("/etc/{EVIL}/{EVIL}"),
                    content: evil("content"),
                    mode: Some(evil("mode")),
                    owner: Some(evil("owner")),
                },
                ConfigFile {
                    name: "plain".into(),
                    destination: format!("/{EVIL}"),
                    content: String::new(),
                    mode: None,
                    owner: None,
                },
            ],
            prechecks: vec![named(&evil("p"), &evil("precheck"))],
            health: vec![health(&evil("h"), None, Some(&evil("health")))],
            smoke: vec![named(&evil("s"), &evil("smoke"))],
            hooks: ["before_stop", "deregister", "after_start", "register"]
                .iter()
                .map(|when| hook(&evil("hook"), when, &evil(when)))
                .collect(),
        }
    }

    fn hostile_ctx() -> HostContext {
        HostContext {
            host: format!("host {EVIL}"),
            host_index: 7,
            host_root: format!("/root {EVIL}"),
            environment: format!("env {EVIL}"),
            deployment: format!("dep {EVIL}"),
            version: format!("v {EVIL}"),
            apply_id: format!("apply {EVIL}"),
            sudo: true,
        }
    }

    /// What a shell would interpret in `script`: everything outside single quotes,
    /// minus backslash-escaped characters, each replaced by `_`. Tracks double quotes
    /// and `$(...)`, inside which quotes start afresh.
    fn unquoted(script: &str) -> String {
        #[derive(PartialEq)]
        enum Context {
            Double,
            Substitution,
        }
        let mut outside = String::new();
        let mut stack: Vec<Context> = Vec::new();
        let mut chars = script.chars().peekable();
        while let Some(c) = chars.next() {
            let in_double = stack.last() == Some(&Context::Double);
            match c {
                '\'' if !in_double => {
                    assert!(chars.any(|c| c == '\''), "unclosed ' in {script}");
                    outside.push('_');
                }
                '\\' => {
                    chars.next();
                    outside.push('_');
                }
                '"' => {
                    if in_double {
                        stack.pop();
                    } else {
                        stack.push(Context::Double);
                    }
                    outside.push('"');
                }
                '$' if chars.peek() == Some(&'(') => {
                    chars.next();
                    stack.push(Context::Substitution);
                    outside.push_str("$(");
                }
                ')' => {
                    if stack.last() == Some(&Context::Substitution) {
                        stack.pop();
                    }
                    outside.push(')');
                }
                c => outside.push(c),
            }
        }
        assert!(stack.is_empty(), "unclosed quote or $( in {script}");
        outside
    }

    #[test]
    fn user_values_appear_only_quoted() {
        for systemd in [true, false] {
            let vm = hostile_vm(systemd);
            let ctx = hostile_ctx();
            let mut steps = all_steps(&vm, &ctx, true);
            steps.push(artifact_status(&vm, &ctx, EVIL));
            steps.push(verify_artifact(&vm, &ctx, EVIL));
            steps.push(install_release(&vm, &ctx, EVIL));
            steps.push(write_release_marker(&vm, &ctx, EVIL, EVIL));
            if let Some(unit) = &vm.systemd_unit {
                steps.push(install_systemd_unit(&vm, unit, &ctx, EVIL, true));
            }
            for step in &steps {
                let outside = unquoted(&step.script);
                for word in ["PWNED", "reboot", "`"] {
                    assert!(
                        !outside.contains(word),
                        "{word} outside quotes in {}:\n{}\n--- outside quotes:\n{outside}",
                        step.name,
                        step.script
                    );
                }
                // The shell parses every script (`-n`: read, never run).
                let output = Command::new("/bin/sh")
                    .arg("-n")
                    .arg("-c")
                    .arg(&step.script)
                    .output()
                    .expect("run /bin/sh -n");
                assert!(
                    output.status.success(),
                    "{} does not parse: {}",
                    step.name,
                    String::from_utf8_lossy(&output.stderr)
                );
            }
            // Each value is there, as one quoted word.
            let all = transcript(&steps);
            let start_value = match &vm.systemd_unit {
                Some(unit) => unit.name.as_str(),
                None => vm.start_command.as_deref().unwrap(),
            };
            for value in [
                start_value,
                &vm.config_files[0].content,
                &vm.prechecks[0].command,
                &ctx.host,
                &ctx.deployment,
            ] {
                assert!(all.contains(&quote(value)), "{value:?} not quoted whole");
            }
        }
    }

    // ---- Health checks with all their attempts, on a real shell ----

    fn timed_check(
        command: Option<&str>,
        url: Option<&str>,
        retries: u32,
        timeout: &str,
    ) -> HealthCheck {
        HealthCheck {
            retries: Some(retries),
            interval: Some(DurationText::parse("100ms").unwrap()),
            timeout: Some(DurationText::parse(timeout).unwrap()),
            ..health("probe", url, command)
        }
    }

    /// Run a health check's step where `Host` runs the others; its output.
    fn run_health(check: &HealthCheck) -> std::process::Output {
        let host = Host::new(exec_vm());
        let ctx = host.ctx("1.0.0", "apply-1");
        std::fs::create_dir_all(host.install_dir()).unwrap();
        let step = health_check(check, &host.vm, &ctx, None);
        host.run(&step)
    }

    #[test]
    fn a_health_command_is_tried_again_on_the_host_and_passes_with_the_first_attempt_that_does() {
        // Fails twice, then passes: three attempts, within retries = 3.
        let count = "n=$(cat tries 2>/dev/null || echo 0); n=$((n + 1)); echo $n > tries; echo \"attempt $n\"; [ $n -ge 3 ]";
        let output = run_health(&timed_check(Some(count), None, 3, "5s"));
        assert!(output.status.success(), "{output:?}");
        // With one retry it fails, showing the last attempt's output and status.
        let output = run_health(&timed_check(
            Some(&format!("{count} || exit 7")),
            None,
            1,
            "5s",
        ));
        assert_eq!(output.status.code(), Some(7), "{output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(stderr.trim(), "attempt 2", "{stderr}");
    }

    #[test]
    fn a_health_attempt_that_does_not_answer_in_time_is_stopped_and_said_so() {
        let started = std::time::Instant::now();
        let output = run_health(&timed_check(
            Some("echo waiting; sleep 30"),
            None,
            1,
            "300ms",
        ));
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(output.status.code(), Some(124), "{output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            stderr.trim(),
            "waiting\nslipway: no answer within 0.3s",
            "{stderr}"
        );
    }

    #[test]
    fn a_health_url_is_fetched_on_the_host_until_it_answers_with_the_expected_status() {
        use std::io::{Read, Write};
        // 503 twice, then 200: a server on loopback that counts requests.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            for (n, stream) in listener.incoming().take(5).enumerate() {
                let mut stream = stream.unwrap();
                let mut request = [0u8; 1024];
                let _ = stream.read(&mut request);
                let status = if n < 2 {
                    "503 Service Unavailable"
                } else {
                    "200 OK"
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
            }
        });
        let url = format!("http://127.0.0.1:{port}/health");
        let output = run_health(&timed_check(None, Some(&url), 3, "5s"));
        assert!(output.status.success(), "{output:?}");
        // Two more requests, both 200: expecting 204 fails and says what came.
        let check = HealthCheck {
            expect_status: Some(204),
            ..timed_check(None, Some(&url), 1, "5s")
        };
        let output = run_health(&check);
        server.join().unwrap();
        assert!(!output.status.success(), "{output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            stderr.trim(),
            "slipway: answered with HTTP status 200, expected 204",
            "{stderr}"
        );
        // Nothing listens any more: curl's own message.
        let output = run_health(&timed_check(None, Some(&url), 0, "5s"));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("curl: (7)"), "{stderr}");
    }

    // ---- Running the local-transport scripts with a real shell ----

    const START_SH: &str = r#"set -eu
mkdir -p run
printf '%s|%s|%s|%s|%s|%s|%s|%s|%s\n' "$(cat current/VERSION)" "$(pwd)" "$SLIPWAY_HOST" "$SLIPWAY_HOST_INDEX" "$SLIPWAY_INSTALL_DIR" "$SLIPWAY_HOST_ROOT" "$SLIPWAY_VERSION" "$SLIPWAY_ENVIRONMENT" "$SLIPWAY_DEPLOYMENT" > run/started
printf 'start %s\n' "$(cat current/VERSION)" >> run/events
"#;
    const STOP_SH: &str = "printf 'stop %s\\n' \"$(cat current/VERSION)\" >> run/events\n";

    /// Content for a config file that would do harm if a script ever ran it.
    const CONFIG: &str =
        "greeting='hi' \"there\"\n$(touch PWNED)\n`touch PWNED`\n'; touch PWNED; '\n\\n ünï\n";

    fn exec_vm() -> VmSpec {
        VmSpec {
            install_dir: "/opt/it's $(touch PWNED)".into(),
            run_as: None,
            keep_releases: 3,
            config_dirs: vec!["/etc/hello $(touch PWNED)".into()],
            start_command: Some("sh current/bin/start.sh".into()),
            stop_command: Some("sh current/bin/stop.sh".into()),
            systemd_unit: None,
            config_files: vec![ConfigFile {
                name: "app.conf".into(),
                destination: "/etc/hello $(touch PWNED)/app.conf".into(),
                content: CONFIG.into(),
                mode: Some("0600".into()),
                owner: None,
            }],
            prechecks: vec![named(
                "env",
                "test -n \"$SLIPWAY_HOST\" && test \"$(pwd)\" = \"$SLIPWAY_INSTALL_DIR\"",
            )],
            health: vec![health("started", None, Some("test -f run/started"))],
            smoke: vec![named(
                "version",
                "test \"$(cat current/VERSION)\" = \"$SLIPWAY_VERSION\"",
            )],
            hooks: vec![
                hook(
                    "log-stop",
                    "before_stop",
                    "printf 'before_stop %s\\n' \"$SLIPWAY_VERSION\" >> hooks.log",
                ),
                hook(
                    "log-start",
                    "after_start",
                    "printf 'after_start %s\\n' \"$SLIPWAY_VERSION\" >> hooks.log",
                ),
            ],
        }
    }

    struct Host {
        tmp: tempfile::TempDir,
        vm: VmSpec,
        root: PathBuf,
    }

    impl Host {
        fn new(vm: VmSpec) -> Host {
            let tmp = tempfile::tempdir().expect("tempdir");
            let root = tmp.path().join("hosts").join("host 1 'q' $(touch PWNED)");
            std::fs::create_dir_all(tmp.path().join("cwd")).unwrap();
            Host { tmp, vm, root }
        }

        fn ctx(&self, version: &str, apply_id: &str) -> HostContext {
            HostContext {
                host: "host 1".into(),
                host_index: 1,
                host_root: self.root.to_str().unwrap().into(),
                environment: "local".into(),
                deployment: "hello".into(),
                version: version.into(),
                apply_id: apply_id.into(),
                sudo: false,
            }
        }

        fn install_dir(&self) -> PathBuf {
            self.root.join(self.vm.install_dir.trim_start_matches('/'))
        }

        fn read(&self, relative: &str) -> String {
            std::fs::read_to_string(self.install_dir().join(relative))
                .unwrap_or_else(|e| panic!("{relative}: {e}"))
        }

        fn current(&self) -> PathBuf {
            std::fs::read_link(self.install_dir().join("current")).expect("current")
        }

        fn run(&self, step: &RemoteStep) -> Output {
            Command::new("/bin/sh")
                .arg("-c")
                .arg(&step.script)
                .current_dir(self.tmp.path().join("cwd"))
                .output()
                .expect("run /bin/sh")
        }

        fn ok(&self, step: &RemoteStep) -> String {
            let output = self.run(step);
            assert!(
                output.status.success(),
                "{} failed ({}):\n{}\n--- stderr:\n{}",
                step.name,
                output.status,
                step.script,
                String::from_utf8_lossy(&output.stderr)
            );
            String::from_utf8(output.stdout).expect("utf-8")
        }

        fn fails(&self, step: &RemoteStep) -> String {
            let output = self.run(step);
            assert!(!output.status.success(), "{} should fail", step.name);
            String::from_utf8(output.stderr).expect("utf-8")
        }

        /// Pack a release with `bin/start.sh`, `bin/stop.sh` and `VERSION`.
        fn artifact(&self, tag: &str, version: &str) -> (PathBuf, String) {
            let source = self.tmp.path().join(format!("src-{tag}"));
            std::fs::create_dir_all(source.join("bin")).unwrap();
            std::fs::write(source.join("VERSION"), version).unwrap();
            std::fs::write(source.join("bin/start.sh"), START_SH).unwrap();
            std::fs::write(source.join("bin/stop.sh"), STOP_SH).unwrap();
            let archive = self.tmp.path().join(format!("{tag}.tar.gz"));
            let status = Command::new("tar")
                .arg("-czf")
                .arg(&archive)
                .arg("-C")
                .arg(&source)
                .arg(".")
                .status()
                .expect("run tar");
            assert!(status.success());
            let sha = hex::encode(Sha256::digest(std::fs::read(&archive).unwrap()));
            (archive, sha)
        }

        /// A build of version 1.0.0 named `name`: the same version, other
        /// bytes (a `BUILD` file holding `name`, packed with the release).
        fn build_of_1_0_0(&self, name: &str) -> (PathBuf, String) {
            let source = self.tmp.path().join(format!("src-{name}"));
            std::fs::create_dir_all(&source).unwrap();
            std::fs::write(source.join("BUILD"), name).unwrap();
            self.artifact(name, "1.0.0")
        }

        /// Upload (as the runner would), verify and install a release.
        fn deliver(&self, ctx: &HostContext, archive: &Path, sha: &str) {
            let vm = &self.vm;
            if !artifact_present(&self.ok(&artifact_status(vm, ctx, sha))) {
                let upload = PathBuf::from(artifact_upload_path(vm, ctx, sha));
                std::fs::create_dir_all(upload.parent().unwrap()).unwrap();
                std::fs::copy(archive, upload).unwrap();
            }
            assert!(artifact_present(&self.ok(&artifact_status(vm, ctx, sha))));
            self.ok(&verify_artifact(vm, ctx, sha));
            self.ok(&install_release(vm, ctx, sha));
        }

        /// No script ever ran a `touch PWNED` from a value.
        fn assert_nothing_injected(&self) {
            fn walk(dir: &Path) {
                for entry in std::fs::read_dir(dir).unwrap() {
                    let entry = entry.unwrap();
                    assert_ne!(entry.file_name(), "PWNED", "injected in {}", dir.display());
                    if entry.file_type().unwrap().is_dir() {
                        walk(&entry.path());
                    }
                }
            }
            walk(self.tmp.path());
        }
    }

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    /// A real HTTP server on loopback that answers every request with
    /// `status` and `body`, counting the requests.
    fn serve(status: u16, body: Vec<u8>) -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = count.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let head = format!(
                    "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(&body);
            }
        });
        (port, count)
    }

    fn download(url: String) -> crate::artifact::HostDownload {
        crate::artifact::HostDownload {
            url,
            shown_source: "https://repo.example/app.tar.gz".into(),
        }
    }

    #[test]
    fn a_host_pull_keeps_only_the_pinned_bytes_and_never_shows_the_url() {
        let host = Host::new(exec_vm());
        let vm = &host.vm;
        let ctx = host.ctx("1.0.0", "apply-1");
        let (archive, sha) = host.artifact("one", "1.0.0");
        let bytes = std::fs::read(&archive).unwrap();
        let (port, asked) = serve(200, bytes.clone());
        // A query as a presigned URL has, with values that would end the
        // here-document or the quoted string if written as they are.
        let url = format!(
            "http://127.0.0.1:{port}/app.tar.gz?X-Amz-Signature=s3cr3t&q=\"\nSLIPWAY_URL\ntouch PWNED\n\\"
        );
        let step = pull_artifact(vm, &ctx, &sha, &download(url), None);
        // What a download cut short with its host left is removed; the file
        // of a download still running (a live shell's pid) is kept.
        let artifacts = PathBuf::from(artifacts_dir(vm, &ctx));
        std::fs::create_dir_all(&artifacts).unwrap();
        let dead_pid = (400_000..500_000u32)
            .find(|pid| !Path::new(&format!("/proc/{pid}")).exists())
            .unwrap();
        let upload = artifact_upload_path(vm, &ctx, &sha);
        let left = PathBuf::from(format!("{upload}.pull.{dead_pid}"));
        let left_ca = PathBuf::from(format!("{upload}.pull.{dead_pid}.ca"));
        let running = PathBuf::from(format!("{upload}.pull.{}", std::process::id()));
        for file in [&left, &left_ca, &running] {
            std::fs::write(file, "part").unwrap();
        }
        for line in step.script.lines() {
            if line.contains("s3cr3t") {
                assert!(
                    line.starts_with("url = \"") || line.starts_with("http://"),
                    "the URL is only in the tool's input: {line}"
                );
            }
        }
        host.ok(&step);
        assert_eq!(asked.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert!(
            !left.exists() && !left_ca.exists(),
            "a dead download's files"
        );
        assert!(running.exists(), "a running download's file");
        std::fs::remove_file(&running).unwrap();
        host.ok(&verify_artifact(vm, &ctx, &sha));
        assert!(artifact_present(&host.ok(&artifact_status(vm, &ctx, &sha))));
        // Present already: no second download.
        host.ok(&step);
        assert_eq!(asked.load(std::sync::atomic::Ordering::SeqCst), 1);
        host.assert_nothing_injected();

        // Other bytes than the pin: refused, nothing kept.
        let (other_port, _) = serve(200, b"other bytes".to_vec());
        let wrong = "f".repeat(64);
        let refused = host.fails(&pull_artifact(
            vm,
            &ctx,
            &wrong,
            &download(format!(
                "http://127.0.0.1:{other_port}/app.tar.gz?token=s3cr3t"
            )),
            None,
        ));
        assert!(
            refused.contains(
                "artifact https://repo.example/app.tar.gz as the host downloaded it has sha256"
            ),
            "{refused}"
        );
        assert!(!refused.contains("s3cr3t"), "{refused}");
        let (missing_port, _) = serve(404, b"no".to_vec());
        let missing = host.fails(&pull_artifact(
            vm,
            &ctx,
            &wrong,
            &download(format!(
                "http://127.0.0.1:{missing_port}/app.tar.gz?token=s3cr3t"
            )),
            None,
        ));
        assert!(
            missing
                .contains("the host could not download artifact https://repo.example/app.tar.gz"),
            "{missing}"
        );
        assert!(!missing.contains("s3cr3t"), "{missing}");
        let mut kept: Vec<String> = std::fs::read_dir(&artifacts)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        kept.sort();
        assert_eq!(kept, [format!("{sha}.tar.gz")], "no partial download left");
    }

    #[test]
    fn a_download_stops_when_the_shell_that_started_it_is_killed() {
        use std::io::{Read, Write};
        use std::sync::atomic::{AtomicBool, Ordering};
        let host = Host::new(exec_vm());
        let ctx = host.ctx("1.0.0", "apply-1");
        // A source that announces 10 MB and sends 1 KiB every 50 ms: the
        // download would take minutes.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let client_left = std::sync::Arc::new(AtomicBool::new(false));
        let left = client_left.clone();
        std::thread::spawn(move || {
            let Ok((mut stream, _)) = listener.accept() else {
                return;
            };
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let head = "HTTP/1.1 200 OK\r\nContent-Length: 10000000\r\nConnection: close\r\n\r\n";
            if stream.write_all(head.as_bytes()).is_err() {
                return;
            }
            for _ in 0..10_000 {
                if stream.write_all(&[b'x'; 1024]).is_err() {
                    left.store(true, Ordering::SeqCst);
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        let step = pull_artifact(
            &host.vm,
            &ctx,
            SHA,
            &download(format!("http://127.0.0.1:{port}/app.tar.gz")),
            None,
        );
        let script = host.tmp.path().join("pull.sh");
        std::fs::write(&script, &step.script).unwrap();
        // The step's shell is the child of this one, as a step's shell is
        // the child of slipway (local transport) or of sshd.
        let mut parent = Command::new("/bin/sh")
            .arg("-c")
            .arg("/bin/sh \"$1\" </dev/null >/dev/null 2>&1 & wait")
            .arg("sh")
            .arg(&script)
            .current_dir(host.tmp.path().join("cwd"))
            .spawn()
            .unwrap();
        let artifacts = PathBuf::from(artifacts_dir(&host.vm, &ctx));
        let partial = || -> Vec<PathBuf> {
            std::fs::read_dir(&artifacts)
                .map(|entries| entries.flatten().map(|e| e.path()).collect())
                .unwrap_or_default()
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while !partial()
            .iter()
            .any(|p| std::fs::metadata(p).is_ok_and(|m| m.len() > 0))
        {
            assert!(std::time::Instant::now() < deadline, "the download began");
            std::thread::sleep(Duration::from_millis(50));
        }
        let in_flight = partial();
        parent.kill().unwrap();
        parent.wait().unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        while !(client_left.load(Ordering::SeqCst) && partial().is_empty()) {
            assert!(
                std::time::Instant::now() < deadline,
                "the download goes on after its shell's parent was killed: source still sending = {}, files {:?} (in flight: {in_flight:?})",
                !client_left.load(Ordering::SeqCst),
                partial()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    #[test]
    fn a_host_without_curl_or_wget_is_told_what_to_do() {
        let host = Host::new(exec_vm());
        let ctx = host.ctx("1.0.0", "apply-1");
        let bin = host.tmp.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        for tool in ["sha256sum", "cut", "mkdir", "rm", "mv", "cat"] {
            let found = Command::new("/bin/sh")
                .arg("-c")
                .arg(format!("command -v {tool}"))
                .output()
                .unwrap();
            let path = String::from_utf8(found.stdout).unwrap();
            std::os::unix::fs::symlink(path.trim(), bin.join(tool)).unwrap();
        }
        let step = pull_artifact(
            &host.vm,
            &ctx,
            SHA,
            &download("http://127.0.0.1:9/app.tar.gz".into()),
            None,
        );
        let output = Command::new("/bin/sh")
            .arg("-c")
            .arg(&step.script)
            .env("PATH", &bin)
            .current_dir(host.tmp.path().join("cwd"))
            .output()
            .unwrap();
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("neither curl nor wget") && stderr.contains("delivery = \"push\""),
            "{stderr}"
        );
    }

    #[test]
    fn a_url_reaches_the_download_tool_as_one_literal_line() {
        assert_eq!(
            url_for_host_tool("https://h/a b?x=\"1\"&y=\\\n\u{7f}é"),
            "https://h/a%20b?x=%221%22&y=%5C%0A%7F%C3%A9"
        );
        let plain =
            "https://h.example:8443/p/app-1.0.tar.gz?X-Amz-Credential=a%2Fb&X-Amz-Signature=0f";
        assert_eq!(url_for_host_tool(plain), plain);
    }

    #[test]
    fn a_rebuilt_version_is_installed_and_a_rollback_puts_the_earlier_build_back() {
        let host = Host::new(exec_vm());
        let vm = &host.vm;
        let ctx = host.ctx("1.0.0", "apply-1");
        // Two builds of 1.0.0: the same version, other bytes.
        let (first, first_sha) = host.build_of_1_0_0("first");
        let (second, second_sha) = host.build_of_1_0_0("second");
        host.deliver(&ctx, &first, &first_sha);
        assert_eq!(host.read("releases/1.0.0/BUILD"), "first");
        host.deliver(&ctx, &second, &second_sha);
        assert_eq!(
            host.read("releases/1.0.0/BUILD"),
            "second",
            "the rebuilt version is installed, not taken for the one there"
        );

        // Rolling back to the first build puts its files back from its
        // archive.
        let snapshot = host.install_dir().join(".slipway/config/s");
        std::fs::create_dir_all(&snapshot).unwrap();
        std::fs::write(snapshot.join("manifest"), "").unwrap();
        let target = RollbackTarget {
            version: "1.0.0".into(),
            sha256: Some(first_sha.clone()),
            config_snapshot: "s".into(),
        };
        let steps = rollback(vm, &ctx, Some(&target), "2026-01-01T00:00:00Z", false);
        let named = |name: &str| steps.iter().find(|s| s.name == name).unwrap().clone();
        host.ok(&named("rollback.check"));
        host.ok(&named("rollback.install"));
        assert_eq!(host.read("releases/1.0.0/BUILD"), "first");
        // Back on the first build: nothing more to put back.
        host.ok(&named("rollback.install"));
        assert_eq!(host.read("releases/1.0.0/BUILD"), "first");

        // The first build's archive is gone: the check refuses, and says why.
        host.deliver(&ctx, &second, &second_sha);
        std::fs::remove_file(artifact_upload_path(vm, &ctx, &first_sha)).unwrap();
        let refused = host.fails(&named("rollback.check"));
        assert!(
            refused.contains("is another build") && refused.contains("archive is gone"),
            "{refused}"
        );
        assert_eq!(host.read("releases/1.0.0/BUILD"), "second");
    }

    #[test]
    fn pruning_keeps_the_archive_of_the_build_a_rollback_puts_back() {
        let host = Host::new(VmSpec {
            keep_releases: 1,
            ..exec_vm()
        });
        let vm = &host.vm;
        let ctx = host.ctx("1.0.0", "apply-2");
        // The host served the first build of 1.0.0 when the rollout began;
        // the rollout installs a rebuild of 1.0.0 in the same directory.
        let (first, first_sha) = host.build_of_1_0_0("first");
        let (second, second_sha) = host.build_of_1_0_0("second");
        host.deliver(&ctx, &first, &first_sha);
        let first_archive = PathBuf::from(artifact_upload_path(vm, &ctx, &first_sha));
        let an_hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        std::fs::File::open(&first_archive)
            .unwrap()
            .set_modified(an_hour_ago)
            .unwrap();
        host.deliver(&ctx, &second, &second_sha);
        host.ok(&switch_current(vm, &ctx));

        // The release directory is kept by its version, and the first
        // build's archive, older than the newest one kept, by its sha256:
        // the rollback needs it to put that build back.
        host.ok(&prune_releases(vm, &ctx, Some("1.0.0"), Some(&first_sha)));
        assert!(first_archive.is_file(), "the rollback's archive was pruned");
        let snapshot = host.install_dir().join(".slipway/config/s");
        std::fs::create_dir_all(&snapshot).unwrap();
        std::fs::write(snapshot.join("manifest"), "").unwrap();
        let target = RollbackTarget {
            version: "1.0.0".into(),
            sha256: Some(first_sha.clone()),
            config_snapshot: "s".into(),
        };
        let steps = rollback(vm, &ctx, Some(&target), TIME, false);
        let named = |name: &str| steps.iter().find(|s| s.name == name).unwrap().clone();
        host.ok(&named("rollback.check"));
        host.ok(&named("rollback.install"));
        assert_eq!(host.read("releases/1.0.0/BUILD"), "first");

        // Without a rollback to keep it for, it is pruned as any other.
        host.ok(&prune_releases(vm, &ctx, Some("1.0.0"), None));
        assert!(!first_archive.exists());
        assert!(PathBuf::from(artifact_upload_path(vm, &ctx, &second_sha)).is_file());
    }

    #[test]
    fn local_scripts_deploy_update_and_roll_back() {
        let host = Host::new(exec_vm());
        let vm = &host.vm;
        let v2 = "2.0 $(touch PWNED)";

        // First apply: 1.0.0 on an empty host.
        let ctx = host.ctx("1.0.0", "apply-1");
        assert_eq!(ctx.validate(), Ok(()));
        assert!(!host.ok(&check_connection(&ctx)).trim().is_empty());
        assert_eq!(
            ReleaseMarker::parse(&host.ok(&read_release_marker(vm, &ctx))).unwrap(),
            None
        );
        for step in prechecks(vm, &ctx) {
            host.ok(&step);
        }
        for step in hooks(vm, &ctx, Phase::BeforeStop) {
            host.ok(&step);
        }
        assert!(host
            .ok(&stop(vm, &ctx).unwrap())
            .contains("nothing is installed yet"));
        let (archive1, sha1) = host.artifact("one", "1.0.0");
        assert!(!artifact_present(
            &host.ok(&artifact_status(vm, &ctx, &sha1))
        ));
        host.deliver(&ctx, &archive1, &sha1);
        assert_eq!(host.read("releases/1.0.0/VERSION"), "1.0.0");
        assert!(host
            .install_dir()
            .join("releases/1.0.0/.slipway-complete")
            .is_file());
        assert!(!host.install_dir().join("releases/.tmp-1.0.0").exists());
        assert!(host
            .ok(&install_release(vm, &ctx, &sha1))
            .contains("is already installed"));

        for step in config_files(vm, &ctx) {
            host.ok(&step);
        }
        let config = host.root.join("etc/hello $(touch PWNED)/app.conf");
        assert_eq!(std::fs::read_to_string(&config).unwrap(), CONFIG);
        assert_eq!(mode(&config), 0o600);

        // A unit file, written under the host's root without systemd.
        let unit = SystemdUnit {
            name: "hello $(touch PWNED).service".into(),
            exec_start: "/bin/true".into(),
            exec_stop: None,
            user: None,
            environment: BTreeMap::new(),
            restart: None,
            after: vec![],
        };
        let unit_file = host.root.join("etc/systemd/system").join(&unit.name);
        host.ok(&install_systemd_unit(
            vm,
            &unit,
            &ctx,
            "[Unit]\n'$(x)'\n",
            false,
        ));
        assert_eq!(
            std::fs::read_to_string(&unit_file).unwrap(),
            "[Unit]\n'$(x)'\n"
        );
        assert_eq!(mode(&unit_file), 0o644);
        assert!(host
            .ok(&install_systemd_unit(
                vm,
                &unit,
                &ctx,
                "[Unit]\n'$(x)'\n",
                false
            ))
            .contains("is unchanged"));
        host.ok(&install_systemd_unit(
            vm,
            &unit,
            &ctx,
            "[Unit]\nchanged\n",
            false,
        ));
        assert_eq!(
            std::fs::read_to_string(&unit_file).unwrap(),
            "[Unit]\nchanged\n"
        );
        assert!(!host
            .install_dir()
            .join(".slipway")
            .join(format!("{}.unit", unit.name))
            .exists());

        host.ok(&switch_current(vm, &ctx));
        assert_eq!(host.current(), Path::new("releases/1.0.0"));
        assert_eq!(host.read(".slipway/previous"), "\napply-1\n");
        host.ok(&start(vm, &ctx).unwrap());
        let install = host.install_dir();
        let install = install.to_str().unwrap();
        let root = host.root.to_str().unwrap();
        assert_eq!(
            host.read("run/started"),
            format!("1.0.0|{install}|host 1|1|{install}|{root}|1.0.0|local|hello\n")
        );
        for step in hooks(vm, &ctx, Phase::AfterStart) {
            host.ok(&step);
        }
        for check in &vm.health {
            host.ok(&health_check(check, vm, &ctx, None));
        }
        for step in smoke(vm, &ctx) {
            host.ok(&step);
        }
        host.ok(&write_release_marker(vm, &ctx, &sha1, TIME));
        let marker = ReleaseMarker::parse(&host.ok(&read_release_marker(vm, &ctx))).unwrap();
        assert_eq!(
            marker,
            Some(ReleaseMarker {
                version: "1.0.0".into(),
                sha256: sha1.clone(),
                time: TIME.into(),
                apply_id: "apply-1".into(),
            })
        );
        assert_eq!(host.ok(&prune_releases(vm, &ctx, None, None)), "");

        // Second apply: v2 over 1.0.0.
        let ctx2 = host.ctx(v2, "apply-2");
        assert_eq!(ctx2.validate(), Ok(()));
        for step in hooks(vm, &ctx2, Phase::BeforeStop) {
            host.ok(&step);
        }
        host.ok(&stop(vm, &ctx2).unwrap());
        let (archive2, sha2) = host.artifact("two", v2);
        host.deliver(&ctx2, &archive2, &sha2);
        host.ok(&switch_current(vm, &ctx2));
        host.ok(&switch_current(vm, &ctx2)); // again: keeps the first record
        assert_eq!(host.current(), Path::new(&format!("releases/{v2}")));
        assert_eq!(host.read(".slipway/previous"), "releases/1.0.0\napply-2\n");
        host.ok(&start(vm, &ctx2).unwrap());
        for step in smoke(vm, &ctx2) {
            host.ok(&step);
        }
        assert!(host.read("run/started").starts_with(&format!("{v2}|")));

        // A wrong or missing artifact is refused.
        let other = "f".repeat(64);
        assert!(host
            .fails(&verify_artifact(vm, &ctx2, &other))
            .contains("is missing"));
        std::fs::write(artifact_upload_path(vm, &ctx2, &other), "not it").unwrap();
        let refused = host.fails(&verify_artifact(vm, &ctx2, &other));
        assert!(refused.contains(&format!("expected {other}")), "{refused}");
        assert!(!artifact_present(
            &host.ok(&artifact_status(vm, &ctx2, &other))
        ));

        // Roll back to 1.0.0's pair, whichever apply switched: the release,
        // its saved config and the marker come back; twice changes nothing more.
        let restore = host.ctx("1.0.0", "apply-3");
        let target = RollbackTarget {
            version: "1.0.0".into(),
            sha256: Some(sha1.clone()),
            config_snapshot: "1.0.0+d1".into(),
        };
        // Without the saved config, nothing is changed.
        let refused = host.fails(&rollback(vm, &restore, Some(&target), TIME, false)[0]);
        assert!(
            refused.contains("no saved configuration for release 1.0.0"),
            "{refused}"
        );
        assert_eq!(host.current(), Path::new(&format!("releases/{v2}")));
        let config = host.root.join("etc/hello $(touch PWNED)/app.conf");
        std::fs::write(&config, "v1 config\n").unwrap();
        host.ok(&crate::vm::config_snapshot::save(
            vm, &restore, "1.0.0+d1", None,
        ));
        std::fs::write(&config, "v2 config\n").unwrap();
        for _ in 0..2 {
            for step in rollback(vm, &restore, Some(&target), TIME, false) {
                host.ok(&step);
            }
            assert_eq!(host.current(), Path::new("releases/1.0.0"));
            assert_eq!(std::fs::read_to_string(&config).unwrap(), "v1 config\n");
        }
        let marker = ReleaseMarker::parse(&host.ok(&read_release_marker(vm, &restore)))
            .unwrap()
            .unwrap();
        assert_eq!(
            (
                marker.version.as_str(),
                marker.sha256.as_str(),
                marker.apply_id.as_str()
            ),
            ("1.0.0", sha1.as_str(), "apply-3")
        );
        assert_eq!(
            host.read("run/events"),
            format!("start 1.0.0\nstop 1.0.0\nstart {v2}\nstop {v2}\nstart 1.0.0\nstop 1.0.0\nstart 1.0.0\n")
        );
        assert!(host.read("run/started").starts_with("1.0.0|"));
        assert_eq!(
            host.read("hooks.log"),
            format!("before_stop 1.0.0\nafter_start 1.0.0\nbefore_stop {v2}\n")
        );

        // A release that is not on the host: refused before anything changes.
        let gone = RollbackTarget {
            version: "0.1.0".into(),
            ..target
        };
        let refused =
            host.fails(&rollback(vm, &host.ctx("0.1.0", "apply-4"), Some(&gone), TIME, false)[0]);
        assert!(
            refused.contains("release 0.1.0 is not installed"),
            "{refused}"
        );
        assert_eq!(host.current(), Path::new("releases/1.0.0"));

        host.assert_nothing_injected();
    }

    #[test]
    fn local_rollback_to_nothing_stops_the_release() {
        let host = Host::new(exec_vm());
        let vm = &host.vm;
        let ctx = host.ctx("1.0.0", "apply-1");
        assert!(host
            .fails(&switch_current(vm, &ctx))
            .contains("is not installed"));
        let (archive, sha) = host.artifact("one", "1.0.0");
        host.deliver(&ctx, &archive, &sha);
        host.ok(&switch_current(vm, &ctx));
        host.ok(&start(vm, &ctx).unwrap());
        let steps = rollback(vm, &ctx, None, TIME, false);
        let names: Vec<&str> = steps.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["rollback.stop"]);
        host.ok(&steps[0]);
        assert_eq!(host.read("run/events"), "start 1.0.0\nstop 1.0.0\n");
        host.assert_nothing_injected();
    }

    #[test]
    fn local_prune_keeps_the_newest_the_current_the_previous_and_the_rollback_release() {
        let host = Host::new(VmSpec {
            keep_releases: 2,
            ..exec_vm()
        });
        let vm = &host.vm;
        let (archive, sha) = host.artifact("one", "any");
        let versions = ["r1", "r2", "r3 x", "r4", "r5"];
        for version in versions {
            host.deliver(&host.ctx(version, "apply-0"), &archive, &sha);
        }
        host.ok(&switch_current(vm, &host.ctx("r1", "apply-a")));
        host.ok(&switch_current(vm, &host.ctx("r2", "apply-b")));
        let dir = host.install_dir();
        std::fs::create_dir_all(dir.join("releases/.tmp-r9")).unwrap();
        let base = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        let age = |path: PathBuf, minutes: u64| {
            let file = std::fs::File::open(&path).unwrap();
            file.set_modified(base + std::time::Duration::from_secs(60 * minutes))
                .unwrap();
        };
        for (minutes, version) in versions.iter().enumerate() {
            age(dir.join("releases").join(version), minutes as u64);
        }
        let artifacts = dir.join(".slipway/artifacts");
        age(artifacts.join(format!("{sha}.tar.gz")), 0);
        for (minutes, name) in ["a.tar.gz", "b.tar.gz", "c.tar.gz"].iter().enumerate() {
            std::fs::write(artifacts.join(name), "x").unwrap();
            age(artifacts.join(name), 10 + minutes as u64);
        }

        // The release a rollback would put back is kept too.
        let output = host.ok(&prune_releases(
            vm,
            &host.ctx("r2", "apply-b"),
            Some("r3 x"),
            None,
        ));
        assert_eq!(output, "");
        let output = host.ok(&prune_releases(vm, &host.ctx("r2", "apply-b"), None, None));
        assert_eq!(output, "slipway: removed release r3 x\n");
        let mut left: Vec<String> = std::fs::read_dir(dir.join("releases"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, ["r1", "r2", "r4", "r5"]);
        let mut kept: Vec<String> = std::fs::read_dir(&artifacts)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        kept.sort();
        assert_eq!(kept, ["b.tar.gz", "c.tar.gz"]);
        // Nothing to do a second time.
        assert_eq!(
            host.ok(&prune_releases(vm, &host.ctx("r2", "apply-b"), None, None)),
            ""
        );
        host.assert_nothing_injected();
    }

    #[test]
    fn local_scripts_never_write_or_delete_through_planted_links() {
        // The service's own directories are as the host has them (they may be
        // links an administrator made); what lies below them is checked.
        let mut vm = exec_vm();
        vm.config_files[0].destination = format!("{}/config 'd'/app.conf", vm.install_dir);
        let host = Host::new(vm);
        let vm = &host.vm;
        let ctx = host.ctx("1.0.0", "apply-1");
        let outside = host.tmp.path().join("outside");
        std::fs::create_dir_all(outside.join("keep")).unwrap();
        std::fs::write(outside.join("victim"), "precious").unwrap();
        let config_dir = host.install_dir().join("config 'd'");
        let link = |target: &Path, at: &Path| {
            std::fs::create_dir_all(at.parent().unwrap()).unwrap();
            std::os::unix::fs::symlink(target, at).unwrap();
        };

        // The config directory itself leads outside: nothing is written.
        link(&outside, &config_dir);
        let error = host.fails(&write_config_file(vm, &vm.config_files[0], &ctx));
        assert!(error.contains("leads outside"), "{error}");
        assert!(!outside.join("app.conf").exists());
        std::fs::remove_file(&config_dir).unwrap();

        // The file is a link to a file outside: replaced, not followed.
        link(&outside.join("victim"), &config_dir.join("app.conf"));
        host.ok(&write_config_file(vm, &vm.config_files[0], &ctx));
        assert_eq!(
            std::fs::read_to_string(outside.join("victim")).unwrap(),
            "precious"
        );
        let written = config_dir.join("app.conf");
        assert!(!std::fs::symlink_metadata(&written)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read_to_string(&written).unwrap(), CONFIG);

        // The file's name is a link to a directory: mv -T does not move into it.
        std::fs::remove_file(&written).unwrap();
        link(&outside.join("keep"), &written);
        host.ok(&write_config_file(vm, &vm.config_files[0], &ctx));
        assert_eq!(std::fs::read_dir(outside.join("keep")).unwrap().count(), 0);

        // A link in releases/ is never pruned or followed; releases itself as a
        // link stops every step that writes or deletes there.
        let (archive, sha) = host.artifact("one", "1.0.0");
        host.deliver(&ctx, &archive, &sha);
        host.ok(&switch_current(vm, &ctx));
        let releases = host.install_dir().join("releases");
        link(&outside, &releases.join("old"));
        let pruned = host.ok(&prune_releases(
            &VmSpec {
                keep_releases: 0,
                ..vm.clone()
            },
            &ctx,
            None,
            None,
        ));
        assert_eq!(pruned, "");
        assert!(outside.join("victim").exists() && releases.join("old").exists());

        let moved = host.tmp.path().join("releases-moved");
        std::fs::rename(&releases, &moved).unwrap();
        link(&outside, &releases);
        for step in [
            check_layout(vm, &ctx),
            install_release(vm, &ctx, &sha),
            switch_current(vm, &ctx),
            prune_releases(vm, &ctx, None, None),
            write_release_marker(vm, &ctx, &sha, TIME),
        ] {
            let error = host.fails(&step);
            assert!(
                error.contains("is a symbolic link"),
                "{}: {error}",
                step.name
            );
        }
        assert_eq!(
            std::fs::read_dir(&outside).unwrap().count(),
            2,
            "nothing added to or removed from the outside directory"
        );
        host.assert_nothing_injected();
    }
}
