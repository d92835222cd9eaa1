//! What a host printed, on its way into a message: the one place where a
//! script's output ([`CommandOutput`]) becomes text that apply shows, records
//! in state or sends to a webhook.
//!
//! A host holds more secrets than the configuration knows: the config
//! snapshots of earlier releases (which a rollback restores) keep the values
//! sensitive variables had then, and [`Config::mask`] hides only the values
//! they have now. What a command on the host prints — a health check, a hook,
//! the service's start command, a tool — can repeat any config file there, so
//! masking cannot make it safe. The rule: while the configuration has any
//! sensitive value, or state records that a deployment's config files held one
//! ([`DeploymentState::sensitive_digests`]), only the lines slipway's own
//! scripts print (they start with `slipway: ` and are made of paths, versions
//! and digests, never of file contents) are shown; the other lines are
//! counted, not shown. Without a sensitive value anywhere, a host's output is
//! shown as it is (its last lines), masked all the same.
//!
//! Not here: running anything (`crate::transport`), the steps' scripts
//! (`crate::vm::steps`).

use crate::config::Config;
use crate::state::DeploymentState;
use crate::transport::CommandOutput;

/// How many lines of a host's output a message shows at most.
const SHOWN_LINES: usize = 5;

/// What slipway's own scripts start a line with (`vm::steps`, `vm::config_snapshot`).
pub const OWN_LINE_PREFIX: &str = "slipway: ";

/// Whether a host's output may be shown beyond slipway's own lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostOutput {
    /// No sensitive value in the configuration or the deployment's record:
    /// the last lines are shown (masked all the same).
    Shown,
    /// Only slipway's own lines are shown; the others are counted.
    OwnLinesOnly,
}

impl HostOutput {
    /// The rule for a deployment of `config` whose state record (before this
    /// apply changed it) is `recorded`.
    pub fn for_deployment(config: &Config, recorded: Option<&DeploymentState>) -> HostOutput {
        // A `secret` block counts even when this command did not read it
        // (`slipway rollback` reads none): its value may be on the hosts.
        let sensitive_now = !config.sensitive_values.is_empty() || !config.secrets.is_empty();
        let sensitive_before = recorded.is_some_and(|d| !d.sensitive_digests.is_empty());
        if sensitive_now || sensitive_before {
            HostOutput::OwnLinesOnly
        } else {
            HostOutput::Shown
        }
    }

    /// `exit status N: LINES` for a script that failed, with what may be
    /// shown of its standard error (or, when that is empty, its standard
    /// output), masked with `config`'s sensitive values.
    pub fn failure(self, config: &Config, output: &CommandOutput) -> String {
        let shown = self.lines(config, output);
        if shown.is_empty() {
            format!("exit status {}", output.status)
        } else {
            format!("exit status {}: {shown}", output.status)
        }
    }

    /// What may be shown of `output` (its last lines), masked.
    pub fn lines(self, config: &Config, output: &CommandOutput) -> String {
        let text = if output.stderr.trim().is_empty() {
            &output.stdout
        } else {
            &output.stderr
        };
        let all: Vec<&str> = text.trim_end().lines().collect();
        let (kept, withheld): (Vec<&str>, usize) = match self {
            HostOutput::Shown => (all, 0),
            HostOutput::OwnLinesOnly => {
                let own: Vec<&str> = all
                    .iter()
                    .copied()
                    .filter(|line| line.starts_with(OWN_LINE_PREFIX))
                    .collect();
                let others = all.iter().filter(|l| !l.trim().is_empty()).count() - own.len();
                (own, others)
            }
        };
        let mut shown = kept[kept.len().saturating_sub(SHOWN_LINES)..].join("\n");
        if withheld > 0 {
            if !shown.is_empty() {
                shown.push('\n');
            }
            shown.push_str(&format!(
                "({withheld} line(s) the host printed are not shown: there are sensitive \
                 values, and a host's output can repeat its config files, also values the \
                 configuration no longer knows; run the command on the host to see them)"
            ));
        }
        config.mask(&shown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn output(stdout: &str, stderr: &str) -> CommandOutput {
        CommandOutput {
            status: 1,
            stdout: stdout.to_string(),
            stderr: stderr.to_string(),
        }
    }

    fn config(sensitive: &[&str]) -> Config {
        Config {
            sensitive_values: sensitive.iter().map(|s| s.to_string()).collect(),
            ..Config::default()
        }
    }

    #[test]
    fn without_sensitive_values_the_last_lines_are_shown() {
        let config = config(&[]);
        let rule = HostOutput::for_deployment(&config, None);
        assert_eq!(rule, HostOutput::Shown);
        let printed = output("", "1\n2\n3\n4\n5\nhealth: always failing\n");
        assert_eq!(
            rule.failure(&config, &printed),
            "exit status 1: 2\n3\n4\n5\nhealth: always failing"
        );
        assert_eq!(
            rule.failure(&config, &output("only stdout\n", " \n")),
            "exit status 1: only stdout"
        );
        assert_eq!(rule.failure(&config, &output("", "")), "exit status 1");
    }

    #[test]
    fn with_a_sensitive_value_only_slipways_own_lines_are_shown() {
        let config = config(&["new-secret"]);
        let rule = HostOutput::for_deployment(&config, None);
        assert_eq!(rule, HostOutput::OwnLinesOnly);
        // The old value, which the configuration no longer knows, is on a
        // line the host printed: that line is not shown.
        let printed = output(
            "",
            "API_TOKEN='old-secret'\nTOKEN=new-secret\n\nslipway: release 1.0.0 is not installed\n",
        );
        let text = rule.failure(&config, &printed);
        assert!(
            text.starts_with("exit status 1: slipway: release 1.0.0 is not installed\n(2 line(s) the host printed are not shown"),
            "{text}"
        );
        assert!(!text.contains("secret"), "{text}");
    }

    #[test]
    fn a_record_with_sensitive_digests_withholds_too() {
        let config = config(&[]);
        let mut recorded: DeploymentState = serde_json::from_value(serde_json::json!({
            "service": "service.a",
            "version": "1.0.0",
            "status": "deployed",
            "updated_at": "2026-01-02T03:04:05Z",
        }))
        .unwrap();
        assert_eq!(
            HostOutput::for_deployment(&config, Some(&recorded)),
            HostOutput::Shown
        );
        recorded
            .sensitive_digests
            .insert("/opt/a/config/a.env".into(), "scrypt$...".into());
        assert_eq!(
            HostOutput::for_deployment(&config, Some(&recorded)),
            HostOutput::OwnLinesOnly
        );
        assert_eq!(
            HostOutput::OwnLinesOnly.failure(&config, &output("TOKEN=x\n", "")),
            "exit status 1: (1 line(s) the host printed are not shown: there are sensitive \
             values, and a host's output can repeat its config files, also values the \
             configuration no longer knows; run the command on the host to see them)"
        );
    }
}
