//! The command line: argument definitions, and the dispatch to one module per command.
//!
//! This is the edge of the program: it reads files and state through the
//! library, renders results, and chooses exit codes. Commands accept
//! Terraform-style single-dash flags (`-out`, `-no-color`) as well as `--out`.
//!
//! This module holds what every command shares (the `Cli` and `Command`
//! definitions, `ConfigArgs`, exit codes, flag normalisation and `run`); each
//! command's arguments and its function live in the command's own module.
//! It decides no planning, state or apply rule: the command modules call the
//! library layers that own them.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

mod apply;
mod approval;
mod backend;
mod common;
mod fmt;
mod init;
mod output;
mod plan;
mod rollback;
mod show;
mod state;
mod validate;

pub use apply::ApplyArgs;
pub use approval::{ApprovalArgs, RejectArgs};
pub use backend::open_backend;
pub use fmt::FmtArgs;
pub use init::InitArgs;
pub use output::OutputArgs;
pub use plan::{OutputFormat, PlanArgs};
pub use rollback::RollbackArgs;
pub use show::ShowArgs;
pub use state::{
    ForceUnlockArgs, StateArgs, StateCommand, StateHistoryArgs, StatePushArgs, StateRmArgs,
    StateShowArgs,
};

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

pub fn run(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::Init(args) => init::init(&args),
        Command::Validate(args) => validate::validate(&args),
        Command::Fmt(args) => fmt::fmt(&args),
        Command::Plan(args) => plan::plan_command(&args),
        Command::Apply(args) => apply::apply_command(&args),
        Command::Show(args) => show::show(&args),
        Command::Graph(args) => validate::graph(&args),
        Command::Output(args) => output::output(&args),
        Command::State(StateCommand::List(args)) => state::state_list(&args),
        Command::State(StateCommand::Show(args)) => state::state_show(&args),
        Command::State(StateCommand::Pull(args)) => state::state_pull(&args),
        Command::State(StateCommand::Push(args)) => state::state_push(&args),
        Command::State(StateCommand::Rm(args)) => state::state_rm(&args),
        Command::State(StateCommand::History(args)) => state::state_history(&args),
        Command::Approve(args) => approval::approve(&args),
        Command::Reject(args) => approval::reject(&args),
        Command::Rollback(args) => rollback::rollback(&args),
        Command::ForceUnlock(args) => state::force_unlock(&args),
        Command::Version => {
            println!("slipway {}", env!("CARGO_PKG_VERSION"));
            println!("plan format {}", crate::plan::FORMAT_VERSION);
            println!("state format {}", crate::state::STATE_VERSION);
            Ok(EXIT_OK)
        }
    }
}
