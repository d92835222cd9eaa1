//! Configuration diagnostics: an error or warning tied to a place in a source file.
//!
//! Every stage of the front end (load, parse, evaluate, validate) reports problems
//! as [`Diagnostic`] values collected in [`Diagnostics`], so that one run reports
//! all of them together. Rendering (with the file, line, column and the source
//! line) goes through miette. This module does not decide what is an error; the
//! stages do.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Index of a file in a [`SourceMap`].
pub type FileId = usize;

/// A byte range in one source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Span {
    pub file: FileId,
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(file: FileId, range: std::ops::Range<usize>) -> Span {
        Span {
            file,
            start: range.start,
            end: range.end,
        }
    }
}

/// A configuration file as read from disk.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub path: PathBuf,
    /// The path as shown to users (relative to where slipway was started when possible).
    pub display: String,
    pub text: Arc<str>,
}

/// All source files of a run, so diagnostics can point into any of them.
#[derive(Debug, Clone, Default)]
pub struct SourceMap {
    files: Vec<SourceFile>,
}

impl SourceMap {
    pub fn add(&mut self, path: &Path, text: String) -> FileId {
        let display = display_path(path);
        self.files.push(SourceFile {
            path: path.to_path_buf(),
            display,
            text: Arc::from(text),
        });
        self.files.len() - 1
    }

    pub fn file(&self, id: FileId) -> &SourceFile {
        &self.files[id]
    }

    pub fn files(&self) -> &[SourceFile] {
        &self.files
    }

    /// 1-based line and column of a byte offset.
    pub fn line_column(&self, file: FileId, offset: usize) -> (usize, usize) {
        let text = &self.files[file].text;
        let offset = floor_char_boundary(text, offset.min(text.len()));
        let before = &text[..offset];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        (line, column)
    }

    /// Byte offset of a 1-based line and column (clamped to the file).
    pub fn offset_of(&self, file: FileId, line: usize, column: usize) -> usize {
        let text = &self.files[file].text;
        let mut offset = 0;
        for (index, content) in text.split_inclusive('\n').enumerate() {
            if index + 1 == line {
                let col_bytes: usize = content
                    .chars()
                    .take(column.saturating_sub(1))
                    .map(char::len_utf8)
                    .sum();
                return offset + col_bytes;
            }
            offset += content.len();
        }
        text.len()
    }
}

fn floor_char_boundary(text: &str, mut index: usize) -> usize {
    while index > 0 && !text.is_char_boundary(index) {
        index -= 1;
    }
    index
}

fn display_path(path: &Path) -> String {
    let relative = std::env::current_dir()
        .ok()
        .and_then(|cwd| path.strip_prefix(cwd).ok().map(Path::to_path_buf));
    relative
        .unwrap_or_else(|| path.to_path_buf())
        .display()
        .to_string()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

/// One problem found in the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    /// Short stable identifier, e.g. `unknown-attribute`.
    pub code: &'static str,
    pub message: String,
    pub span: Option<Span>,
    /// Text under the source marker.
    pub label: Option<String>,
    /// What to do about it.
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn error(code: &'static str, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            code,
            message: message.into(),
            span: None,
            label: None,
            help: None,
        }
    }

    /// A problem that does not stop the configuration from loading.
    pub fn warning(code: &'static str, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(code, message)
        }
    }

    pub fn at(mut self, span: Span) -> Diagnostic {
        self.span = Some(span);
        self
    }

    pub fn at_opt(mut self, span: Option<Span>) -> Diagnostic {
        self.span = span;
        self
    }

    pub fn label(mut self, label: impl Into<String>) -> Diagnostic {
        self.label = Some(label.into());
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }
}

/// The diagnostics of one run, in the order they were found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diagnostics {
    items: Vec<Diagnostic>,
}

impl Diagnostics {
    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.items.push(diagnostic);
    }

    pub fn extend(&mut self, other: Diagnostics) {
        self.items.extend(other.items);
    }

    pub fn has_errors(&self) -> bool {
        self.items.iter().any(|d| d.severity == Severity::Error)
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Diagnostic> {
        self.items.iter()
    }

    /// Sort by file and position so output is stable across runs.
    pub fn sort(&mut self) {
        self.items.sort_by_key(|d| {
            d.span.map_or((usize::MAX, usize::MAX, usize::MAX), |s| {
                (s.file, s.start, s.end)
            })
        });
        self.items.dedup();
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{message}")]
struct RenderedDiagnostic {
    message: String,
    source_code: Option<miette::NamedSource<Arc<str>>>,
    span: Option<miette::SourceSpan>,
    label: Option<String>,
    help: Option<String>,
    severity: miette::Severity,
}

impl miette::Diagnostic for RenderedDiagnostic {
    fn severity(&self) -> Option<miette::Severity> {
        Some(self.severity)
    }

    fn help<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn std::fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.source_code
            .as_ref()
            .map(|s| s as &dyn miette::SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = miette::LabeledSpan> + '_>> {
        let span = self.span?;
        Some(Box::new(std::iter::once(
            miette::LabeledSpan::new_with_span(self.label.clone(), span),
        )))
    }
}

/// Render diagnostics for a terminal or a log: message, `file:line:column`, the
/// source line with a marker, and the help text.
pub fn render(sources: &SourceMap, diagnostics: &Diagnostics, color: bool) -> String {
    let theme = if color {
        miette::GraphicalTheme::unicode()
    } else {
        miette::GraphicalTheme::unicode_nocolor()
    };
    let handler = miette::GraphicalReportHandler::new_themed(theme).with_width(100);
    let mut out = String::new();
    for diagnostic in diagnostics.iter() {
        let rendered = to_miette(sources, diagnostic);
        let mut text = String::new();
        if handler.render_report(&mut text, &rendered).is_err() {
            text = format!("{}\n", diagnostic.message);
        }
        if let Some(span) = diagnostic.span {
            let file = sources.file(span.file);
            let (line, column) = sources.line_column(span.file, span.start);
            let _ = writeln!(
                out,
                "{}[{}]: {}:{line}:{column}",
                severity_word(diagnostic),
                diagnostic.code,
                crate::encode::text::visible(&file.display)
            );
        } else {
            let _ = writeln!(out, "{}[{}]", severity_word(diagnostic), diagnostic.code);
        }
        out.push_str(&text);
        out.push('\n');
    }
    let errors = diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count();
    if errors > 0 {
        let _ = writeln!(
            out,
            "{errors} error{}; nothing was changed.",
            if errors == 1 { "" } else { "s" }
        );
    }
    out
}

fn severity_word(diagnostic: &Diagnostic) -> &'static str {
    match diagnostic.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    }
}

fn to_miette(sources: &SourceMap, diagnostic: &Diagnostic) -> RenderedDiagnostic {
    let (source_code, span) = match diagnostic.span {
        Some(span) if !showable(&sources.file(span.file).text, span) => (None, None),
        Some(span) => {
            let file = sources.file(span.file);
            let len = span.end.saturating_sub(span.start);
            (
                Some(miette::NamedSource::new(&file.display, file.text.clone())),
                Some(miette::SourceSpan::new(span.start.into(), len)),
            )
        }
        None => (None, None),
    };
    // Messages may quote values (a validation's error_message interpolates
    // them): control characters are shown escaped, never sent to a terminal.
    let visible = |text: &str| crate::encode::text::visible(text).into_owned();
    RenderedDiagnostic {
        message: visible(&diagnostic.message),
        source_code,
        span,
        label: diagnostic.label.as_deref().map(visible),
        help: diagnostic.help.as_deref().map(visible),
        severity: match diagnostic.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        },
    }
}

/// Source lines longer than this are not shown under a diagnostic.
const MAX_SHOWN_LINE: usize = 400;

/// Whether the lines a rendered diagnostic would show (the span's and one on
/// each side) are fit for a terminal: none longer than [`MAX_SHOWN_LINE`]
/// characters, none with a control character other than tab. Otherwise the
/// diagnostic names the file, line and column without the source.
fn showable(text: &str, span: Span) -> bool {
    let start = floor_char_boundary(text, span.start.min(text.len()));
    let end = floor_char_boundary(text, span.end.min(text.len())).max(start);
    let from = text[..start]
        .rmatch_indices('\n')
        .nth(1)
        .map_or(0, |(i, _)| i + 1);
    let to = text[end..]
        .match_indices('\n')
        .nth(1)
        .map_or(text.len(), |(i, _)| end + i);
    text[from..to].split('\n').all(|line| {
        line.chars().count() <= MAX_SHOWN_LINE
            && !line
                .chars()
                .any(|c| c.is_control() && c != '\t' && c != '\r')
    })
}

/// Names longer than this get no "did you mean" suggestion.
pub const MAX_SUGGESTED_NAME: usize = 64;

/// The closest candidate to `name`, when it is close enough to suggest.
pub fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    // The edit distance costs the product of the lengths: a long name (a
    // hostile or generated one) gets no suggestion, and a candidate whose
    // length alone rules it out is not measured.
    if name.chars().count() > MAX_SUGGESTED_NAME {
        return None;
    }
    let name_len = name.chars().count();
    candidates
        .into_iter()
        .filter_map(|c| {
            let c_len = c.chars().count();
            let limit = (c_len.max(name_len) / 3).max(2);
            if c_len.abs_diff(name_len) > limit || c_len > MAX_SUGGESTED_NAME {
                return None;
            }
            let distance = strsim::damerau_levenshtein(name, c);
            (distance <= limit && distance > 0).then_some((distance, c))
        })
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_column_round_trips() {
        let mut sources = SourceMap::default();
        let id = sources.add(Path::new("a.hcl"), "ab\ncdé\nf".to_string());
        assert_eq!(sources.line_column(id, 0), (1, 1));
        assert_eq!(sources.line_column(id, 3), (2, 1));
        let offset = sources.offset_of(id, 3, 1);
        assert_eq!(&sources.file(id).text[offset..], "f");
        assert_eq!(sources.line_column(id, offset), (3, 1));
    }

    #[test]
    fn long_names_get_no_suggestion_and_no_quadratic_search() {
        let long = "a".repeat(100_000);
        let started = std::time::Instant::now();
        assert_eq!(did_you_mean(&long, [long.as_str(), "install_dir"]), None);
        let candidates: Vec<String> = (0..1000)
            .map(|i| format!("{}{i}", "b".repeat(60)))
            .collect();
        assert_eq!(
            did_you_mean("install_dir", candidates.iter().map(String::as_str)),
            None
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }

    #[test]
    fn source_lines_unfit_for_a_terminal_are_not_shown() {
        let mut sources = SourceMap::default();
        let long = format!("a = {}\nb = 1\n", "x".repeat(100_000));
        let id = sources.add(Path::new("long.hcl"), long);
        let escape = sources.add(Path::new("esc.hcl"), "a = \"\u{1b}[2J\"\n".to_string());
        let mut diagnostics = Diagnostics::default();
        diagnostics.push(Diagnostic::error("x", "bad").at(Span::new(id, 4..100_004)));
        diagnostics.push(
            Diagnostic::error("y", "bad \u{1b}]0;title\u{7}")
                .at(Span::new(escape, 4..10))
                .help("\u{1b}[2J"),
        );
        let text = render(&sources, &diagnostics, false);
        assert!(
            text.contains("long.hcl:1:5") && text.contains("esc.hcl:1:5"),
            "{text}"
        );
        assert!(text.len() < 1000, "{text}");
        assert!(!text.contains('\u{1b}'), "{text}");
    }

    #[test]
    fn suggestions_are_close_names_only() {
        assert_eq!(
            did_you_mean("instal_dir", ["install_dir", "run_as"]),
            Some("install_dir")
        );
        assert_eq!(did_you_mean("zzz", ["install_dir", "run_as"]), None);
    }

    #[test]
    fn render_names_file_line_column_and_source() {
        let mut sources = SourceMap::default();
        let id = sources.add(Path::new("main.hcl"), "a = 1\nbad = 2\n".to_string());
        let mut diagnostics = Diagnostics::default();
        diagnostics.push(
            Diagnostic::error("unknown-attribute", "unknown attribute \"bad\"")
                .at(Span::new(id, 6..9))
                .help("remove it"),
        );
        let text = render(&sources, &diagnostics, false);
        assert!(text.contains("main.hcl:2:1"), "{text}");
        assert!(text.contains("bad = 2"), "{text}");
        assert!(text.contains("remove it"), "{text}");
        assert!(text.contains("1 error; nothing was changed"), "{text}");
    }
}
