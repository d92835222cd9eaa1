//! A plan as a pull-request comment.
//!
//! The comment opens with the summary sentence in bold and a table of every
//! deployment, followed by collapsible sections: the details of each changed
//! deployment (reasons, and diffs in `diff` code blocks), the schedule and the
//! outputs. Warnings are shown open, right after the table. What a reviewer must
//! not miss is in the table itself, visible with every section collapsed: a
//! destroy in bold, and in the last column a protected environment (apply needs
//! `-approve`) and the approvals the rollout stops for.
//!
//! GitHub refuses comments longer than 65,536 characters, so the comment is kept
//! within [`COMMENT_LIMIT`]. When the full text is longer, sections are cut
//! whole: a deployment first loses its largest diffs, one at a time, and then
//! its whole section if it still does not fit. The summary and the table are
//! kept (a very long table loses rows, but never a destroy's row), and a
//! closing note says what was left out and how to see the full plan. Because only whole sections and whole diffs are cut, a code block is
//! never left open.

use std::borrow::Cow;

use super::{
    action_outcome, count_noun, describe_rollout_end, describe_step_kind, failure_consequence,
    strategy_words, summary_sentence,
};
use crate::plan::model::{
    Action, DeploymentChange, OutputValue, Plan, Reason, Schedule, ScheduledDeployment, Step,
    TargetKind,
};

/// The longest comment [`render`] produces, in bytes; safely below GitHub's
/// limit of 65,536 characters.
pub const COMMENT_LIMIT: usize = 60_000;

/// Room kept for the truncation note when sections have to be cut.
const NOTE_RESERVE: usize = 1_000;

/// Renders the plan as a pull-request comment of at most [`COMMENT_LIMIT`] bytes.
pub fn render(plan: &Plan) -> String {
    render_within(plan, COMMENT_LIMIT)
}

fn render_within(plan: &Plan, limit: usize) -> String {
    let sections = sections(plan);
    let (mut full, _) = head(plan, usize::MAX);
    for section in &sections {
        full.push('\n');
        full.push_str(&section.full);
    }
    if full.len() <= limit {
        return full;
    }
    truncated(plan, &sections, limit)
}

/// One collapsible part of the comment that may be left out as a whole.
struct Section<'plan> {
    /// What the truncation note calls it, e.g. `` `deployment.web` ``.
    label: String,
    full: String,
    /// For a deployment's details: the deployment, so that smaller versions
    /// without its largest diffs can be tried when `full` does not fit.
    deployment: Option<&'plan DeploymentChange>,
}

/// Builds the comment from the head and as many sections as fit in `limit`,
/// then appends the truncation note.
fn truncated(plan: &Plan, sections: &[Section], limit: usize) -> String {
    // The note follows the last section after a newline.
    let budget = limit.saturating_sub(NOTE_RESERVE + 1);
    let (mut comment, rows_left_out) = head(plan, budget);
    let rows_label = format!("{} of the table", count_noun(rows_left_out, "row"));
    let mut shortened = Vec::new();
    let mut omitted = Vec::new();
    if rows_left_out > 0 {
        omitted.push(rows_label.as_str());
    }
    for section in sections {
        let room = budget.saturating_sub(comment.len() + 1);
        let chosen = if section.full.len() <= room {
            Some(Cow::Borrowed(section.full.as_str()))
        } else if let Some(short) = section
            .deployment
            .and_then(|deployment| shortened_details(deployment).find(|short| short.len() <= room))
        {
            shortened.push(section.label.as_str());
            Some(Cow::Owned(short))
        } else {
            omitted.push(section.label.as_str());
            None
        };
        if let Some(text) = chosen {
            comment.push('\n');
            comment.push_str(&text);
        }
    }
    comment.push('\n');
    comment.push_str(&truncation_note(&shortened, &omitted));
    comment
}

/// The closing note of a truncated comment. Names the affected sections when
/// that is short enough, otherwise only counts them.
fn truncation_note(shortened: &[&str], omitted: &[&str]) -> String {
    let named = |labels: &[&str]| (!labels.is_empty()).then(|| labels.join(", "));
    let counted =
        |labels: &[&str]| (!labels.is_empty()).then(|| count_noun(labels.len(), "section"));
    let by_name = note_text(named(shortened), named(omitted));
    if by_name.len() <= NOTE_RESERVE {
        return by_name;
    }
    note_text(counted(shortened), counted(omitted))
}

fn note_text(shortened: Option<String>, omitted: Option<String>) -> String {
    let mut what = Vec::new();
    if let Some(shortened) = shortened {
        what.push(format!("diffs left out of {shortened}"));
    }
    if let Some(omitted) = omitted {
        what.push(format!("left out: {omitted}"));
    }
    let what = if what.is_empty() {
        String::new()
    } else {
        format!(" ({})", what.join("; "))
    };
    format!(
        "> [!NOTE]\n\
         > **Output truncated** to stay under GitHub's comment size limit{what}. \
         To see the full plan, run `slipway show PLANFILE` on the plan file saved \
         with `slipway plan -out PLANFILE`.\n"
    )
}

/// The summary sentence and the deployment table, cut to `budget` bytes by
/// leaving out table rows if needed. Returns the text and how many rows were
/// left out.
fn head(plan: &Plan, budget: usize) -> (String, usize) {
    let mut head = format!("**{}**\n", summary_sentence(&plan.summary));
    if plan.deployments.is_empty() {
        return (head, 0);
    }
    head.push_str("\n| Deployment | Action | Version | Environment | Stops for |\n");
    head.push_str("| --- | --- | --- | --- | --- |\n");
    let rows: Vec<(bool, String)> = plan
        .deployments
        .iter()
        .map(|d| (d.action == Action::Destroy, table_row(plan, d)))
        .collect();
    // Destroy rows are always shown: the room they need is kept for them.
    let destroy_room: usize = rows.iter().filter(|(d, _)| *d).map(|(_, r)| r.len()).sum();
    let mut left_out = 0;
    for (destroy, row) in &rows {
        if !*destroy
            && (left_out > 0 || head.len() + destroy_room + row.len() + OVERFLOW_ROOM > budget)
        {
            left_out += 1;
            continue;
        }
        head.push_str(row);
    }
    if left_out > 0 {
        head.push_str(&format!(
            "| … and {left_out} more {} (none destroyed) | | | | |\n",
            if left_out == 1 {
                "deployment"
            } else {
                "deployments"
            }
        ));
    }
    (head, left_out)
}

/// Room for the table's closing "… and N more" row.
const OVERFLOW_ROOM: usize = 80;

fn table_row(plan: &Plan, deployment: &DeploymentChange) -> String {
    let action = match deployment.action {
        Action::NoOp => "unchanged",
        Action::Destroy => "**destroy**",
        other => other.as_str(),
    };
    format!(
        "| {} | {} | {} | {} | {} |\n",
        code_cell(&deployment.address),
        action,
        table_cell(&escape_text(&version_change(
            deployment.version_before.as_deref(),
            deployment.version_after.as_deref()
        ))),
        table_cell(&escape_text(&deployment.environment)),
        table_cell(&escape_text(&stops_for(plan, deployment))),
    )
}

/// What apply will stop for before or during this deployment: a protected
/// environment's approval, and the rollout's approvals by step.
fn stops_for(plan: &Plan, deployment: &DeploymentChange) -> String {
    let Some(scheduled) = plan
        .schedule
        .waves
        .iter()
        .flat_map(|w| w.deployments.iter())
        .find(|s| s.address == deployment.address)
    else {
        return String::new();
    };
    let mut stops = Vec::new();
    if scheduled.needs_approval_before_start {
        stops.push(format!("protected: -approve {}", deployment.environment));
    }
    for step in &scheduled.steps {
        if let Some(approval) = &step.approval {
            stops.push(format!("approval {approval} after step {}", step.index));
        }
    }
    stops.join("; ")
}

/// `1.4.2 → 1.5.0`, `(none) → 2.3.0`, or `1.4.2` when the version stays.
fn version_change(before: Option<&str>, after: Option<&str>) -> String {
    match (before, after) {
        (Some(before), Some(after)) if before == after => before.to_string(),
        _ => format!(
            "{} → {}",
            before.unwrap_or("(none)"),
            after.unwrap_or("(none)")
        ),
    }
}

fn sections(plan: &Plan) -> Vec<Section<'_>> {
    let mut sections = Vec::new();
    if !plan.warnings.is_empty() {
        sections.push(warnings_section(&plan.warnings));
    }
    sections.extend(
        plan.deployments
            .iter()
            .filter(|deployment| deployment.action != Action::NoOp)
            .map(deployment_section),
    );
    if !plan.schedule.waves.is_empty() {
        sections.push(schedule_section(&plan.schedule));
    }
    if !plan.outputs.is_empty() {
        sections.push(outputs_section(&plan.outputs));
    }
    sections
}

fn warnings_section(warnings: &[String]) -> Section<'static> {
    let mut text = String::new();
    for warning in warnings {
        text.push_str("> [!WARNING]\n");
        for line in warning.lines() {
            text.push_str("> ");
            text.push_str(&escape_text(line));
            text.push('\n');
        }
        text.push('\n');
    }
    text.pop();
    Section {
        label: "the warnings".to_string(),
        full: text,
        deployment: None,
    }
}

fn deployment_section(deployment: &DeploymentChange) -> Section<'_> {
    Section {
        label: code_span(&deployment.address),
        full: deployment_details(deployment, &[]),
        deployment: Some(deployment),
    }
}

/// The details of `deployment` with one, two, … of its diffs left out,
/// largest diffs first.
fn shortened_details(deployment: &DeploymentChange) -> impl Iterator<Item = String> + '_ {
    let mut diff_indexes: Vec<usize> = (0..deployment.reasons.len())
        .filter(|&index| deployment.reasons[index].diff.is_some())
        .collect();
    diff_indexes.sort_by_key(|&index| {
        std::cmp::Reverse(
            deployment.reasons[index]
                .diff
                .as_ref()
                .map_or(0, String::len),
        )
    });
    (1..=diff_indexes.len())
        .map(move |left_out| deployment_details(deployment, &diff_indexes[..left_out]))
}

/// The collapsible details of one deployment, without the diffs of the
/// reasons at `diffs_left_out`.
fn deployment_details(deployment: &DeploymentChange, diffs_left_out: &[usize]) -> String {
    let before = deployment.version_before.as_deref();
    let after = deployment.version_after.as_deref();
    let version = match deployment.action {
        Action::Create => after.map(str::to_string),
        Action::Destroy => before.map(str::to_string),
        Action::Update | Action::NoOp => {
            (before.is_some() || after.is_some()).then(|| version_change(before, after))
        }
    };
    let mut summary = format!(
        "<code>{}</code> {}",
        escape_html(&deployment.address),
        action_outcome(deployment.action)
    );
    if let Some(version) = version {
        summary.push_str(": ");
        summary.push_str(&escape_html(&version));
    }

    let target = match deployment.target {
        TargetKind::Vm => "VM hosts",
        TargetKind::Ecs => "ECS",
    };
    let mut context = format!(
        "Service {} in environment {} on {target}",
        code_span(&deployment.service),
        code_span(&deployment.environment)
    );
    if let Some(rollout) = &deployment.rollout {
        context.push_str(&format!(", rollout {}", code_span(rollout)));
    }
    context.push('.');

    let mut body = format!("{context}\n\n");
    if let Some(promotion) = &deployment.promotion {
        body.push_str(&escape_text(&promotion.describe()));
        body.push_str(".\n\n");
    }
    for (index, reason) in deployment.reasons.iter().enumerate() {
        write_reason(&mut body, reason, !diffs_left_out.contains(&index));
    }
    details(&summary, &body)
}

fn write_reason(body: &mut String, reason: &Reason, with_diff: bool) {
    body.push_str("- ");
    body.push_str(
        &escape_text(&crate::encode::text::visible(&reason.summary)).replace('\n', "\n  "),
    );
    body.push('\n');
    let Some(diff) = &reason.diff else {
        return;
    };
    body.push('\n');
    if with_diff {
        body.push_str(&fenced("diff", &crate::encode::text::visible(diff)));
    } else {
        body.push_str(&format!(
            "  _Diff of {} left out to keep this comment short._\n",
            count_noun(diff.lines().count(), "line")
        ));
    }
    body.push('\n');
}

fn schedule_section(schedule: &Schedule) -> Section<'static> {
    let deployment_count: usize = schedule.waves.iter().map(|w| w.deployments.len()).sum();
    let summary = format!(
        "Schedule: {}, {}",
        count_noun(schedule.waves.len(), "wave"),
        count_noun(deployment_count, "deployment")
    );
    let mut body = String::new();
    for wave in &schedule.waves {
        let addresses: Vec<String> = wave
            .deployments
            .iter()
            .map(|deployment| code_span(&deployment.address))
            .collect();
        let parallel = if addresses.len() > 1 {
            " (parallel)"
        } else {
            ""
        };
        body.push_str(&format!(
            "**Wave {}**{parallel}: {}\n\n",
            wave.index,
            addresses.join(", ")
        ));
        for deployment in &wave.deployments {
            write_scheduled_deployment(&mut body, deployment);
            if let Some(words) = super::dependency_words(deployment, wave.index > 1) {
                body.push_str(&escape_text(&words));
                body.push_str("\n\n");
            }
        }
    }
    Section {
        label: "the schedule".to_string(),
        full: details(&escape_html(&summary), &body),
        deployment: None,
    }
}

fn write_scheduled_deployment(body: &mut String, deployment: &ScheduledDeployment) {
    body.push_str(&format!(
        "{}: {}",
        code_span(&deployment.address),
        deployment.action.as_str()
    ));
    if let Some(strategy) = strategy_words(deployment.strategy) {
        body.push_str(", ");
        body.push_str(&escape_text(strategy));
    }
    if deployment.needs_approval_before_start {
        body.push_str(", **needs approval before start**");
    }
    body.push_str("\n\n");

    if deployment.action == Action::NoOp && deployment.steps.is_empty() {
        body.push_str("Nothing to do.\n\n");
        return;
    }
    for step in &deployment.steps {
        write_step(body, step);
    }
    if !deployment.steps.is_empty() {
        body.push('\n');
    }
    if let Some(end) = &deployment.ends_with {
        body.push_str(&escape_text(&describe_rollout_end(end)));
        body.push_str("\n\n");
    }
    body.push_str(&format!(
        "**On failure** ({})",
        escape_text(deployment.on_failure.as_str())
    ));
    if !deployment.rollback.is_empty() {
        body.push_str(": ");
        body.push_str(&escape_text(failure_consequence(&deployment.rollback)));
    }
    body.push_str("\n\n");
}

/// A numbered list item per step; bake, gates and approval are nested bullets
/// indented to the item's content so they stay inside it.
fn write_step(body: &mut String, step: &Step) {
    let marker = format!("{}. ", step.index);
    let nested = " ".repeat(marker.len());
    body.push_str(&marker);
    body.push_str(&escape_text(&describe_step_kind(&step.kind)));
    body.push('\n');
    if let Some(bake) = &step.bake {
        body.push_str(&format!("{nested}- bake {}\n", escape_text(bake.as_str())));
    }
    for gate in &step.gates {
        body.push_str(&format!(
            "{nested}- gate {} ({}): {}\n",
            code_span(&gate.name),
            escape_text(&gate.kind),
            escape_text_keeping_code(&gate.detail.replace('\n', " "))
        ));
    }
    if let Some(approval) = &step.approval {
        body.push_str(&format!("{nested}- approval {}\n", code_span(approval)));
    }
}

fn outputs_section(outputs: &[OutputValue]) -> Section<'static> {
    let mut body = String::from("| Output | Value |\n| --- | --- |\n");
    for output in outputs {
        let value = if output.sensitive {
            "_(sensitive)_".to_string()
        } else {
            let json =
                serde_json::to_string(&output.value).unwrap_or_else(|_| output.value.to_string());
            code_cell(&json)
        };
        body.push_str(&format!("| {} | {} |\n", code_cell(&output.name), value));
    }
    Section {
        label: "the outputs".to_string(),
        full: details(&escape_html(&format!("Outputs ({})", outputs.len())), &body),
        deployment: None,
    }
}

/// A collapsible block. `summary` is HTML; `body` is Markdown, which GitHub
/// renders only after a blank line.
fn details(summary: &str, body: &str) -> String {
    let mut text = format!("<details><summary>{summary}</summary>\n\n{body}");
    if !text.ends_with("\n\n") {
        text.push('\n');
    }
    text.push_str("</details>\n");
    text
}

/// A fenced code block whose fence is longer than any backtick run inside
/// `content`, so the content cannot close it early.
fn fenced(language: &str, content: &str) -> String {
    let fence = "`".repeat(longest_backtick_run(content).max(2) + 1);
    let mut block = format!("{fence}{language}\n{content}");
    if !block.ends_with('\n') {
        block.push('\n');
    }
    block.push_str(&fence);
    block.push('\n');
    block
}

/// Inline code that shows `text` verbatim, even when it holds backticks or
/// begins and ends with a space (CommonMark strips one from each end of a
/// span, so such text gets one more); `text` is one line and not empty.
fn code_span(text: &str) -> String {
    let text = text.replace(['\n', '\r'], " ");
    let ticks = "`".repeat(longest_backtick_run(&text) + 1);
    let stripped_by_commonmark =
        text.starts_with(' ') && text.ends_with(' ') && !text.chars().all(|c| c == ' ');
    if text.starts_with('`') || text.ends_with('`') || stripped_by_commonmark {
        format!("{ticks} {text} {ticks}")
    } else {
        format!("{ticks}{text}{ticks}")
    }
}

fn longest_backtick_run(text: &str) -> usize {
    text.split(|c| c != '`').map(str::len).max().unwrap_or(0)
}

/// A table cell that shows `text` as code. A table row is split at every `|`
/// that is not the second half of a backslash escape (`\\` is one too), and
/// then each `\|` of a cell loses its backslash, also inside a code span: so
/// a `|` after an odd number of backslashes cannot be written in a code span
/// there. Such text is written as `<code>` with every ASCII punctuation
/// character a numeric character reference instead.
fn code_cell(text: &str) -> String {
    let span = code_span(text);
    let mut backslashes = 0;
    let mut writable = true;
    for c in span.chars() {
        match c {
            '\\' => backslashes += 1,
            '|' if backslashes % 2 == 1 => writable = false,
            _ => backslashes = 0,
        }
        if c != '\\' {
            backslashes = 0;
        }
    }
    if writable {
        return table_cell(&span);
    }
    let mut code = String::from("<code>");
    for c in text.chars() {
        match c {
            '\n' | '\r' => code.push(' '),
            c if c.is_ascii_punctuation() => code.push_str(&format!("&#{};", u32::from(c))),
            c => code.push(c),
        }
    }
    code.push_str("</code>");
    code
}

/// Makes `cell` (text, not code: see [`code_cell`]) safe inside a table
/// row: pipes escaped, one line, and spaces at either end written as
/// references, since a cell is trimmed.
fn table_cell(cell: &str) -> String {
    let cell = cell.replace('|', "\\|").replace(['\n', '\r'], " ");
    let body = cell.trim_matches([' ', '\t']);
    if body.len() == cell.len() {
        return cell;
    }
    let reference = |c: char| format!("&#{};", u32::from(c));
    let start = cell.len() - cell.trim_start_matches([' ', '\t']).len();
    let lead: String = cell[..start].chars().map(reference).collect();
    let trail: String = cell[start + body.len()..].chars().map(reference).collect();
    format!("{lead}{body}{trail}")
}

/// Escapes the characters that would otherwise start Markdown or HTML markup.
fn escape_text(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        if matches!(
            character,
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '~' | '&'
        ) {
            escaped.push('\\');
        }
        escaped.push(character);
    }
    escaped
}

/// Escapes `text` like [`escape_text`], except inside `` `code` `` spans, which
/// are kept as code. Text with an unpaired backtick is escaped throughout.
fn escape_text_keeping_code(text: &str) -> String {
    if !text.matches('`').count().is_multiple_of(2) {
        return escape_text(text);
    }
    text.split('`')
        .enumerate()
        .map(|(index, part)| {
            if index % 2 == 1 {
                code_span(part)
            } else {
                escape_text(part)
            }
        })
        .collect()
}

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::{code_span, fenced, render, render_within, COMMENT_LIMIT};

    /// Property tests of the encoders against a model of how GitHub reads
    /// markdown (cmark-gfm): values are either refused at validate time
    /// (`encode::text::forbidden_in_line`) or arrive byte-exact, and no value
    /// can open or close a table cell, a code span or an HTML comment.
    mod encoders {
        use super::super::{code_cell, code_span, escape_html, escape_text, fenced, table_cell};
        use proptest::prelude::*;

        /// The cells of a table row as cmark-gfm splits them: at every `|`
        /// that is not the second half of a backslash escape (a backslash
        /// and any ASCII punctuation, `\\` included); then each cell loses
        /// the backslash of every `\|` and is trimmed.
        fn gfm_cells(row: &str) -> Vec<String> {
            let inner = row.trim().strip_prefix('|').expect("a row starts with |");
            let mut cells = Vec::new();
            let mut cell = String::new();
            let mut chars = inner.chars().peekable();
            while let Some(c) = chars.next() {
                match c {
                    '\\' if chars.peek().is_some_and(|n| n.is_ascii_punctuation()) => {
                        cell.push(c);
                        cell.push(chars.next().unwrap());
                    }
                    '|' => cells.push(std::mem::take(&mut cell)),
                    c => cell.push(c),
                }
            }
            assert!(cell.trim().is_empty(), "a row ends with |: {row:?}");
            cells
                .into_iter()
                .map(|cell| {
                    cell.replace("\\|", "|")
                        .trim_matches([' ', '\t'])
                        .to_string()
                })
                .collect()
        }

        /// The text of a CommonMark code span that is all of `text`: the
        /// opening backtick run must be closed by the first run of the same
        /// length, at the very end; line endings become spaces, and one
        /// space is stripped from each end when both ends have one (and
        /// not everything is a space).
        fn code_span_text(text: &str) -> Option<String> {
            let open = text.chars().take_while(|c| *c == '`').count();
            if open == 0 {
                return None;
            }
            let rest = &text[open..];
            let mut runs = rest.char_indices().peekable();
            let mut closing = None;
            while let Some((at, c)) = runs.next() {
                if c != '`' {
                    continue;
                }
                let mut length = 1;
                while runs.next_if(|(_, c)| *c == '`').is_some() {
                    length += 1;
                }
                if length == open {
                    closing = Some(at);
                    break;
                }
            }
            let closing = closing?;
            if closing + open != rest.len() {
                return None;
            }
            let content = rest[..closing].replace(['\n', '\r'], " ");
            let strip = content.starts_with(' ')
                && content.ends_with(' ')
                && !content.chars().all(|c| c == ' ');
            Some(if strip {
                content[1..content.len() - 1].to_string()
            } else {
                content
            })
        }

        /// Inline text with backslash escapes only: every ASCII punctuation
        /// character that markdown could read as markup must be escaped, so
        /// none of them opens anything (`<` an HTML tag or comment, a
        /// backtick a code span). `None` when one is bare.
        fn escaped_text(text: &str) -> Option<String> {
            let mut out = String::new();
            let mut chars = text.chars();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => match chars.next() {
                        Some(n) if n.is_ascii_punctuation() => out.push(n),
                        Some(n) => {
                            out.push('\\');
                            out.push(n);
                        }
                        None => out.push('\\'),
                    },
                    '&' => {
                        let end = chars.as_str().find(';')?;
                        let code = chars.as_str()[..end].strip_prefix('#')?.parse().ok()?;
                        out.push(char::from_u32(code)?);
                        chars = chars.as_str()[end + 1..].chars();
                    }
                    '`' | '*' | '_' | '[' | ']' | '<' | '>' | '~' => return None,
                    c => out.push(c),
                }
            }
            Some(out)
        }

        /// `<code>` text whose markup characters are all numeric references.
        fn html_code_text(text: &str) -> Option<String> {
            let inner = text.strip_prefix("<code>")?.strip_suffix("</code>")?;
            decode_references(inner)
        }

        /// HTML text: no `<`, `>` or `"` of its own; `&` only as a reference.
        fn decode_references(text: &str) -> Option<String> {
            if text.contains(['<', '>', '"']) {
                return None;
            }
            let mut out = String::new();
            let mut rest = text;
            while let Some(at) = rest.find('&') {
                out.push_str(&rest[..at]);
                let end = rest[at..].find(';')? + at;
                let name = &rest[at + 1..end];
                out.push(match name {
                    "amp" => '&',
                    "lt" => '<',
                    "gt" => '>',
                    "quot" => '"',
                    _ => char::from_u32(name.strip_prefix('#')?.parse().ok()?)?,
                });
                rest = &rest[end + 1..];
            }
            out.push_str(rest);
            Some(out)
        }

        fn refused(value: &str) -> bool {
            crate::encode::text::forbidden_in_line(value).is_some()
        }

        /// Any text, with the characters that matter here often.
        fn value() -> impl Strategy<Value = String> {
            prop_oneof![
                any::<String>(),
                "[a-z|`\\\\ *_<>!&#;\\-]{0,12}",
                "[ `|\\\\]{1,8}",
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]

            #[test]
            fn code_in_a_table_cell_is_its_own_cell_and_exact(text in value()) {
                prop_assume!(!text.is_empty() && !refused(&text));
                let row = format!("| {} | next |", code_cell(&text));
                let cells = gfm_cells(&row);
                prop_assert_eq!(cells.len(), 2, "{}", row);
                prop_assert_eq!(&cells[1], "next");
                let shown = code_span_text(&cells[0]).or_else(|| html_code_text(&cells[0]));
                prop_assert_eq!(shown.as_deref(), Some(text.as_str()), "{}", row);
            }

            #[test]
            fn text_in_a_table_cell_is_its_own_cell_and_exact(text in value()) {
                prop_assume!(!refused(&text));
                let row = format!("| {} | next |", table_cell(&escape_text(&text)));
                let cells = gfm_cells(&row);
                prop_assert_eq!(cells.len(), 2, "{}", row);
                prop_assert_eq!(&cells[1], "next");
                prop_assert_eq!(escaped_text(&cells[0]), Some(text.clone()), "{}", row);
            }

            #[test]
            fn escaped_text_opens_nothing(text in value()) {
                prop_assume!(!refused(&text));
                prop_assert_eq!(escaped_text(&escape_text(&text)), Some(text.clone()));
            }

            #[test]
            fn a_code_span_is_closed_only_at_its_end(text in value()) {
                prop_assume!(!text.is_empty() && !refused(&text));
                let span = code_span(&text);
                prop_assert_eq!(code_span_text(&span), Some(text.clone()), "{}", span);
            }

            #[test]
            fn html_text_holds_no_markup(text in value()) {
                let html = escape_html(&text);
                prop_assert_eq!(decode_references(&html), Some(text.clone()));
                prop_assert!(!html.contains("<!--") && !html.contains("-->"));
            }

            #[test]
            fn a_fenced_block_is_closed_only_by_its_own_fence(
                lines in proptest::collection::vec(value(), 0..6)
            ) {
                let content = lines.join("\n");
                prop_assume!(crate::encode::text::forbidden_in_content(&content).is_none());
                let block = fenced("diff", &content);
                let fence = block.lines().next().unwrap().trim_end_matches("diff");
                // A line closes the fence when it is, after at most three
                // spaces, a run of at least as many backticks and spaces.
                let closes = |line: &str| {
                    let indent = line.len() - line.trim_start_matches(' ').len();
                    let rest = line.trim_start_matches(' ');
                    let ticks = rest.len() - rest.trim_start_matches('`').len();
                    indent <= 3 && ticks >= fence.len() && rest[ticks..].trim_matches(' ').is_empty()
                };
                let body: Vec<&str> = block.lines().collect();
                let first_close = body.iter().skip(1).position(|l| closes(l)).map(|i| i + 1);
                prop_assert_eq!(first_close, Some(body.len() - 1), "{}", block);
            }
        }
    }
    use crate::views::test_fixture::{
        plan_with_huge_diff, representative_plan, snapshot_settings, unchanged_plan,
    };

    #[test]
    fn snapshot_of_representative_plan() {
        let text = render(&representative_plan());
        snapshot_settings().bind(|| insta::assert_snapshot!("markdown_representative_plan", text));
    }

    #[test]
    fn first_line_is_the_bold_summary() {
        let text = render(&representative_plan());
        assert_eq!(
            text.lines().next(),
            Some("**Plan: 1 to create, 2 to update, 1 to destroy.**")
        );
        let unchanged = render(&unchanged_plan());
        assert_eq!(
            unchanged.lines().next(),
            Some("**No changes. Deployments match the configuration and state.**")
        );
    }

    #[test]
    fn pipes_in_table_cells_are_escaped() {
        let text = render(&representative_plan());
        assert!(
            text.contains("| `\"curl -fsS https://checkout.example.com/health \\| grep ok\"` |")
        );
    }

    #[test]
    fn full_comment_has_no_truncation_note() {
        let text = render(&representative_plan());
        assert!(!text.contains("Output truncated"));
    }

    #[test]
    fn huge_diff_is_cut_to_the_comment_limit() {
        let plan = plan_with_huge_diff(5_000);
        let text = render(&plan);

        assert!(text.len() <= COMMENT_LIMIT, "{} bytes", text.len());
        assert!(text.starts_with("**Plan: 1 to create, 2 to update, 1 to destroy.**\n"));
        for deployment in &plan.deployments {
            assert!(text.contains(&format!("| `{}` |", deployment.address)));
        }
        assert!(text.contains("Output truncated"));
        assert!(text.contains("slipway show PLANFILE"));
        assert!(text.contains("diffs left out of `deployment.myapp-prod`"));
        assert!(text.contains("_Diff of 10003 lines left out to keep this comment short._"));
        assert!(text.contains("+LOG_LEVEL=warn"), "the small diff is kept");
        assert!(text.contains("<summary>Schedule: 2 waves, 4 deployments</summary>"));
        assert_fences_balanced(&text);
        assert_eq!(
            text.matches("<details>").count(),
            text.matches("</details>").count()
        );
    }

    #[test]
    fn sections_that_do_not_fit_are_left_out_whole() {
        let text = render_within(&representative_plan(), 3_500);
        assert!(text.len() <= 3_500, "{} bytes", text.len());
        assert!(text.contains("left out:"));
        assert!(text.contains("slipway show PLANFILE"));
        assert_fences_balanced(&text);
        assert_eq!(
            text.matches("<details>").count(),
            text.matches("</details>").count()
        );
    }

    #[test]
    fn table_rows_are_cut_when_even_the_table_does_not_fit() {
        let text = render_within(&representative_plan(), 1_300);
        assert!(text.len() <= 1_300, "{} bytes", text.len());
        assert!(
            text.contains("more deployments (none destroyed) | | | | |"),
            "{text}"
        );
        assert!(text.contains("slipway show PLANFILE"));
        // The destroy is listed last in the plan, and still shown.
        assert!(
            text.contains("| `deployment.legacy-worker-prod` | **destroy** |"),
            "{text}"
        );
    }

    #[test]
    fn the_table_shows_destroys_protected_environments_and_approvals() {
        let text = render(&representative_plan());
        let table: Vec<&str> = text.lines().filter(|l| l.starts_with("| `")).collect();
        assert!(
            table.iter().any(|row| row.contains("**destroy**")),
            "{table:#?}"
        );
        assert!(
            table.iter().any(|row| row.contains("protected: -approve")),
            "{table:#?}"
        );
    }

    #[test]
    fn fences_outgrow_backticks_in_the_content() {
        let block = fenced("diff", "+```\n+code\n+```");
        assert_eq!(block, "````diff\n+```\n+code\n+```\n````\n");
        assert_fences_balanced(&block);
        assert_eq!(code_span("a`b"), "``a`b``");
        assert_eq!(code_span("`x"), "`` `x ``");
    }

    /// Every fence that opens a code block is closed by a matching fence.
    fn assert_fences_balanced(text: &str) {
        let mut open_fence: Option<usize> = None;
        for line in text.lines() {
            let ticks = line.len() - line.trim_start_matches('`').len();
            match open_fence {
                None if ticks >= 3 => open_fence = Some(ticks),
                Some(opened) if ticks >= opened && line.trim_matches('`').trim().is_empty() => {
                    open_fence = None
                }
                _ => {}
            }
        }
        assert_eq!(open_fence, None, "a code block is left open");
    }
}
