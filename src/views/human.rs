//! Terraform-like terminal text for a plan.
//!
//! The text has four parts: what happens to each deployment and why (with
//! unified diffs of changed files), the schedule apply will follow, the outputs
//! and warnings, and the closing summary sentence. Colour is added only on
//! request, so the uncoloured text is safe for logs and files.

use owo_colors::{OwoColorize, Style};

use super::{
    action_outcome, describe_rollout_end, describe_step_kind, failure_consequence, strategy_words,
    summary_sentence,
};
use crate::plan::model::{
    Action, DeploymentChange, OutputValue, Plan, Reason, ScheduledDeployment, Step, TargetKind,
    Wave,
};

const DEPLOYMENT_INDENT: &str = "  ";
const DETAIL_INDENT: &str = "      ";
const DIFF_INDENT: &str = "          ";

/// Renders the plan as terminal text; `color` adds ANSI colour codes.
pub fn render(plan: &Plan, color: bool) -> String {
    let painter = Painter { color };
    let mut out = String::new();

    let (unchanged, changed): (Vec<&DeploymentChange>, Vec<&DeploymentChange>) = plan
        .deployments
        .iter()
        .partition(|deployment| deployment.action == Action::NoOp);

    if !changed.is_empty() {
        out.push_str("Slipway will perform the following actions:\n");
        for deployment in &changed {
            out.push('\n');
            write_deployment(&mut out, &painter, deployment);
        }
    }
    if !unchanged.is_empty() {
        out.push('\n');
        for deployment in &unchanged {
            write_unchanged_deployment(&mut out, &painter, deployment);
        }
    }

    if !plan.schedule.waves.is_empty() {
        out.push('\n');
        out.push_str(&painter.paint("Schedule:", Style::new().bold()));
        out.push('\n');
        for wave in &plan.schedule.waves {
            write_wave(&mut out, &painter, wave);
        }
    }

    if !plan.outputs.is_empty() {
        out.push('\n');
        write_outputs(&mut out, &painter, &plan.outputs);
    }

    if !plan.warnings.is_empty() {
        out.push('\n');
        for warning in &plan.warnings {
            let label = painter.paint("Warning:", Style::new().yellow().bold());
            push_indented(&mut out, "", &format!("{label} {warning}"));
        }
    }

    out.push('\n');
    out.push_str(&painter.paint(&summary_sentence(&plan.summary), Style::new().bold()));
    out.push('\n');
    out
}

/// Adds colour only when asked to, so uncoloured output holds no escape codes.
struct Painter {
    color: bool,
}

impl Painter {
    fn paint(&self, text: &str, style: Style) -> String {
        if self.color {
            text.style(style).to_string()
        } else {
            text.to_string()
        }
    }
}

fn action_symbol(action: Action) -> &'static str {
    match action {
        Action::Create => "+",
        Action::Update => "~",
        Action::Destroy => "-",
        Action::NoOp => "=",
    }
}

fn action_style(action: Action) -> Style {
    match action {
        Action::Create => Style::new().green(),
        Action::Update => Style::new().yellow(),
        Action::Destroy => Style::new().red(),
        Action::NoOp => Style::new().dimmed(),
    }
}

fn write_deployment(out: &mut String, painter: &Painter, deployment: &DeploymentChange) {
    let style = action_style(deployment.action);
    out.push_str(DEPLOYMENT_INDENT);
    out.push_str(&painter.paint(action_symbol(deployment.action), style.bold()));
    out.push(' ');
    out.push_str(&painter.paint(&deployment.address, Style::new().bold()));
    out.push(' ');
    out.push_str(action_outcome(deployment.action));
    out.push('\n');

    push_indented(out, DETAIL_INDENT, &deployment_context(deployment));
    push_indented(
        out,
        DETAIL_INDENT,
        &format!(
            "version {}",
            version_change(
                deployment.version_before.as_deref(),
                deployment.version_after.as_deref()
            )
        ),
    );
    if let Some(pin) = deployment
        .artifact
        .as_ref()
        .filter(|pin| pin.resolved_by_plan && deployment.action != Action::NoOp)
    {
        push_indented(
            out,
            DETAIL_INDENT,
            &match &pin.image_digest {
                Some(image) => format!(
                    "artifact {} pinned to image {image}, flattened to sha256 {}",
                    pin.source, pin.sha256
                ),
                None => format!("artifact {} pinned to sha256 {}", pin.source, pin.sha256),
            },
        );
    }
    if let Some(pin) = deployment.artifact.as_ref().filter(|pin| {
        pin.delivery == crate::config::ArtifactDelivery::Pull && deployment.action != Action::NoOp
    }) {
        push_indented(
            out,
            DETAIL_INDENT,
            &format!(
                "hosts download artifact {} themselves and check its sha256 (delivery = \"pull\")",
                pin.source
            ),
        );
    }
    if let Some(promotion) = &deployment.promotion {
        push_indented(out, DETAIL_INDENT, &promotion.describe());
    }
    for reason in &deployment.reasons {
        write_reason(out, painter, reason);
    }
}

/// `service myapp, environment prod, target vm, rollout rolling`.
fn deployment_context(deployment: &DeploymentChange) -> String {
    let target = match deployment.target {
        TargetKind::Vm => "vm",
        TargetKind::Ecs => "ecs",
    };
    let mut context = format!(
        "service {}, environment {}, target {target}",
        deployment.service, deployment.environment
    );
    if let Some(rollout) = &deployment.rollout {
        context.push_str(&format!(", rollout {rollout}"));
    }
    context
}

/// `1.4.2 → 1.5.0`, `(none) → 2.3.0`, or `1.4.2 (unchanged)`.
fn version_change(before: Option<&str>, after: Option<&str>) -> String {
    match (before, after) {
        (Some(before), Some(after)) if before == after => format!("{before} (unchanged)"),
        _ => format!(
            "{} → {}",
            before.unwrap_or("(none)"),
            after.unwrap_or("(none)")
        ),
    }
}

fn write_reason(out: &mut String, painter: &Painter, reason: &Reason) {
    push_indented(out, DETAIL_INDENT, &format!("# {}", reason.summary));
    if let Some(diff) = &reason.diff {
        write_diff(out, painter, diff);
    }
}

/// Writes a unified diff indented under its reason, `+` lines green and `-`
/// lines red. File headers are recognised only before the first hunk, so a
/// removed line that starts with `--` is still shown as a removal.
fn write_diff(out: &mut String, painter: &Painter, diff: &str) {
    let mut in_hunk = false;
    for line in diff.lines() {
        let style = if line.starts_with("@@") {
            in_hunk = true;
            Style::new().cyan()
        } else if !in_hunk && (line.starts_with("--- ") || line.starts_with("+++ ")) {
            Style::new().bold()
        } else if line.starts_with('+') {
            Style::new().green()
        } else if line.starts_with('-') {
            Style::new().red()
        } else if line.starts_with('\\') {
            Style::new().dimmed()
        } else {
            Style::new()
        };
        out.push_str(DIFF_INDENT);
        // Content may hold a carriage return: shown escaped, it cannot
        // rewrite the terminal line.
        out.push_str(&painter.paint(&crate::encode::text::visible(line), style));
        out.push('\n');
    }
}

fn write_unchanged_deployment(out: &mut String, painter: &Painter, deployment: &DeploymentChange) {
    let symbol = painter.paint(action_symbol(Action::NoOp), action_style(Action::NoOp));
    let version = deployment
        .version_after
        .as_deref()
        .or(deployment.version_before.as_deref());
    let version = version.map(|v| format!(" ({v})")).unwrap_or_default();
    push_indented(
        out,
        DEPLOYMENT_INDENT,
        &format!("{symbol} {} unchanged{version}", deployment.address),
    );
    for reason in &deployment.reasons {
        write_reason(out, painter, reason);
    }
}

fn write_wave(out: &mut String, painter: &Painter, wave: &Wave) {
    let addresses: Vec<&str> = wave
        .deployments
        .iter()
        .map(|deployment| deployment.address.as_str())
        .collect();
    let parallel = if addresses.len() > 1 {
        " (parallel)"
    } else {
        ""
    };
    let title = format!("Wave {}{parallel}:", wave.index);
    out.push('\n');
    out.push_str(DEPLOYMENT_INDENT);
    out.push_str(&painter.paint(&title, Style::new().bold()));
    out.push(' ');
    out.push_str(&addresses.join(", "));
    out.push('\n');
    for deployment in &wave.deployments {
        out.push('\n');
        write_scheduled_deployment(out, painter, deployment);
        if let Some(words) = super::dependency_words(deployment, wave.index > 1) {
            push_indented(out, "      ", &words);
        }
    }
}

fn write_scheduled_deployment(
    out: &mut String,
    painter: &Painter,
    deployment: &ScheduledDeployment,
) {
    const HEADER_INDENT: &str = "    ";
    const STEP_INDENT: &str = "      ";

    let action = painter.paint(deployment.action.as_str(), action_style(deployment.action));
    let mut header = format!("{}: {action}", deployment.address);
    if let Some(strategy) = strategy_words(deployment.strategy) {
        header.push_str(", ");
        header.push_str(strategy);
    }
    if deployment.needs_approval_before_start {
        header.push_str(", ");
        header
            .push_str(&painter.paint("needs approval before start", Style::new().yellow().bold()));
    }
    push_indented(out, HEADER_INDENT, &header);

    if deployment.action == Action::NoOp && deployment.steps.is_empty() {
        push_indented(out, STEP_INDENT, "nothing to do");
        return;
    }
    for step in &deployment.steps {
        write_step(out, painter, step);
    }
    if let Some(end) = &deployment.ends_with {
        push_indented(out, STEP_INDENT, &describe_rollout_end(end));
    }
    let failure_line = if deployment.rollback.is_empty() {
        format!("on failure: {}", deployment.on_failure)
    } else {
        format!(
            "on failure ({}): {}",
            deployment.on_failure,
            failure_consequence(&deployment.rollback)
        )
    };
    push_indented(out, STEP_INDENT, &failure_line);
}

fn write_step(out: &mut String, painter: &Painter, step: &Step) {
    const STEP_INDENT: &str = "      ";
    const STEP_DETAIL_INDENT: &str = "        ";

    push_indented(
        out,
        STEP_INDENT,
        &format!("step {}: {}", step.index, describe_step_kind(&step.kind)),
    );
    if let Some(bake) = &step.bake {
        push_indented(out, STEP_DETAIL_INDENT, &format!("bake {bake}"));
    }
    for gate in &step.gates {
        push_indented(
            out,
            STEP_DETAIL_INDENT,
            &format!("gate {} ({}): {}", gate.name, gate.kind, gate.detail),
        );
    }
    if let Some(approval) = &step.approval {
        let line = format!("approval {approval}");
        push_indented(
            out,
            STEP_DETAIL_INDENT,
            &painter.paint(&line, Style::new().yellow()),
        );
    }
}

fn write_outputs(out: &mut String, painter: &Painter, outputs: &[OutputValue]) {
    out.push_str(&painter.paint("Outputs:", Style::new().bold()));
    out.push('\n');
    let name_width = outputs
        .iter()
        .map(|output| output.name.chars().count())
        .max()
        .unwrap_or(0);
    for output in outputs {
        let value = if output.sensitive {
            painter.paint("(sensitive)", Style::new().dimmed())
        } else {
            super::outputs::value_text(&output.value)
        };
        push_indented(
            out,
            DEPLOYMENT_INDENT,
            &format!("{:<name_width$} = {value}", output.name),
        );
    }
}

/// Appends `text` line by line, each line prefixed with `indent`.
fn push_indented(out: &mut String, indent: &str, text: &str) {
    for line in text.lines() {
        out.push_str(indent);
        out.push_str(line);
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::render;
    use crate::views::test_fixture::{representative_plan, snapshot_settings, unchanged_plan};

    #[test]
    fn snapshot_of_representative_plan_without_color() {
        let text = render(&representative_plan(), false);
        snapshot_settings().bind(|| insta::assert_snapshot!("human_representative_plan", text));
    }

    #[test]
    fn color_codes_appear_only_when_asked_for() {
        let plan = representative_plan();
        assert!(render(&plan, true).contains("\u{1b}["));
        assert!(!render(&plan, false).contains('\u{1b}'));
    }

    #[test]
    fn colored_text_reads_the_same_without_its_codes() {
        let plan = representative_plan();
        let colored = render(&plan, true);
        assert_eq!(strip_ansi(&colored), render(&plan, false));
    }

    #[test]
    fn plan_without_changes_says_so() {
        let text = render(&unchanged_plan(), false);
        assert!(text.contains("= deployment.docs-prod unchanged (1.0.0)"));
        assert!(!text.contains("Schedule:"));
        assert!(text.ends_with("No changes. Deployments match the configuration and state.\n"));
    }

    fn strip_ansi(text: &str) -> String {
        let mut plain = String::new();
        let mut chars = text.chars();
        while let Some(character) = chars.next() {
            if character == '\u{1b}' {
                for terminator in chars.by_ref() {
                    if terminator.is_ascii_alphabetic() {
                        break;
                    }
                }
            } else {
                plain.push(character);
            }
        }
        plain
    }
}
