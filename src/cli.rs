//! The command line: argument definitions and one function per command.
//!
//! This is the edge of the program: it reads files and state through the
//! library, renders results, and chooses exit codes. Commands accept
//! Terraform-style single-dash flags (`-out`, `-no-color`) as well as `--out`.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::{self, Backend as BackendConfig, Config, InputSources};
use crate::diagnostics;
use crate::plan::{self, planner, saved, States};
use crate::state::{
    decode_state, encode_state, lock_with_timeout, ops, Backend, LocalBackend, LockGuard,
    S3Backend, S3Settings, State,
};
use crate::views::{self, ViewFormat};

/// Exit code: success, no changes.
pub const EXIT_OK: u8 = 0;
/// Exit code: an error.
pub const EXIT_ERROR: u8 = 1;
/// Exit code: success, the plan has changes.
pub const EXIT_CHANGES: u8 = 2;
/// Exit code of `fmt -check` when files need formatting (as `terraform fmt -check`).
pub const EXIT_UNFORMATTED: u8 = 3;
/// Exit code of an apply stopped by Ctrl-C (or SIGTERM) in order: 128 + SIGINT.
pub const EXIT_INTERRUPTED: u8 = 130;

#[derive(Debug, Parser)]
#[command(
    name = "slipway",
    version,
    about = "Plan and apply application deployments to VM hosts (SSH) and AWS ECS",
    long_about = "slipway reads HCL files describing services, environments, rollout policies and \
deployments, compares them with the saved state, and shows exactly what would change and in \
which order, like `terraform plan`.\n\nFlags may be written with one dash or two: -out and --out \
are the same.",
    after_help = "Examples:\n  slipway validate examples/quickstart\n  slipway plan examples/vm-myapp -var-file examples/vm-myapp/vars/example.vars.hcl -environment dev\n  slipway plan -markdown > plan.md    # for a pull-request comment\n  slipway plan -out release.plan && slipway show release.plan"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check the configuration and the state backend, create the state directory, migrate state.
    #[command(
        after_help = "Examples:\n  slipway init examples/quickstart\n  slipway init -migrate-state     # after changing the backend block: copy every environment's state\n  slipway init -reconfigure       # after changing the backend block: use the new backend as it is\n\nslipway init records the backend it set up (.slipway/backend.json in the configuration\ndirectory). While the backend block differs from that record, plan, apply and the state\ncommands refuse to run, so that nothing is planned against an empty new backend."
    )]
    Init(InitArgs),
    /// Check the configuration: syntax, references, types, cycles. Reads no state.
    #[command(
        after_help = "Example:\n  slipway validate examples/vm-myapp -var-file examples/vm-myapp/vars/example.vars.hcl\n\nExit codes: 0 valid, 1 invalid."
    )]
    Validate(ConfigArgs),
    /// Rewrite *.hcl files in the canonical style (comments are kept).
    #[command(
        after_help = "Examples:\n  slipway fmt              # rewrite files in place\n  slipway fmt -check       # exit 3 and list files that need formatting\n  slipway fmt -recursive examples"
    )]
    Fmt(FmtArgs),
    /// Show what apply would change, and the order it would follow.
    #[command(
        after_help = "Examples:\n  slipway plan examples/vm-myapp -var-file prod.vars.hcl\n  slipway plan -json | jq .summary\n  slipway plan -markdown > comment.md\n  slipway plan -out release.plan\n\nExit codes (as terraform's -detailed-exitcode): 0 no changes, 1 error, 2 changes present."
    )]
    Plan(PlanArgs),
    /// Make the changes a plan shows: deploy to hosts in the scheduled order.
    #[command(
        after_help = "Examples:\n  slipway apply examples/quickstart                 # shows the plan, asks for yes\n  slipway apply examples/quickstart -auto-approve   # no question (CI)\n  slipway plan -out release.plan && slipway apply release.plan\n  slipway apply -json -auto-approve | jq -c .   # one JSON object per line (docs/apply-json.md)\n\nA protected environment also needs -approve ENVIRONMENT (or typing its name at the prompt).\nA rollout with an `approval` block stops after that step; `slipway approve DEPLOYMENT`\nthen `slipway apply` continue from the next step, `slipway reject DEPLOYMENT` rolls back.\nExit codes: 0 success, nothing to do, or paused at an approval; 1 error or failed deployment."
    )]
    Apply(ApplyArgs),
    /// Render a plan saved with `plan -out FILE`.
    #[command(
        after_help = "Examples:\n  slipway show release.plan\n  slipway show release.plan -json"
    )]
    Show(ShowArgs),
    /// Print the deployment dependency graph in Graphviz DOT.
    #[command(
        after_help = "Example:\n  slipway graph examples/vm-myapp -var-file examples/vm-myapp/vars/example.vars.hcl | dot -Tsvg > graph.svg"
    )]
    Graph(ConfigArgs),
    /// Print the configuration's outputs (sensitive ones are never printed).
    #[command(
        after_help = "Examples:\n  slipway output -dir examples/vm-myapp -var-file examples/vm-myapp/vars/example.vars.hcl\n  slipway output version -raw -dir examples/quickstart -var version=1.2.0\n  slipway output -json -dir examples/quickstart | jq .version.value\n\nOutputs are evaluated from the configuration and its variables (as `plan` shows them).\nA sensitive output prints as (sensitive), and as null in -json: slipway never prints a secret."
    )]
    Output(OutputArgs),
    /// Inspect and change saved state: list, show, pull, push, rm, history.
    #[command(
        subcommand,
        after_help = "Examples:\n  slipway state list examples/vm-myapp\n  slipway state show deployment.myapp-dev examples/vm-myapp\n  slipway state history deployment.myapp-production examples/vm-myapp\n  slipway state pull -environment dev examples/vm-myapp > dev.json\n  slipway state push dev.json\n  slipway state rm deployment.myapp-dev\n\nEvery state command works the same on the local and the s3 backend."
    )]
    State(StateCommand),
    /// Give the approval a paused rollout waits for; the next apply continues it.
    #[command(
        after_help = "Examples:\n  slipway approve deployment.web-production examples/vm-myapp\n  slipway approve web-production -gate release-manager\n\nA rollout with an `approval` block stops after the step it names and records in state\nthat it waits. approve records who approved and when (in state and its history); the\nnext `slipway apply` then continues the rollout from the following step. It changes\nno host or service by itself."
    )]
    Approve(ApprovalArgs),
    /// Refuse the approval a paused rollout waits for, and roll the rollout back.
    #[command(
        after_help = "Examples:\n  slipway reject deployment.web-production examples/vm-myapp\n  slipway reject web-production -gate release-manager -var-file prod.vars.hcl\n\nreject records who refused and when, then switches every host the rollout moved back to\nthe release it served before (ECS: all traffic back to the old service, the new one\nremoved). apply does not deploy the rejected version again; configure another version.\nIt reads the configuration (for hosts and credentials), so it takes -var and -var-file."
    )]
    Reject(RejectArgs),
    /// Put a deployment back on an earlier verified release, now, without a new rollout.
    #[command(
        after_help = "Examples:\n  slipway rollback deployment.web-production examples/vm-myapp -var-file prod.vars.hcl\n  slipway rollback web-production -to 1.7.0 -auto-approve -approve production\n\nrollback shows what it will do, asks for yes, then puts every host back on the release\nit keeps (nothing is built or transferred; each host leaves its target group, is switched,\nrestarted, health-checked and rejoins), or the ECS service back on the release's task\ndefinition. It goes to the newest release state records as deployed and verified before\nthe current one, or to -to VERSION. It is not a promotion: promote_from is not checked.\nNothing is changed unless every host keeps the release and can be reached.\nAfterwards apply does not deploy the version rolled back from again: configure another\nversion (or the one rolled back to). `slipway state history DEPLOYMENT` shows the rollback.\nExit codes: 0 rolled back (or nothing to do), 1 error or a host not rolled back."
    )]
    Rollback(RollbackArgs),
    /// Remove a lock left behind by a slipway process that is gone.
    #[command(
        name = "force-unlock",
        after_help = "Example:\n  slipway force-unlock 3f2a... -environment production\n\nOnly do this when you are sure no slipway process holds the lock: the lock id is in the error message of the command that found it."
    )]
    ForceUnlock(ForceUnlockArgs),
    /// Print slipway's version and the file format versions it reads and writes.
    #[command(after_help = "Example:\n  slipway version")]
    Version,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Copy the state of every environment from the backend recorded by the last init to the
    /// one the configuration names now (same serial, lineage and history).
    #[arg(long = "migrate-state")]
    pub migrate_state: bool,
    /// Use the backend the configuration names now, without copying any state to it.
    #[arg(long, conflicts_with = "migrate_state")]
    pub reconfigure: bool,
    /// Wait up to this long for state locks held by someone else (e.g. 30s, 5m).
    #[arg(long = "lock-timeout", value_name = "DURATION", default_value = "0s", value_parser = parse_lock_timeout)]
    pub lock_timeout: Duration,
}

#[derive(Debug, Args, Clone)]
pub struct ConfigArgs {
    /// Configuration directory (every *.hcl file in it is read).
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Set a variable: -var name=value (repeatable; wins over var files and SLIPWAY_VAR_name).
    #[arg(long = "var", value_name = "NAME=VALUE")]
    pub vars: Vec<String>,
    /// Read variables from an HCL file of name = value lines (repeatable).
    #[arg(long = "var-file", value_name = "FILE")]
    pub var_files: Vec<PathBuf>,
    /// No colours in the output (also when NO_COLOR is set or output is not a terminal).
    #[arg(long = "no-color")]
    pub no_color: bool,
}

#[derive(Debug, Args)]
pub struct FmtArgs {
    /// Directory or file to format.
    #[arg(default_value = ".")]
    pub path: PathBuf,
    /// Do not write; exit 3 when any file needs formatting.
    #[arg(long)]
    pub check: bool,
    /// Also format subdirectories.
    #[arg(long)]
    pub recursive: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum OutputFormat {
    Human,
    Markdown,
    Json,
}

#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Print only this output: its value as JSON (strings quoted), or with -raw as plain text.
    pub name: Option<String>,
    /// Configuration directory (every *.hcl file in it is read).
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub dir: PathBuf,
    /// Set a variable: -var name=value (repeatable; wins over var files and SLIPWAY_VAR_name).
    #[arg(long = "var", value_name = "NAME=VALUE")]
    pub vars: Vec<String>,
    /// Read variables from an HCL file of name = value lines (repeatable).
    #[arg(long = "var-file", value_name = "FILE")]
    pub var_files: Vec<PathBuf>,
    /// Print every output as one JSON object: {"NAME": {"value": ..., "sensitive": false}}.
    #[arg(long, conflicts_with = "raw")]
    pub json: bool,
    /// With NAME: print a string value without quotes (for shell scripts).
    #[arg(long, requires = "name")]
    pub raw: bool,
    #[arg(long = "no-color")]
    pub no_color: bool,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Save the plan to FILE for `slipway show` and `slipway apply FILE`.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "human")]
    pub format: OutputFormat,
    /// Same as -format json.
    #[arg(long)]
    pub json: bool,
    /// Same as -format markdown.
    #[arg(long)]
    pub markdown: bool,
    /// Read live state from hosts and ECS before planning, to show drift.
    #[arg(long)]
    pub refresh: bool,
    /// Plan only the deployments of this environment (repeatable).
    #[arg(long = "environment", value_name = "NAME")]
    pub environments: Vec<String>,
    /// Accepted for Terraform habits: plan always exits 0 (no changes), 1 (error) or
    /// 2 (changes present).
    #[arg(long = "detailed-exitcode")]
    pub detailed_exitcode: bool,
    /// -input=false: never ask anything (plan never does; accepted for CI scripts).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub input: Option<bool>,
    /// Accepted for Terraform habits: plan reads state without taking its lock (state
    /// writes are atomic, so a plan never reads half a write).
    #[arg(long = "lock-timeout", value_name = "DURATION", value_parser = parse_lock_timeout)]
    pub lock_timeout: Option<Duration>,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// A configuration directory, or a plan file saved with `plan -out FILE`.
    #[arg(default_value = ".")]
    pub target: PathBuf,
    /// With a plan file: the configuration directory it was made from.
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub dir: PathBuf,
    /// Set a variable: -var name=value. A saved plan carries its values: give only its
    /// sensitive ones again.
    #[arg(long = "var", value_name = "NAME=VALUE")]
    pub vars: Vec<String>,
    #[arg(long = "var-file", value_name = "FILE")]
    pub var_files: Vec<PathBuf>,
    /// Apply without asking for confirmation.
    #[arg(long = "auto-approve")]
    pub auto_approve: bool,
    /// -input=false: never ask; whatever would need an answer (confirmation, a protected
    /// environment) must come from -auto-approve and -approve, or apply stops before changing
    /// anything. Without it, apply asks only when standard input is a terminal.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub input: Option<bool>,
    /// Approve changes to this protected environment (repeatable).
    #[arg(long = "approve", value_name = "ENVIRONMENT")]
    pub approve: Vec<String>,
    /// Deployments of one wave run at most this many at a time.
    #[arg(long, default_value_t = 10)]
    pub parallelism: usize,
    /// Wait up to this long for a state lock held by someone else (e.g. 30s, 5m; default: fail at once).
    #[arg(long = "lock-timeout", value_name = "DURATION", default_value = "0s", value_parser = parse_lock_timeout)]
    pub lock_timeout: Duration,
    /// Apply only the deployments of this environment (repeatable). A saved plan
    /// applies the environments it was made for.
    #[arg(long = "environment", value_name = "NAME")]
    pub environments: Vec<String>,
    /// Read what hosts and ECS services really run first, then plan and apply what
    /// that plan shows, drift repairs included (not with a saved plan).
    #[arg(long)]
    pub refresh: bool,
    /// Machine-readable output: one JSON object per line on stdout (the plan, every
    /// progress event and heartbeat, the end), as docs/apply-json.md describes. Needs
    /// -auto-approve: it never asks.
    #[arg(long)]
    pub json: bool,
    #[arg(long = "no-color")]
    pub no_color: bool,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// A plan file written by `slipway plan -out FILE`.
    pub planfile: PathBuf,
    /// Print the plan as JSON.
    #[arg(long)]
    pub json: bool,
    /// Print the plan as markdown.
    #[arg(long)]
    pub markdown: bool,
    #[arg(long = "no-color")]
    pub no_color: bool,
}

#[derive(Debug, Subcommand)]
pub enum StateCommand {
    /// List tracked deployments: address, environment, version, status.
    #[command(after_help = "Example:\n  slipway state list examples/vm-myapp")]
    List(StateArgs),
    /// Show everything state records about one deployment.
    #[command(
        after_help = "Example:\n  slipway state show deployment.myapp-dev examples/vm-myapp"
    )]
    Show(StateShowArgs),
    /// Print the saved state of one environment, as stored, to stdout.
    #[command(
        after_help = "Examples:\n  slipway state pull -environment production examples/vm-myapp\n  slipway state pull -environment production > production.json   # a copy to inspect or keep\n\nWith a single environment in state, -environment may be left out."
    )]
    Pull(StateArgs),
    /// Replace the saved state of one environment with a state file.
    #[command(
        after_help = "Examples:\n  slipway state push production.json\n  slipway state push -force production.json   # also another lineage or an older serial\n\nThe environment is the file's \"environment\". Refused without -force when the saved state has another\nlineage (it is the state of something else) or a higher serial (the file is older). The pushed state\ngets a serial above both, and a state-push entry in its history."
    )]
    Push(StatePushArgs),
    /// Stop tracking a deployment, without touching its hosts or services.
    #[command(
        after_help = "Example:\n  slipway state rm deployment.myapp-dev\n\nThe deployment's targets keep running what they run; slipway forgets them. While the deployment is\nin the configuration, the next plan proposes to deploy it as new. Recorded in history as state-rm."
    )]
    Rm(StateRmArgs),
    /// The audit trail: who applied what, when, with which plan and versions, and how it ended.
    #[command(
        after_help = "Examples:\n  slipway state history examples/vm-myapp\n  slipway state history deployment.myapp-production examples/vm-myapp\n  slipway state history myapp-production -json\n\nDEPLOYMENT is deployment.NAME or NAME; with one argument that is a directory, it is DIR."
    )]
    History(StateHistoryArgs),
}

#[derive(Debug, Args)]
pub struct StateArgs {
    /// Configuration directory (for the backend settings).
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Only this environment.
    #[arg(long)]
    pub environment: Option<String>,
}

#[derive(Debug, Args)]
pub struct StateShowArgs {
    /// Deployment address, e.g. deployment.myapp-production.
    pub address: String,
    #[command(flatten)]
    pub state: StateArgs,
    /// Print as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct StatePushArgs {
    /// The state file to push (`-` reads stdin).
    pub file: PathBuf,
    /// Configuration directory (for the backend settings).
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Also replace a state of another lineage or a higher serial.
    #[arg(long)]
    pub force: bool,
    /// Wait up to this long for the state lock if someone else holds it (e.g. 30s, 5m).
    #[arg(long = "lock-timeout", value_name = "DURATION", default_value = "0s", value_parser = parse_lock_timeout)]
    pub lock_timeout: Duration,
}

#[derive(Debug, Args)]
pub struct StateRmArgs {
    /// Deployment address, e.g. deployment.myapp-dev (or just myapp-dev).
    pub address: String,
    #[command(flatten)]
    pub state: StateArgs,
    /// Wait up to this long for the state lock if someone else holds it (e.g. 30s, 5m).
    #[arg(long = "lock-timeout", value_name = "DURATION", default_value = "0s", value_parser = parse_lock_timeout)]
    pub lock_timeout: Duration,
}

#[derive(Debug, Args)]
pub struct StateHistoryArgs {
    /// Only the entries that changed this deployment (deployment.NAME or NAME).
    #[arg(value_name = "DEPLOYMENT")]
    pub first: Option<String>,
    /// Configuration directory (for the backend settings); default ".".
    #[arg(value_name = "DIR")]
    pub second: Option<PathBuf>,
    /// Only this environment.
    #[arg(long)]
    pub environment: Option<String>,
    /// Print as JSON: an array of history entries, each with its environment.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ApprovalArgs {
    /// The deployment that waits (deployment.NAME or NAME).
    pub deployment: String,
    /// Configuration directory (for the backend settings).
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// The approval's name; refused if the deployment waits for another one.
    #[arg(long)]
    pub gate: Option<String>,
    /// The environment whose state holds the deployment (default: the only one that does).
    #[arg(long)]
    pub environment: Option<String>,
    /// Wait up to this long for the state lock if someone else holds it (e.g. 30s, 5m).
    #[arg(long = "lock-timeout", value_name = "DURATION", default_value = "0s", value_parser = parse_lock_timeout)]
    pub lock_timeout: Duration,
}

#[derive(Debug, Args)]
pub struct RejectArgs {
    /// The deployment that waits (deployment.NAME or NAME).
    pub deployment: String,
    #[command(flatten)]
    pub config: ConfigArgs,
    /// The approval's name; refused if the deployment waits for another one.
    #[arg(long)]
    pub gate: Option<String>,
    /// Wait up to this long for the state lock if someone else holds it (e.g. 30s, 5m).
    #[arg(long = "lock-timeout", value_name = "DURATION", default_value = "0s", value_parser = parse_lock_timeout)]
    pub lock_timeout: Duration,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The deployment to put back (deployment.NAME or NAME).
    pub deployment: String,
    #[command(flatten)]
    pub config: ConfigArgs,
    /// The version to go back to (default: the newest verified release before the current one).
    #[arg(long = "to", value_name = "VERSION")]
    pub to: Option<String>,
    /// Do not ask for confirmation (CI, incident scripts).
    #[arg(long = "auto-approve")]
    pub auto_approve: bool,
    /// Approve a protected environment without the prompt: -approve NAME.
    #[arg(long = "approve", value_name = "ENVIRONMENT")]
    pub approve: Vec<String>,
    /// -input=false: never ask; confirmation and a protected environment must come from
    /// -auto-approve and -approve, or rollback stops before changing anything.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub input: Option<bool>,
    /// Hosts switched at the same time.
    #[arg(long, default_value_t = 10)]
    pub parallelism: usize,
    /// Wait up to this long for the state lock if someone else holds it (e.g. 30s, 5m).
    #[arg(long = "lock-timeout", value_name = "DURATION", default_value = "0s", value_parser = parse_lock_timeout)]
    pub lock_timeout: Duration,
}

#[derive(Debug, Args)]
pub struct ForceUnlockArgs {
    /// The lock id, as printed by the command that found the lock.
    pub lock_id: String,
    /// Configuration directory (for the backend settings).
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// The environment whose lock to remove (default: the one holding this id).
    #[arg(long)]
    pub environment: Option<String>,
}

/// Turn Terraform-style `-flag` into `--flag` for every long flag slipway has.
pub fn normalize_args(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    const LONG: &[&str] = &[
        "var",
        "var-file",
        "no-color",
        "check",
        "recursive",
        "out",
        "format",
        "json",
        "markdown",
        "refresh",
        "environment",
        "help",
        "version",
        "auto-approve",
        "approve",
        "parallelism",
        "dir",
        "lock-timeout",
        "migrate-state",
        "reconfigure",
        "force",
        "gate",
        "detailed-exitcode",
        "input",
        "raw",
        "to",
    ];
    args.into_iter()
        .map(|arg| {
            let Some(text) = arg.to_str() else { return arg };
            if text.starts_with("--") || !text.starts_with('-') || text.len() < 3 {
                return arg;
            }
            let name = text[1..].split('=').next().unwrap_or("");
            if LONG.contains(&name) {
                OsString::from(format!("-{text}"))
            } else {
                arg
            }
        })
        .collect()
}

fn use_color(no_color: bool) -> bool {
    !no_color && std::env::var_os("NO_COLOR").is_none() && std::io::stdout().is_terminal()
}

pub fn run(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::Init(args) => init(&args),
        Command::Validate(args) => validate(&args),
        Command::Fmt(args) => fmt(&args),
        Command::Plan(args) => plan_command(&args),
        Command::Apply(args) => apply_command(&args),
        Command::Show(args) => show(&args),
        Command::Graph(args) => graph(&args),
        Command::Output(args) => output(&args),
        Command::State(StateCommand::List(args)) => state_list(&args),
        Command::State(StateCommand::Show(args)) => state_show(&args),
        Command::State(StateCommand::Pull(args)) => state_pull(&args),
        Command::State(StateCommand::Push(args)) => state_push(&args),
        Command::State(StateCommand::Rm(args)) => state_rm(&args),
        Command::State(StateCommand::History(args)) => state_history(&args),
        Command::Approve(args) => approve(&args),
        Command::Reject(args) => reject(&args),
        Command::Rollback(args) => rollback(&args),
        Command::ForceUnlock(args) => force_unlock(&args),
        Command::Version => {
            println!("slipway {}", env!("CARGO_PKG_VERSION"));
            println!("plan format {}", plan::FORMAT_VERSION);
            println!("state format {}", crate::state::STATE_VERSION);
            Ok(EXIT_OK)
        }
    }
}

/// Load the configuration, printing diagnostics; `None` when it has errors.
fn load_config(args: &ConfigArgs) -> Option<Config> {
    load_config_with_sources(args).map(|(config, _)| config)
}

fn stderr_color(no_color: bool) -> bool {
    !no_color && std::env::var_os("NO_COLOR").is_none() && std::io::stderr().is_terminal()
}

fn load_config_with_sources(args: &ConfigArgs) -> Option<(Config, diagnostics::SourceMap)> {
    let inputs = InputSources::from_process(args.vars.clone(), args.var_files.clone());
    let loaded = config::load(&args.dir, &inputs);
    if !loaded.diagnostics.is_empty() {
        eprint!(
            "{}",
            diagnostics::render(
                &loaded.sources,
                &loaded.diagnostics,
                stderr_color(args.no_color)
            )
        );
    }
    Some((loaded.config?, loaded.sources))
}

/// The state backend the configuration names.
///
/// Refused while it differs from the backend `slipway init` recorded for this
/// configuration directory, until init is run again (to migrate the state, or
/// to take the new backend as it is): planning against an empty new backend
/// would deploy everything as new.
pub fn open_backend(
    config_dir: &Path,
    backend: &BackendConfig,
) -> anyhow::Result<Box<dyn Backend>> {
    if let Some(recorded) = recorded_backend(config_dir)? {
        if &recorded != backend {
            bail!(
                "the state backend changed since `slipway init`: it was {}, the configuration now \
                 names {}. Run `slipway init -migrate-state {dir}` to copy the state of every \
                 environment to the new backend, or `slipway init -reconfigure {dir}` to use it as it is",
                describe_backend_config(config_dir, &recorded),
                describe_backend_config(config_dir, backend),
                dir = config_dir.display()
            );
        }
    }
    open_backend_unchecked(config_dir, backend)
}

fn open_backend_unchecked(
    config_dir: &Path,
    backend: &BackendConfig,
) -> anyhow::Result<Box<dyn Backend>> {
    match backend {
        BackendConfig::Local { path } => Ok(Box::new(LocalBackend::new(config_dir.join(path)))),
        BackendConfig::S3 {
            bucket,
            prefix,
            region,
            endpoint,
            profile,
        } => Ok(Box::new(S3Backend::open(&S3Settings {
            bucket: bucket.clone(),
            prefix: prefix.clone(),
            region: region.clone(),
            endpoint: endpoint.clone(),
            profile: profile.clone(),
        })?)),
    }
}

/// Where `slipway init` records the backend it set up, in the configuration directory.
const BACKEND_RECORD: &str = ".slipway/backend.json";
/// The runner's content-addressed artifact cache, under the configuration directory.
const ARTIFACT_CACHE: &str = ".slipway/artifacts";

/// The backend the last `slipway init` set up for `config_dir`, if any.
fn recorded_backend(config_dir: &Path) -> anyhow::Result<Option<BackendConfig>> {
    let path = config_dir.join(BACKEND_RECORD);
    let text = match std::fs::read(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error).with_context(|| format!("cannot read {}", path.display())),
    };
    let recorded = serde_json::from_slice(&text).with_context(|| {
        format!(
            "{} is unreadable; delete it and run `slipway init` again",
            path.display()
        )
    })?;
    Ok(Some(recorded))
}

fn record_backend(config_dir: &Path, backend: &BackendConfig) -> anyhow::Result<()> {
    let path = config_dir.join(BACKEND_RECORD);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let mut text = serde_json::to_vec_pretty(backend)?;
    text.push(b'\n');
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// A backend block in words, without connecting to it.
fn describe_backend_config(config_dir: &Path, backend: &BackendConfig) -> String {
    match backend {
        BackendConfig::Local { path } => LocalBackend::new(config_dir.join(path)).describe(),
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

fn parse_lock_timeout(text: &str) -> Result<Duration, String> {
    config::units::parse_duration(text).map_err(|e| e.to_string())
}

/// Take the lock of `environment`, waiting up to `timeout` (saying so once).
/// A lock whose holder provably no longer runs (same host name as this
/// machine, no process with its pid) is taken over, saying so.
fn take_lock(
    backend: &dyn Backend,
    environment: &str,
    operation: &str,
    timeout: Duration,
) -> anyhow::Result<LockGuard> {
    if let Some(holder) = backend.current_lock(environment)? {
        if crate::state::lock::holder_is_gone(&holder) {
            backend.force_unlock(environment, &holder.id)?;
            eprintln!(
                "Took over the lock of environment {environment}: its holder ({holder}) no longer runs on this machine."
            );
        }
    }
    Ok(lock_with_timeout(
        backend,
        environment,
        operation,
        timeout,
        |holder| {
            eprintln!(
                "Waiting up to {:.0}s for the lock of environment {environment}, held by {holder}.",
                timeout.as_secs_f64()
            )
        },
    )?)
}

/// Read the state of every environment the plan needs, plus every
/// environment that has a state file.
fn read_states(config: &Config, backend: &dyn Backend) -> anyhow::Result<States> {
    let mut names = planner::environments_needed(config);
    names.extend(backend.environments()?);
    let mut states = BTreeMap::new();
    for name in names {
        let state = backend.read(&name)?;
        states.insert(name, state);
    }
    Ok(states)
}

fn init(args: &InitArgs) -> anyhow::Result<u8> {
    let Some(config) = load_config(&args.config) else {
        return Ok(EXIT_ERROR);
    };
    let dir = &args.config.dir;
    let configured = &config.backend;
    let recorded = recorded_backend(dir)?;
    if args.migrate_state {
        match &recorded {
            None => bail!(
                "-migrate-state: no earlier backend is recorded for {dir} (slipway init records the \
                 backend it sets up in {BACKEND_RECORD}), so there is nothing to migrate from. \
                 Put the previous backend block back, run `slipway init {dir}`, then change the \
                 block and run `slipway init -migrate-state {dir}`",
                dir = dir.display()
            ),
            Some(previous) if previous == configured => println!(
                "The backend is the one the last init set up ({}): there is nothing to migrate.",
                describe_backend_config(dir, configured)
            ),
            Some(previous) => migrate_state(dir, previous, configured, args.lock_timeout)?,
        }
    } else if let Some(previous) = recorded.as_ref().filter(|r| *r != configured) {
        if !args.reconfigure {
            bail!(
                "the state backend changed since the last init: it was {}, the configuration now \
                 names {}. Run `slipway init -migrate-state {dir}` to copy the state of every \
                 environment to the new backend, or `slipway init -reconfigure {dir}` to use it as \
                 it is (the old state stays where it is)",
                describe_backend_config(dir, previous),
                describe_backend_config(dir, configured),
                dir = dir.display()
            );
        }
    }
    let backend = open_backend_unchecked(dir, configured)?;
    if let BackendConfig::Local { path } = configured {
        let state_dir = dir.join(path);
        std::fs::create_dir_all(&state_dir).with_context(|| {
            format!("cannot create the state directory {}", state_dir.display())
        })?;
    }
    let states = read_states(&config, backend.as_ref())?;
    println!(
        "Configuration: {} deployment(s), {} environment(s), {} rollout(s).",
        config.deployments.len(),
        config.environments.len(),
        config.rollouts.len()
    );
    println!("State backend: {}.", backend.describe());
    for (name, state) in &states {
        match state {
            Some(state) => println!(
                "  {name}: serial {}, lineage {}",
                state.serial, state.lineage
            ),
            None => println!("  {name}: no state yet"),
        }
    }
    record_backend(dir, configured)?;
    println!("slipway is ready. Next: slipway plan {}", dir.display());
    Ok(EXIT_OK)
}

/// `init -migrate-state`: copy every environment from `previous` to `configured`.
fn migrate_state(
    dir: &Path,
    previous: &BackendConfig,
    configured: &BackendConfig,
    lock_timeout: Duration,
) -> anyhow::Result<()> {
    let from = open_backend_unchecked(dir, previous)?;
    let to = open_backend_unchecked(dir, configured)?;
    println!(
        "Migrating state from {} to {}.",
        from.describe(),
        to.describe()
    );
    let migrated = ops::migrate(from.as_ref(), to.as_ref(), lock_timeout, |holder| {
        eprintln!(
            "Waiting up to {:.0}s for the lock of environment {}, held by {holder}.",
            lock_timeout.as_secs_f64(),
            holder.environment
        )
    })?;
    if migrated.is_empty() {
        println!("  {} holds no state: nothing to copy.", from.describe());
        return Ok(());
    }
    for environment in &migrated {
        println!(
            "  {}: serial {}, lineage {}, {} history entr{} {}",
            environment.environment,
            environment.serial,
            environment.lineage,
            environment.history_entries,
            if environment.history_entries == 1 {
                "y"
            } else {
                "ies"
            },
            if environment.already_there {
                "(already there)"
            } else {
                "copied"
            }
        );
    }
    println!(
        "Migrated {} environment(s). The state in {} was left as it was; delete it once you have \
         checked the new backend.",
        migrated.len(),
        from.describe()
    );
    Ok(())
}

fn validate(args: &ConfigArgs) -> anyhow::Result<u8> {
    let Some(config) = load_config(args) else {
        return Ok(EXIT_ERROR);
    };
    println!(
        "The configuration is valid: {} deployment(s) across {} environment(s).",
        config.deployments.len(),
        config.environments.len()
    );
    exit_without_freeing(config);
    Ok(EXIT_OK)
}

/// The process ends right after this command: freeing a configuration of
/// thousands of deployments piece by piece would only cost time.
fn exit_without_freeing<T>(value: T) {
    std::mem::forget(value);
}

fn graph(args: &ConfigArgs) -> anyhow::Result<u8> {
    let Some(config) = load_config(args) else {
        return Ok(EXIT_ERROR);
    };
    print!("{}", crate::graph::DeploymentGraph::build(&config).to_dot());
    Ok(EXIT_OK)
}

fn output(args: &OutputArgs) -> anyhow::Result<u8> {
    let config_args = ConfigArgs {
        dir: args.dir.clone(),
        vars: args.vars.clone(),
        var_files: args.var_files.clone(),
        no_color: args.no_color,
    };
    // `slipway output DIR`, as other commands take their directory: say how.
    if let Some(name) = args.name.as_deref().filter(|n| Path::new(n).is_dir()) {
        if args.dir == Path::new(".") {
            bail!(
                "{name} is a directory: pass -dir {name} to read its configuration \
                 (output's argument is the name of one output)"
            );
        }
    }
    let Some(config) = load_config(&config_args) else {
        return Ok(EXIT_ERROR);
    };
    let outputs = plan::planner::output_values(&config);
    let Some(name) = &args.name else {
        print!("{}", crate::views::outputs::render(&outputs, args.json));
        return Ok(EXIT_OK);
    };
    let Some(output) = outputs.iter().find(|o| &o.name == name) else {
        let mut message = format!(
            "the configuration in {} has no output {name:?}",
            args.dir.display()
        );
        if let Some(close) =
            crate::diagnostics::did_you_mean(name, outputs.iter().map(|o| o.name.as_str()))
        {
            message.push_str(&format!("; did you mean {close:?}?"));
        }
        bail!(message);
    };
    if output.sensitive {
        bail!("output {name:?} is sensitive: slipway never prints a sensitive value");
    }
    println!(
        "{}",
        crate::views::outputs::render_value(&output.value, args.raw)
    );
    Ok(EXIT_OK)
}

/// Pin the remote artifacts the plan will deploy to the digests their
/// sources hold now (see `artifact::remote`); `false` after printing why one
/// cannot be fetched.
fn pin_artifacts(
    config: &mut Config,
    options: &plan::PlanOptions,
    config_dir: &Path,
) -> anyhow::Result<bool> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let pinned = runtime.block_on(crate::artifact::remote::pin_remote_artifacts(
        config,
        options,
        &config_dir.join(ARTIFACT_CACHE),
    ));
    match pinned {
        Ok(()) => Ok(true),
        Err(errors) => {
            for error in errors {
                eprintln!("Error: {error}");
            }
            eprintln!("Nothing was planned or changed: plan pins every remote artifact to a digest before it decides anything.");
            Ok(false)
        }
    }
}

fn plan_command(args: &PlanArgs) -> anyhow::Result<u8> {
    let inputs =
        InputSources::from_process(args.config.vars.clone(), args.config.var_files.clone());
    let selected: Option<BTreeSet<String>> =
        (!args.environments.is_empty()).then(|| args.environments.iter().cloned().collect());
    let Some((mut config, sources)) = load_with_inputs(
        &args.config.dir,
        &inputs,
        &[],
        selected.as_ref(),
        args.config.no_color,
    ) else {
        return Ok(EXIT_ERROR);
    };
    let backend = open_backend(&args.config.dir, &config.backend)?;
    let recorded = read_states(&config, backend.as_ref())?;
    let mut states = recorded.clone();
    let observations = if args.refresh {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        let observations = runtime.block_on(crate::apply::refresh::observe(&config, &states));
        crate::apply::refresh::fold_into_states(&mut states, &observations);
        Some(observations)
    } else {
        None
    };
    let mut options = plan::PlanOptions {
        environments: (!args.environments.is_empty())
            .then(|| args.environments.iter().cloned().collect()),
        ..Default::default()
    };
    crate::apply::refresh::read_live(&config, &states, &mut options);
    if let Some(only) = &options.environments {
        let known = planner::environments_needed(&config);
        if let Some(unknown) = only.iter().find(|name| !known.contains(*name)) {
            bail!(
                "-environment {unknown}: no such environment; known: {}",
                known.into_iter().collect::<Vec<_>>().join(", ")
            );
        }
    }
    if !pin_artifacts(&mut config, &options, &args.config.dir)? {
        return Ok(EXIT_ERROR);
    }
    let mut plan = match planner::plan(&config, &states, &options) {
        Ok(plan) => plan,
        Err(found) => {
            eprint!(
                "{}",
                diagnostics::render(&sources, &found, stderr_color(args.config.no_color))
            );
            return Ok(EXIT_ERROR);
        }
    };
    if let Some(observations) = &observations {
        crate::apply::refresh::add_drift_reasons(&mut plan, &recorded, observations);
    }
    let format = if args.json {
        OutputFormat::Json
    } else if args.markdown {
        OutputFormat::Markdown
    } else {
        args.format
    };
    let view = match format {
        OutputFormat::Human => ViewFormat::Human {
            color: use_color(args.config.no_color),
        },
        OutputFormat::Markdown => ViewFormat::Markdown,
        OutputFormat::Json => ViewFormat::Json,
    };
    print!("{}", views::render(&plan, view));
    if let Some(out) = &args.out {
        saved::write(out, &plan)?;
        eprintln!(
            "Saved the plan to {}. Inspect it with: slipway show {}",
            out.display(),
            out.display()
        );
        eprintln!("{}", saved::how_to_apply(&plan, &out.display().to_string()));
    }
    let code = if plan.has_changes() {
        EXIT_CHANGES
    } else {
        EXIT_OK
    };
    exit_without_freeing((config, sources, recorded, states, plan));
    Ok(code)
}

fn show(args: &ShowArgs) -> anyhow::Result<u8> {
    let plan = saved::read(&args.planfile)?;
    let view = if args.json {
        ViewFormat::Json
    } else if args.markdown {
        ViewFormat::Markdown
    } else {
        ViewFormat::Human {
            color: use_color(args.no_color),
        }
    };
    print!("{}", views::render(&plan, view));
    Ok(EXIT_OK)
}

fn fmt(args: &FmtArgs) -> anyhow::Result<u8> {
    let mut files = Vec::new();
    collect_hcl_files(&args.path, args.recursive, &mut files)?;
    let mut unformatted = Vec::new();
    let mut failed = false;
    for file in files {
        let source = std::fs::read_to_string(&file)
            .with_context(|| format!("cannot read {}", file.display()))?;
        match crate::fmt::format_source(&source) {
            Ok(formatted) if formatted != source => {
                if !args.check {
                    std::fs::write(&file, &formatted)
                        .with_context(|| format!("cannot write {}", file.display()))?;
                }
                println!("{}", file.display());
                unformatted.push(file);
            }
            Ok(_) => {}
            Err(error) => {
                eprintln!("{}: {error}", file.display());
                failed = true;
            }
        }
    }
    if failed {
        return Ok(EXIT_ERROR);
    }
    Ok(if args.check && !unformatted.is_empty() {
        EXIT_UNFORMATTED
    } else {
        EXIT_OK
    })
}

fn collect_hcl_files(path: &Path, recursive: bool, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    if path.is_file() {
        out.push(path.to_path_buf());
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
        .with_context(|| format!("cannot read directory {}", path.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for entry in entries {
        if entry.is_dir() && recursive {
            collect_hcl_files(&entry, recursive, out)?;
        } else if entry.extension().is_some_and(|e| e == "hcl") {
            out.push(entry);
        }
    }
    Ok(())
}

/// The backend for state commands, from the configuration's `slipway` block
/// (which needs no variables).
fn state_backend(dir: &Path) -> anyhow::Result<Box<dyn Backend>> {
    match config::load_backend_only(dir) {
        Ok(backend) => open_backend(dir, &backend),
        Err((sources, found)) => {
            eprint!(
                "{}",
                diagnostics::render(&sources, &found, stderr_color(false))
            );
            bail!(
                "cannot read the state backend from the configuration in {}",
                dir.display()
            )
        }
    }
}

fn state_list(args: &StateArgs) -> anyhow::Result<u8> {
    let backend = state_backend(&args.dir)?;
    let environments = match &args.environment {
        Some(name) => vec![name.clone()],
        None => backend.environments()?,
    };
    for environment in environments {
        let Some(state) = backend.read(&environment)? else {
            continue;
        };
        for (address, deployment) in &state.deployments {
            println!(
                "{address}\t{environment}\t{}\t{}",
                deployment.version,
                serde_json::to_value(&deployment.status)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default()
            );
        }
    }
    Ok(EXIT_OK)
}

fn state_show(args: &StateShowArgs) -> anyhow::Result<u8> {
    let backend = state_backend(&args.state.dir)?;
    let environments = match &args.state.environment {
        Some(name) => vec![name.clone()],
        None => backend.environments()?,
    };
    for environment in environments {
        let Some(state) = backend.read(&environment)? else {
            continue;
        };
        if let Some(deployment) = state.deployments.get(&args.address) {
            if args.json {
                println!("{}", serde_json::to_string_pretty(deployment)?);
            } else {
                println!(
                    "# {} (environment {environment}, state serial {})",
                    args.address, state.serial
                );
                print!("{}", describe_deployment(deployment));
            }
            return Ok(EXIT_OK);
        }
    }
    Err(anyhow!(
        "{} is not in state; list what is tracked with: slipway state list",
        args.address
    ))
}

/// The one environment whose state tracks `address`, among `only` (when
/// given) or every environment with state.
fn environment_tracking(
    backend: &dyn Backend,
    address: &str,
    only: Option<&str>,
) -> anyhow::Result<String> {
    let candidates = match only {
        Some(name) => vec![name.to_string()],
        None => backend.environments()?,
    };
    let mut found = Vec::new();
    for environment in candidates {
        if backend
            .read(&environment)?
            .is_some_and(|state| state.deployments.contains_key(address))
        {
            found.push(environment);
        }
    }
    match found.as_slice() {
        [one] => Ok(one.clone()),
        [] => bail!("{address} is not in state; list what is tracked with: slipway state list"),
        several => bail!(
            "{address} is in the state of several environments ({}): choose one with -environment NAME",
            several.join(", ")
        ),
    }
}

fn approve(args: &ApprovalArgs) -> anyhow::Result<u8> {
    let address = ops::deployment_address(&args.deployment);
    let backend = state_backend(&args.dir)?;
    let environment =
        environment_tracking(backend.as_ref(), &address, args.environment.as_deref())?;
    let who = crate::state::lock::Approver::of(backend.as_ref());
    let lock = take_lock(backend.as_ref(), &environment, "approve", args.lock_timeout)?;
    let decided = ops::decide_approval(
        backend.as_ref(),
        &environment,
        &address,
        args.gate.as_deref(),
        crate::state::ApprovalStatus::Approved,
        &who,
    );
    lock.release()?;
    let record = decided.map_err(|message| anyhow!("{message}; nothing was changed"))?;
    println!(
        "Approved \"{}\" for {address} ({}), by {}. Run `slipway apply` to continue the rollout from step {}.",
        record.name,
        record.version,
        record.decided_by.as_deref().unwrap_or("?"),
        record.after_step + 1
    );
    Ok(EXIT_OK)
}

fn reject(args: &RejectArgs) -> anyhow::Result<u8> {
    let address = ops::deployment_address(&args.deployment);
    let Some((config, _)) = load_config_with_sources(&args.config) else {
        return Ok(EXIT_ERROR);
    };
    let Some(deployment) = config.deployments.get(&address) else {
        bail!(
            "{address} is not in the configuration in {}",
            args.config.dir.display()
        );
    };
    let environment = planner::environment_state_name(&deployment.environment);
    let is_ecs = config
        .environment_of(deployment)
        .is_some_and(|e| e.ecs_cluster.is_some() && deployment.runs_on_ecs(e));
    let backend: std::sync::Arc<dyn Backend> =
        open_backend(&args.config.dir, &config.backend)?.into();
    let who = crate::state::lock::Approver::of(backend.as_ref());
    let lock = take_lock(backend.as_ref(), &environment, "reject", args.lock_timeout)?;
    let record = ops::decide_approval(
        backend.as_ref(),
        &environment,
        &address,
        args.gate.as_deref(),
        crate::state::ApprovalStatus::Rejected,
        &who,
    )
    .map_err(|message| anyhow!("{message}; nothing was changed"))?;
    println!(
        "Rejected \"{}\" for {address} ({}). Rolling back.",
        record.name, record.version
    );
    let state = backend
        .read(&environment)?
        .ok_or_else(|| anyhow!("the state of environment {environment} disappeared"))?;
    let recorder = crate::apply::Recorder::new(backend.clone(), state);
    let options = crate::apply::ApplyOptions {
        parallelism: 1,
        apply_id: uuid::Uuid::new_v4().to_string(),
        who: crate::state::lock::current_user(),
        artifact_cache: args.config.dir.join(ARTIFACT_CACHE),
    };
    let progress =
        crate::apply::Progress::new(std::io::stderr().is_terminal() && !args.config.no_color);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let config = std::sync::Arc::new(config);
    let outcome = runtime.block_on(async {
        if is_ecs {
            crate::apply::ecs::reject_deployment(&config, &address, &recorder, &options, &progress)
                .await
        } else {
            crate::apply::vm::reject_deployment(&config, &address, &recorder, &options, &progress)
                .await
        }
    });
    let (result, failures) = match &outcome {
        Ok(outcome) if outcome.failures.is_empty() => ("rolled_back", Vec::new()),
        Ok(outcome) => ("failed", outcome.failures.clone()),
        Err(error) => ("failed", vec![format!("{address}: {error}")]),
    };
    recorder.update(|state| {
        if let Some(entry) = state
            .history
            .iter_mut()
            .rev()
            .find(|e| e.operation == "reject")
        {
            entry.result = result.to_string();
            entry.finished_at = Some(crate::state::lock::now_rfc3339());
        }
    })?;
    drop(lock);
    for failure in &failures {
        println!("  error: {failure}");
    }
    if failures.is_empty() {
        let hosts = outcome.map(|o| o.hosts_rolled_back).unwrap_or(0);
        println!(
            "Rolled back {address}{}. apply will not deploy {} again; configure another version.",
            if is_ecs {
                String::new()
            } else {
                format!(" ({hosts} host(s))")
            },
            record.version
        );
        Ok(EXIT_OK)
    } else {
        if is_ecs {
            println!("State records the service as ECS runs it; `slipway plan -refresh` shows where it stands.");
        } else {
            println!("State records every host's outcome; `slipway plan` shows where each stands.");
        }
        Ok(EXIT_ERROR)
    }
}

fn rollback(args: &RollbackArgs) -> anyhow::Result<u8> {
    let address = ops::deployment_address(&args.deployment);
    let Some((config, _)) = load_config_with_sources(&args.config) else {
        return Ok(EXIT_ERROR);
    };
    let Some(deployment) = config.deployments.get(&address) else {
        bail!(
            "{address} is not in the configuration in {}; nothing was changed",
            args.config.dir.display()
        );
    };
    let environment_config = config
        .environment_of(deployment)
        .ok_or_else(|| anyhow!("{address}: its environment is not in the configuration"))?;
    let environment = planner::environment_state_name(&deployment.environment);
    let hosts: Vec<String> = environment_config
        .vm_hosts
        .as_ref()
        .map(|h| h.hosts.clone())
        .unwrap_or_default();
    let backend: std::sync::Arc<dyn Backend> =
        open_backend(&args.config.dir, &config.backend)?.into();
    let lock = take_lock(
        backend.as_ref(),
        &environment,
        "rollback",
        args.lock_timeout,
    )?;
    let state = backend.read(&environment)?.ok_or_else(|| {
        anyhow!(
            "environment {environment} has no state: nothing was deployed, nothing to roll back"
        )
    })?;
    let saved = state.deployments.get(&address).ok_or_else(|| {
        anyhow!("{address} is not in the state of environment {environment}: nothing was deployed, nothing to roll back")
    })?;
    let plan = crate::plan::rollback::plan_rollback(
        &address,
        &environment,
        saved,
        &hosts,
        args.to.as_deref(),
    )
    .map_err(|message| anyhow!("{message}; nothing was changed"))?;
    print!("{}", config.mask(&plan.render()));
    if plan.is_empty() {
        println!(
            "\nNothing to roll back: {address} already serves {}.",
            plan.to.version
        );
        return Ok(EXIT_OK);
    }
    let interactive = args.input != Some(false) && std::io::stdin().is_terminal();
    if environment_config.protected && !args.approve.contains(&environment) {
        if !interactive {
            bail!("environment {environment} is protected: approve it with -approve {environment}; nothing was changed");
        }
        let answer = prompt(&format!(
            "Environment {environment} is protected. Type its name to approve: "
        ))?;
        if answer != environment {
            println!("Rollback cancelled: {environment} was not approved. Nothing was changed.");
            return Ok(EXIT_ERROR);
        }
    }
    if !args.auto_approve {
        if !interactive {
            bail!("rollback needs confirmation: pass -auto-approve, or run it from a terminal without -input=false; nothing was changed");
        }
        let answer = prompt("Do you want to roll back? Only 'yes' will be accepted: ")?;
        if answer != "yes" {
            println!("Rollback cancelled. Nothing was changed.");
            return Ok(EXIT_ERROR);
        }
    }
    let recorder = crate::apply::Recorder::new(backend.clone(), state.clone());
    let options = crate::apply::ApplyOptions {
        parallelism: args.parallelism.max(1),
        apply_id: uuid::Uuid::new_v4().to_string(),
        who: crate::state::lock::current_user(),
        artifact_cache: args.config.dir.join(ARTIFACT_CACHE),
    };
    println!("\nRolling back (apply id {}).", options.apply_id);
    let progress =
        crate::apply::Progress::new(std::io::stderr().is_terminal() && !args.config.no_color);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    crate::state::lock::stop_gracefully_on_interrupt(true);
    let outcome = runtime.block_on(async {
        match &plan.target {
            crate::plan::rollback::RollbackTarget::Ecs { .. } => {
                crate::apply::ecs::roll_back_to_release(
                    &config, &plan, &recorder, &options, &progress,
                )
                .await
            }
            crate::plan::rollback::RollbackTarget::Vm { .. } => {
                crate::apply::vm::roll_back_to_release(
                    &config, &plan, &recorder, &options, &progress,
                )
                .await
            }
        }
    });
    crate::state::lock::stop_gracefully_on_interrupt(false);
    crate::apply::rollback::record_end(&recorder, &plan, &options, &outcome)?;
    drop(lock);
    match outcome {
        Err(error) => {
            println!("  error: {}", config.mask(&error));
            Ok(EXIT_ERROR)
        }
        Ok(outcome) if outcome.failures.is_empty() => {
            let what = match &plan.target {
                crate::plan::rollback::RollbackTarget::Vm { .. } => {
                    format!("{} host(s)", outcome.hosts_rolled_back)
                }
                crate::plan::rollback::RollbackTarget::Ecs { .. } => "the ECS service".to_string(),
            };
            println!(
                "\nRolled back {address} to {} ({what}). apply will not deploy {} again: configure another version.",
                plan.to.version, plan.from_version
            );
            Ok(EXIT_OK)
        }
        Ok(outcome) => {
            for failure in &outcome.failures {
                println!("  error: {}", config.mask(failure));
            }
            if outcome.interrupted {
                println!("\nRollback interrupted: the hosts in flight finished and are recorded. Run the same `slipway rollback` again to finish it.");
                Ok(EXIT_INTERRUPTED)
            } else {
                println!("\nRollback of {address} to {} failed on some targets; state records each host's outcome. Fix them and run `slipway rollback` again: hosts already back are left alone.", plan.to.version);
                Ok(EXIT_ERROR)
            }
        }
    }
}

fn force_unlock(args: &ForceUnlockArgs) -> anyhow::Result<u8> {
    let backend = state_backend(&args.dir)?;
    let environment = match &args.environment {
        Some(environment) => environment.clone(),
        None => {
            let mut holder = None;
            for environment in backend.environments()? {
                if backend
                    .current_lock(&environment)?
                    .is_some_and(|lock| lock.id == args.lock_id)
                {
                    holder = Some(environment);
                }
            }
            holder.ok_or_else(|| anyhow!("no environment is locked with id {}; pass -environment NAME if the state file does not exist yet", args.lock_id))?
        }
    };
    backend.force_unlock(&environment, &args.lock_id)?;
    println!(
        "Removed lock {} of environment {environment}.",
        args.lock_id
    );
    Ok(EXIT_OK)
}

/// The environment a single-environment state command works on: the one
/// given, or the only one with state.
fn one_environment(backend: &dyn Backend, given: Option<&str>) -> anyhow::Result<String> {
    if let Some(name) = given {
        return Ok(name.to_string());
    }
    let environments = backend.environments()?;
    match environments.as_slice() {
        [only] => Ok(only.clone()),
        [] => bail!("{} holds no state yet", backend.describe()),
        several => bail!(
            "{} holds the state of several environments ({}): choose one with -environment NAME",
            backend.describe(),
            several.join(", ")
        ),
    }
}

fn state_pull(args: &StateArgs) -> anyhow::Result<u8> {
    use std::io::Write as _;
    let backend = state_backend(&args.dir)?;
    let environment = one_environment(backend.as_ref(), args.environment.as_deref())?;
    let Some(state) = backend.read(&environment)? else {
        bail!(
            "environment {environment} has no state in {}",
            backend.describe()
        );
    };
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(&encode_state(&state)?)?;
    stdout.flush()?;
    Ok(EXIT_OK)
}

fn state_push(args: &StatePushArgs) -> anyhow::Result<u8> {
    use std::io::Read as _;
    let contents = if args.file.as_os_str() == "-" {
        let mut contents = Vec::new();
        std::io::stdin()
            .read_to_end(&mut contents)
            .context("cannot read the state from stdin")?;
        contents
    } else {
        std::fs::read(&args.file).with_context(|| format!("cannot read {}", args.file.display()))?
    };
    let incoming: State = decode_state(&contents, None, &args.file, || None)?;
    crate::state::validate_environment_name(&incoming.environment)?;
    let backend = state_backend(&args.dir)?;
    let environment = incoming.environment.clone();
    let lock = take_lock(
        backend.as_ref(),
        &environment,
        "state push",
        args.lock_timeout,
    )?;
    let pushed = ops::push(backend.as_ref(), incoming, args.force)?;
    lock.release()?;
    match &pushed.replaced {
        Some((serial, lineage)) => println!(
            "Pushed the state of environment {environment} to {}: serial {} (it replaced serial \
             {serial}, lineage {lineage}).",
            backend.describe(),
            pushed.serial
        ),
        None => println!(
            "Pushed the state of environment {environment} to {}: serial {} (there was none).",
            backend.describe(),
            pushed.serial
        ),
    }
    Ok(EXIT_OK)
}

fn state_rm(args: &StateRmArgs) -> anyhow::Result<u8> {
    let address = ops::deployment_address(&args.address);
    let backend = state_backend(&args.state.dir)?;
    let environment = environment_tracking(
        backend.as_ref(),
        &address,
        args.state.environment.as_deref(),
    )?;
    let lock = take_lock(
        backend.as_ref(),
        &environment,
        "state rm",
        args.lock_timeout,
    )?;
    let removed = ops::remove_deployment(backend.as_ref(), &environment, &address)?;
    lock.release()?;
    let Some((deployment, serial)) = removed else {
        bail!(
            "{address} left the state of environment {environment} meanwhile; nothing was removed"
        );
    };
    println!(
        "Removed {address} (version {}) from the state of environment {environment} (serial \
         {serial}). Its targets were not touched; slipway no longer tracks them.",
        deployment.version
    );
    Ok(EXIT_OK)
}

fn state_history(args: &StateHistoryArgs) -> anyhow::Result<u8> {
    use std::fmt::Write as _;
    // DEPLOYMENT and DIR are both optional: one argument naming a directory is DIR.
    let (deployment, dir) = match (&args.first, &args.second) {
        (Some(first), Some(dir)) => (Some(first.clone()), dir.clone()),
        (Some(first), None) if !first.starts_with("deployment.") && Path::new(first).is_dir() => {
            (None, PathBuf::from(first))
        }
        (Some(first), None) => (Some(first.clone()), PathBuf::from(".")),
        (None, _) => (None, PathBuf::from(".")),
    };
    let backend = state_backend(&dir)?;
    let environments = match &args.environment {
        Some(name) => vec![name.clone()],
        None => backend.environments()?,
    };
    let mut states = Vec::new();
    for environment in environments {
        if let Some(state) = backend.read(&environment)? {
            states.push(state);
        }
    }
    let address = deployment.as_deref().map(ops::deployment_address);
    let entries = ops::history(&states, address.as_deref());
    if args.json {
        let entries: Vec<serde_json::Value> = entries
            .iter()
            .map(|(environment, entry)| {
                let mut value = serde_json::json!({ "environment": environment });
                if let (Some(object), Ok(serde_json::Value::Object(fields))) =
                    (value.as_object_mut(), serde_json::to_value(entry))
                {
                    object.extend(fields);
                }
                value
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&entries)?);
        return Ok(EXIT_OK);
    }
    if entries.is_empty() {
        match &address {
            Some(address) => println!("No history recorded for {address}."),
            None => println!("No history recorded."),
        }
        return Ok(EXIT_OK);
    }
    let mut out = String::new();
    for (environment, entry) in entries {
        let _ = write!(
            out,
            "{}  {environment}  {}  {}  by {}  (id {}",
            entry.started_at, entry.operation, entry.result, entry.who, entry.apply_id
        );
        if let Some(digest) = &entry.plan_digest {
            let short: String = digest.chars().take(12).collect();
            let _ = write!(out, ", plan sha256:{short}");
        }
        if let Some(finished) = &entry.finished_at {
            let _ = write!(out, ", finished {finished}");
        }
        out.push_str(")\n");
        for (deployment, version) in &entry.versions {
            if address.as_ref().is_none_or(|only| only == deployment) {
                let _ = writeln!(out, "    {deployment}  {version}");
            }
        }
        for approval in &entry.approvals {
            let decided = match (&approval.decided_by, &approval.decided_at) {
                (Some(who), Some(at)) => format!(", {who} at {at}"),
                _ => String::new(),
            };
            let _ = writeln!(
                out,
                "    approval \"{}\" after step {} of {}: {:?}{decided}",
                approval.name, approval.after_step, approval.version, approval.status
            );
        }
    }
    print!("{out}");
    Ok(EXIT_OK)
}

/// Human text of what state records about one deployment.
fn describe_deployment(deployment: &crate::state::DeploymentState) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(out, "service      {}", deployment.service);
    let _ = writeln!(out, "version      {}", deployment.version);
    let _ = writeln!(out, "status       {:?}", deployment.status);
    let _ = writeln!(out, "verified     {}", deployment.verified);
    if let Some(sha) = &deployment.artifact_sha256 {
        let _ = writeln!(out, "artifact     sha256:{sha}");
    }
    if let Some(rollout) = &deployment.rollout {
        let _ = writeln!(out, "rollout      {rollout}");
    }
    let _ = writeln!(out, "updated at   {}", deployment.updated_at);
    for (host, state) in &deployment.hosts {
        let _ = writeln!(
            out,
            "host {host}: {} {:?} at {}",
            state.version, state.status, state.updated_at
        );
    }
    if let Some(ecs) = &deployment.ecs {
        let _ = writeln!(
            out,
            "ecs service  {} in {} (desired {})",
            ecs.service_name, ecs.cluster, ecs.desired_count
        );
        if let Some(arn) = &ecs.task_definition_arn {
            let _ = writeln!(out, "task def     {arn}");
        }
    }
    for destination in deployment.config_files.keys() {
        let _ = writeln!(out, "config file  {destination}");
    }
    out
}

/// What an apply works from: the configuration, and the saved plan when one
/// was given (loaded with the values the plan carries).
struct ApplyInput {
    config: Config,
    sources: diagnostics::SourceMap,
    config_dir: PathBuf,
    saved_plan: Option<plan::Plan>,
    options: plan::PlanOptions,
}

/// Read the configuration, and a saved plan with the inputs it was made with:
/// its non-sensitive values load the configuration, sensitive ones must be
/// given again and match the plan's digest, and `-var` or `-environment`
/// given anyway must agree with the plan. `None`: the configuration has
/// errors (printed).
fn apply_input(args: &ApplyArgs) -> anyhow::Result<Option<ApplyInput>> {
    let inputs = InputSources::from_process(args.vars.clone(), args.var_files.clone());
    let selection = |names: &[String]| plan::PlanOptions {
        environments: (!names.is_empty()).then(|| names.iter().cloned().collect()),
        ..Default::default()
    };
    if !args.target.is_file() {
        let selected = selection(&args.environments).environments;
        let Some((config, sources)) =
            load_with_inputs(&args.target, &inputs, &[], selected.as_ref(), args.no_color)
        else {
            return Ok(None);
        };
        return Ok(Some(ApplyInput {
            config,
            sources,
            config_dir: args.target.clone(),
            saved_plan: None,
            options: selection(&args.environments),
        }));
    }
    let saved_plan = saved::read(&args.target)?;
    let refuse = |problems: Vec<String>| {
        anyhow!(
            "cannot apply the saved plan {}; nothing was changed:\n  - {}",
            args.target.display(),
            problems.join("\n  - ")
        )
    };
    if args.refresh {
        return Err(refuse(vec![format!(
            "-refresh reads hosts and services before planning, and this plan is already made: \
             make a refreshed plan with `slipway plan -refresh -out {}`, or refresh and apply \
             in one step with `slipway apply -refresh DIR`",
            args.target.display()
        )]));
    }
    let config_dir = args.dir.clone();
    let has_configuration = std::fs::read_dir(&config_dir).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.path().extension().is_some_and(|x| x == "hcl"))
    });
    if !has_configuration {
        return Err(refuse(vec![format!(
            "{} holds no configuration (*.hcl): run apply in the directory the plan was made \
             from, or name that directory with -dir DIR",
            config_dir.display()
        )]));
    }
    let Some(carried) = saved_plan.inputs.clone() else {
        // Format 1.0: the values must be given again, as to plan.
        let selected = selection(&args.environments).environments;
        let Some((config, sources)) =
            load_with_inputs(&config_dir, &inputs, &[], selected.as_ref(), args.no_color)
        else {
            return Ok(None);
        };
        return Ok(Some(ApplyInput {
            config,
            sources,
            config_dir,
            saved_plan: Some(saved_plan),
            options: selection(&args.environments),
        }));
    };
    if let Some(problem) = saved::check_environments(&carried, &args.environments) {
        return Err(refuse(vec![problem]));
    }
    let supplied = config::load::supplied_input_names(&config_dir, &inputs);
    let missing = saved::missing_sensitive(&carried, &supplied);
    if !missing.is_empty() {
        return Err(refuse(missing));
    }
    let values = saved::saved_values(&carried);
    let selected: Option<BTreeSet<String>> = carried
        .environments
        .as_ref()
        .map(|names| names.iter().cloned().collect());
    let Some((config, sources)) = load_with_inputs(
        &config_dir,
        &inputs,
        &[values],
        selected.as_ref(),
        args.no_color,
    ) else {
        return Ok(None);
    };
    let mut problems = saved::check_inputs(&carried, &config);
    problems.extend(saved::check_secrets(&carried, &config));
    if !problems.is_empty() {
        return Err(refuse(problems));
    }
    Ok(Some(ApplyInput {
        config,
        sources,
        config_dir,
        saved_plan: Some(saved_plan),
        options: plan::PlanOptions {
            environments: carried
                .environments
                .map(|names| names.into_iter().collect()),
            ..Default::default()
        },
    }))
}

/// Load `dir` (with a saved plan's values underneath, when given) for plan
/// or apply, printing diagnostics; `None` when it has errors.
///
/// The secrets that the deployments of the `selected` environments (all
/// when `None`) use are read from their stores once, between two loads: the
/// first says which deployments use which `secret` block, the second
/// evaluates with the values read. A secret that cannot be read is an
/// error before any state is locked or host touched; one that no selected
/// deployment uses is not read.
fn load_with_inputs(
    dir: &Path,
    inputs: &InputSources,
    saved_values: &[config::SavedInputs],
    selected: Option<&BTreeSet<String>>,
    no_color: bool,
) -> Option<(Config, diagnostics::SourceMap)> {
    let saved = saved_values.first().cloned().unwrap_or_default();
    let print = |loaded: &config::Loaded| {
        if !loaded.diagnostics.is_empty() {
            eprint!(
                "{}",
                diagnostics::render(&loaded.sources, &loaded.diagnostics, stderr_color(no_color))
            );
        }
    };
    let first = config::load_with_saved(dir, inputs, &saved);
    let Some(config) = &first.config else {
        print(&first);
        return None;
    };
    let secrets = match crate::secret_store::read_for(config, selected) {
        Ok(secrets) => secrets,
        Err(found) => {
            print(&first);
            eprint!(
                "{}",
                diagnostics::render(&first.sources, &found, stderr_color(no_color))
            );
            return None;
        }
    };
    let loaded = if secrets.is_empty() {
        first
    } else {
        config::load_with_secrets(dir, inputs, &saved, &secrets)
    };
    print(&loaded);
    Some((loaded.config?, loaded.sources))
}

/// The plan apply executes: a saved plan as it is, once it is known fresh,
/// or one made now (after a refresh with `-refresh`) and shown. `None`: the
/// plan could not be made (diagnostics printed).
fn plan_to_apply(
    args: &ApplyArgs,
    config: &Config,
    sources: &diagnostics::SourceMap,
    saved_plan: Option<plan::Plan>,
    states: &States,
    options: &plan::PlanOptions,
    runtime: &tokio::runtime::Runtime,
) -> anyhow::Result<Option<plan::Plan>> {
    if let Some(saved_plan) = saved_plan {
        // A saved plan is executed as it is: apply decides nothing it did not.
        let mut problems = saved::check_fresh(&saved_plan, &config.digest, states);
        problems.extend(saved::artifacts_moved(&saved_plan, config));
        if !problems.is_empty() {
            bail!(
                "the saved plan {} is stale; nothing was changed:\n  - {}\nMake a new plan with `slipway plan -out FILE` and apply that",
                args.target.display(),
                problems.join("\n  - ")
            );
        }
        if args.json {
            let fields = serde_json::json!({ "plan": &saved_plan, "saved_plan": args.target });
            println!("{}", apply_json_line("plan", fields));
        } else {
            println!(
                "Applying the saved plan {}: {}",
                args.target.display(),
                saved_plan.summary.line()
            );
        }
        return Ok(Some(saved_plan));
    }
    let mut planned_from = states.clone();
    let observations = args.refresh.then(|| {
        let observations = runtime.block_on(crate::apply::refresh::observe(config, states));
        crate::apply::refresh::fold_into_states(&mut planned_from, &observations);
        observations
    });
    let mut plan = match planner::plan(config, &planned_from, options) {
        Ok(plan) => plan,
        Err(found) => {
            eprint!(
                "{}",
                diagnostics::render(sources, &found, stderr_color(args.no_color))
            );
            return Ok(None);
        }
    };
    if let Some(observations) = &observations {
        crate::apply::refresh::add_drift_reasons(&mut plan, states, observations);
    }
    if args.json {
        println!(
            "{}",
            apply_json_line("plan", serde_json::json!({ "plan": &plan }))
        );
    } else {
        let color = use_color(args.no_color);
        print!("{}", views::render(&plan, ViewFormat::Human { color }));
    }
    Ok(Some(plan))
}

/// A line of `apply -json` before the apply's own clock starts (the plan, the
/// start, nothing to apply): at elapsed 0.
fn apply_json_line(kind: &str, fields: serde_json::Value) -> String {
    crate::apply::progress::json_line(kind, std::time::Duration::ZERO, fields)
}

/// The end of an apply as `apply -json` reports it (`apply_complete`).
fn summary_json(
    summary: &crate::apply::ApplySummary,
    result: &str,
    exit_code: u8,
) -> serde_json::Value {
    serde_json::json!({
        "result": result,
        "exit_code": exit_code,
        "deployments_succeeded": summary.deployments_succeeded,
        "deployments_failed": summary.deployments_failed,
        "hosts_deployed": summary.hosts_deployed,
        "hosts_failed": summary.hosts_failed,
        "hosts_rolled_back": summary.hosts_rolled_back,
        "hosts_not_rolled_back": summary.hosts_not_rolled_back,
        "failures": summary.failures,
        "waiting_approval": summary.waiting,
        "held": summary.held,
        "skipped": summary.skipped,
        "not_started": summary.not_started,
        "duration_seconds": (summary.duration.as_secs_f64() * 10.0).round() / 10.0,
    })
}

fn apply_command(args: &ApplyArgs) -> anyhow::Result<u8> {
    if args.json && !args.auto_approve {
        bail!("apply -json never asks: pass -auto-approve (and -approve ENV for protected environments); nothing was changed");
    }
    let Some(ApplyInput {
        mut config,
        sources,
        config_dir,
        saved_plan,
        mut options,
    }) = apply_input(args)?
    else {
        return Ok(EXIT_ERROR);
    };
    let backend: std::sync::Arc<dyn Backend> = open_backend(&config_dir, &config.backend)?.into();
    // Lock every environment the apply may touch before reading state, so the
    // plan is computed against state nobody else is changing.
    let mut names: Vec<String> = planner::environments_needed(&config).into_iter().collect();
    names.extend(backend.environments()?);
    names.sort();
    names.dedup();
    names.retain(|name| options.includes(name));
    let mut locks = Vec::new();
    for name in &names {
        locks.push(take_lock(
            backend.as_ref(),
            name,
            "apply",
            args.lock_timeout,
        )?);
    }
    let states = read_states(&config, backend.as_ref())?;
    // Remote artifacts pinned under the locks: a saved plan's pins must
    // still hold (checked with its freshness), and apply sends exactly them.
    if !pin_artifacts(&mut config, &options, &config_dir)? {
        return Ok(EXIT_ERROR);
    }
    if saved_plan.is_none() {
        // What ECS runs that state does not record: services to adopt, listener
        // weights changed by hand (a saved plan carries what it read).
        crate::apply::refresh::read_live(&config, &states, &mut options);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let Some(plan) = plan_to_apply(
        args, &config, &sources, saved_plan, &states, &options, &runtime,
    )?
    else {
        return Ok(EXIT_ERROR);
    };
    // The plan was computed from the hosts as a refresh found them: state
    // says so before anything runs (and apply's records start from there).
    let mut states = states;
    crate::apply::refresh::fold_into_states(
        &mut states,
        &crate::apply::refresh::observations_of(&plan),
    );
    if !plan.has_changes() {
        // An apply killed after its last step left a journal: record it.
        for (name, state) in &states {
            let Some(state) = state.as_ref().filter(|s| !s.journal.is_empty()) else {
                continue;
            };
            if !names.contains(name) {
                continue;
            }
            let mut settled = state.clone();
            settled.settle_journal();
            backend.write(&mut settled)?;
            if !args.json {
                println!("Recorded the interrupted apply of environment {name} in its history.");
            }
        }
        if args.json {
            let summary = crate::apply::ApplySummary::default();
            println!(
                "{}",
                apply_json_line(
                    "apply_complete",
                    summary_json(&summary, "no_changes", EXIT_OK)
                )
            );
        } else {
            println!("Nothing to apply.");
        }
        return Ok(EXIT_OK);
    }
    let unsupported = crate::apply::unsupported(&config, &plan);
    if !unsupported.is_empty() {
        bail!(
            "this plan cannot be applied; nothing was changed:\n  {}",
            unsupported.join("\n  ")
        );
    }
    let interactive = args.input != Some(false) && std::io::stdin().is_terminal();
    let protected: Vec<String> = plan
        .schedule
        .waves
        .iter()
        .flat_map(|w| w.deployments.iter())
        .filter(|d| d.needs_approval_before_start)
        .filter_map(|d| plan.deployment(&d.address).map(|c| c.environment.clone()))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    for environment in &protected {
        if args.approve.contains(environment) {
            continue;
        }
        if !interactive {
            bail!("environment {environment} is protected: approve it with -approve {environment} (apply asks only on a terminal without -input=false); nothing was changed");
        }
        let answer = prompt(&format!(
            "Environment {environment} is protected. Type its name to approve: "
        ))?;
        if answer != *environment {
            println!("Apply cancelled: {environment} was not approved. Nothing was changed.");
            return Ok(EXIT_ERROR);
        }
    }
    if !args.auto_approve {
        if !interactive {
            bail!("apply needs confirmation: pass -auto-approve, or run it from a terminal without -input=false; nothing was changed");
        }
        let answer = prompt("Do you want to perform these actions? Only 'yes' will be accepted: ")?;
        if answer != "yes" {
            println!("Apply cancelled. Nothing was changed.");
            return Ok(EXIT_ERROR);
        }
    }
    let mut recorders = BTreeMap::new();
    for (name, state) in states {
        if !names.contains(&name) {
            continue;
        }
        let state = state.unwrap_or_else(|| crate::state::State::new(&name));
        recorders.insert(
            name,
            std::sync::Arc::new(crate::apply::Recorder::new(backend.clone(), state)),
        );
    }
    let apply_options = crate::apply::ApplyOptions {
        parallelism: args.parallelism,
        apply_id: uuid::Uuid::new_v4().to_string(),
        who: std::env::var("USER").unwrap_or_else(|_| "unknown".into()),
        artifact_cache: config_dir.join(ARTIFACT_CACHE),
    };
    let progress = if args.json {
        let fields = serde_json::json!({ "apply_id": &apply_options.apply_id });
        println!("{}", apply_json_line("apply_start", fields));
        std::sync::Arc::new(crate::apply::Progress::json())
    } else {
        println!("\nApplying (apply id {}).", apply_options.apply_id);
        std::sync::Arc::new(crate::apply::Progress::new(
            std::io::stderr().is_terminal() && !args.no_color,
        ))
    };
    let config = std::sync::Arc::new(config);
    // The first Ctrl-C (or SIGTERM) stops the apply in order: see below.
    crate::state::lock::stop_gracefully_on_interrupt(true);
    let summary = runtime.block_on(crate::apply::apply(
        config,
        &plan,
        recorders,
        apply_options,
        progress,
    ));
    drop(locks);
    crate::state::lock::stop_gracefully_on_interrupt(false);
    if args.json {
        let (result, code) = if summary.interrupted {
            ("interrupted", EXIT_INTERRUPTED)
        } else if !summary.succeeded() && summary.only_paused() {
            ("paused", EXIT_ERROR)
        } else if !summary.succeeded() {
            ("failed", EXIT_ERROR)
        } else if !summary.waiting.is_empty() {
            ("waiting_approval", EXIT_OK)
        } else {
            ("succeeded", EXIT_OK)
        };
        let fields = summary_json(&summary, result, code);
        let line = crate::apply::progress::json_line("apply_complete", summary.duration, fields);
        println!("{line}");
        return Ok(code);
    }
    if summary.interrupted {
        println!(
            "\nApply interrupted: no new step was started after the interrupt; the steps in flight finished and are recorded ({} host(s) deployed, {} failed), and the lock is released. Run `slipway apply` again to continue the rollout; `slipway plan` shows what remains.",
            summary.hosts_deployed, summary.hosts_failed
        );
        for failure in &summary.failures {
            println!("  error: {failure}");
        }
        if !summary.not_started.is_empty() {
            println!(
                "  not started (interrupted): {}",
                summary.not_started.join(", ")
            );
        }
        return Ok(EXIT_INTERRUPTED);
    }
    let waiting = if summary.waiting.is_empty() {
        String::new()
    } else {
        format!(", {} waiting for approval", summary.waiting.len())
    };
    let hosts = if summary.hosts_deployed + summary.hosts_failed + summary.hosts_rolled_back == 0 {
        String::new()
    } else {
        let not_rolled_back = if summary.hosts_not_rolled_back == 0 {
            String::new()
        } else {
            format!(", {} NOT rolled back", summary.hosts_not_rolled_back)
        };
        format!(
            "; hosts: {} deployed, {} failed, {} rolled back{not_rolled_back}",
            summary.hosts_deployed, summary.hosts_failed, summary.hosts_rolled_back
        )
    };
    println!(
        "\nApply {}: {} deployment(s) succeeded, {} failed{waiting}{hosts}; {:.1}s.",
        if !summary.succeeded() && summary.only_paused() {
            "paused after a failure"
        } else if !summary.succeeded() {
            "failed"
        } else if !summary.waiting.is_empty() {
            "paused"
        } else {
            "complete"
        },
        summary.deployments_succeeded,
        summary.deployments_failed,
        summary.duration.as_secs_f64()
    );
    for failure in &summary.failures {
        println!("  error: {failure}");
    }
    for waiting in &summary.waiting {
        println!("  {waiting}");
    }
    if !summary.held.is_empty() {
        println!(
            "  not started (waits for a deployment that waits for approval): {}",
            summary.held.join(", ")
        );
    }
    if !summary.skipped.is_empty() {
        println!(
            "  not started (waits for a deployment that failed): {}",
            summary.skipped.join(", ")
        );
    }
    if !summary.succeeded() {
        println!("{}", summary.closing_note());
    }
    Ok(if summary.succeeded() {
        EXIT_OK
    } else {
        EXIT_ERROR
    })
}

fn prompt(question: &str) -> anyhow::Result<String> {
    use std::io::Write as _;
    print!("{question}");
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(answer.trim().to_string())
}
