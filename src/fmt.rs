//! Canonical formatting of slipway's HCL configuration (`slipway fmt`).
//!
//! [`format_source`] rewrites a configuration file into a canonical layout in
//! the usual Terraform style, while keeping every comment:
//!
//! - the text must parse first; on a syntax error nothing is changed and a
//!   [`FormatError::Syntax`] with the position is returned;
//! - two spaces of indentation per level of `{`, `[` or `(` left open on a
//!   line; brackets opened together on one line count as a single level, and
//!   a line starting with a closing bracket is dedented;
//! - trailing whitespace is removed, runs of blank lines collapse to one, no
//!   blank line follows an opening bracket or precedes a closing one, and the
//!   file ends with exactly one newline (CRLF becomes LF);
//! - `=` of attributes gets exactly one space on each side, and the `=` signs
//!   of consecutive single-line attributes at the same level are aligned (a
//!   blank line, a comment line, a block or a multi-line attribute breaks the
//!   run, a heredoc does not); trailing comments of consecutive aligned
//!   lines are aligned too;
//! - block headers get a single space between type, labels and `{`;
//! - string literals, heredoc bodies and comment text are never altered;
//!   full-line comments are re-indented.
//!
//! The formatter works on lines and a small lexer that knows about quoted
//! strings (with `\` escapes and nested `${ }`/`%{ }` templates), heredocs
//! and the three comment styles, so it only ever changes whitespace outside
//! literals. The result is therefore semantically identical to the input,
//! and formatting is idempotent.

use thiserror::Error;

/// Error returned by [`format_source`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FormatError {
    /// The input is not valid HCL; it was left unformatted.
    #[error("syntax error at line {line}, column {column}: {message}")]
    Syntax {
        /// One-based line of the error.
        line: usize,
        /// One-based column of the error.
        column: usize,
        /// What the parser expected or found.
        message: String,
    },
}

/// Formats HCL source text into its canonical layout.
///
/// Returns [`FormatError::Syntax`] without formatting anything when `source`
/// does not parse. The output of a successful call parses to the same
/// configuration as the input, and formatting it again returns it unchanged.
pub fn format_source(source: &str) -> Result<String, FormatError> {
    if let Err(err) = hcl::edit::parser::parse_body(source) {
        let location = err.location();
        return Err(FormatError::Syntax {
            line: location.line(),
            column: location.column(),
            message: err.message().to_string(),
        });
    }
    let text = source.replace("\r\n", "\n");
    Ok(format_valid(&text))
}

/// What a byte of the source belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// Plain expression or structure syntax: whitespace here may change.
    Code,
    /// Inside a quoted string or heredoc (templates included): untouchable.
    Literal,
    /// Inside a comment: text kept, trailing whitespace may go.
    Comment,
}

/// The lexer state at the first byte of a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LineStart {
    /// The line starts in code: it gets re-indented and normalized.
    Code,
    /// The line continues a `/* */` comment.
    Comment,
    /// The line continues a string or a heredoc: kept as is.
    Literal,
}

#[derive(Debug, Clone, Copy)]
enum Mode<'a> {
    Str,
    Heredoc(&'a [u8]),
    /// Inside `${ }` or `%{ }`, with the depth of nested braces.
    Interp(usize),
    LineComment,
    BlockComment,
}

struct Scan {
    classes: Vec<Class>,
    starts: Vec<LineStart>,
    /// Indexes of the lines that open a heredoc, in order.
    heredoc_openers: Vec<usize>,
}

fn class_of(stack: &[Mode]) -> Class {
    match stack.first() {
        None => Class::Code,
        Some(Mode::LineComment | Mode::BlockComment) => Class::Comment,
        Some(_) => Class::Literal,
    }
}

fn start_of(stack: &[Mode]) -> LineStart {
    match class_of(stack) {
        Class::Code => LineStart::Code,
        Class::Comment => LineStart::Comment,
        Class::Literal => LineStart::Literal,
    }
}

fn is_ws(byte: u8) -> bool {
    byte == b' ' || byte == b'\t'
}

fn is_id_start(byte: u8) -> bool {
    byte.is_ascii_alphabetic() || byte == b'_' || byte >= 0x80
}

fn is_id_continue(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-' || byte >= 0x80
}

fn is_opener(byte: u8) -> bool {
    matches!(byte, b'{' | b'[' | b'(')
}

fn is_closer(byte: u8) -> bool {
    matches!(byte, b'}' | b']' | b')')
}

/// Recognizes `<<ID` or `<<-ID` directly followed by a newline at `pos`;
/// returns the delimiter and the position of that newline.
fn heredoc_open(src: &[u8], pos: usize) -> Option<(&[u8], usize)> {
    if src.get(pos + 1) != Some(&b'<') {
        return None;
    }
    let mut start = pos + 2;
    if src.get(start) == Some(&b'-') {
        start += 1;
    }
    if !src.get(start).is_some_and(|&b| is_id_start(b)) {
        return None;
    }
    let mut end = start + 1;
    while src.get(end).is_some_and(|&b| is_id_continue(b)) {
        end += 1;
    }
    (src.get(end) == Some(&b'\n')).then(|| (&src[start..end], end))
}

/// If the line starting at `pos` closes a heredoc with `delim` (optional
/// blanks, then the delimiter), returns the position right after it.
fn heredoc_close(src: &[u8], pos: usize, delim: &[u8]) -> Option<usize> {
    let mut at = pos;
    while src.get(at).is_some_and(|&b| is_ws(b)) {
        at += 1;
    }
    let end = at + delim.len();
    let closes =
        src.get(at..end) == Some(delim) && !src.get(end).is_some_and(|&b| is_id_continue(b));
    closes.then_some(end)
}

/// Classifies every byte and records the lexer state at each line start.
fn scan(src: &[u8]) -> Scan {
    let mut classes = vec![Class::Code; src.len()];
    let mut starts = vec![LineStart::Code];
    let mut heredoc_openers = Vec::new();
    let mut stack: Vec<Mode> = Vec::new();
    let at = |i: usize| src.get(i).copied();
    let mut i = 0;
    while i < src.len() {
        let c = src[i];
        let class = class_of(&stack);
        classes[i] = class;
        if c == b'\n' {
            match stack.last() {
                Some(Mode::LineComment) => {
                    stack.pop();
                    classes[i] = class_of(&stack);
                }
                Some(&Mode::Heredoc(delim)) => {
                    i += 1;
                    if let Some(end) = heredoc_close(src, i, delim) {
                        classes[i..end].fill(Class::Literal);
                        stack.pop();
                        i = end;
                    }
                    starts.push(LineStart::Literal);
                    continue;
                }
                _ => {}
            }
            i += 1;
            starts.push(start_of(&stack));
            continue;
        }
        match stack.last_mut() {
            None => match c {
                b'"' => {
                    stack.push(Mode::Str);
                    classes[i] = Class::Literal;
                }
                b'#' => {
                    stack.push(Mode::LineComment);
                    classes[i] = Class::Comment;
                }
                b'/' if at(i + 1) == Some(b'/') => {
                    stack.push(Mode::LineComment);
                    classes[i] = Class::Comment;
                }
                b'/' if at(i + 1) == Some(b'*') => {
                    stack.push(Mode::BlockComment);
                    classes[i] = Class::Comment;
                    classes[i + 1] = Class::Comment;
                    i += 2;
                    continue;
                }
                b'<' => {
                    if let Some((delim, newline)) = heredoc_open(src, i) {
                        heredoc_openers.push(starts.len() - 1);
                        i = newline + 1;
                        stack.push(Mode::Heredoc(delim));
                        if let Some(end) = heredoc_close(src, i, delim) {
                            classes[i..end].fill(Class::Literal);
                            stack.pop();
                            i = end;
                        }
                        starts.push(LineStart::Literal);
                        continue;
                    }
                }
                _ => {}
            },
            Some(Mode::Str | Mode::Heredoc(_)) => {
                let quoted = matches!(stack.last(), Some(Mode::Str));
                match c {
                    b'\\' if quoted && at(i + 1).is_some_and(|b| b != b'\n') => {
                        classes[i + 1] = class;
                        i += 2;
                        continue;
                    }
                    b'"' if quoted => {
                        stack.pop();
                    }
                    b'$' | b'%' if at(i + 1) == Some(c) && at(i + 2) == Some(b'{') => {
                        classes[i + 1..i + 3].fill(class);
                        i += 3;
                        continue;
                    }
                    b'$' | b'%' if at(i + 1) == Some(b'{') => {
                        classes[i + 1] = class;
                        stack.push(Mode::Interp(0));
                        i += 2;
                        continue;
                    }
                    _ => {}
                }
            }
            Some(Mode::Interp(depth)) => match c {
                b'{' => *depth += 1,
                b'}' if *depth == 0 => {
                    stack.pop();
                }
                b'}' => *depth -= 1,
                b'"' => stack.push(Mode::Str),
                b'#' => stack.push(Mode::LineComment),
                b'/' if at(i + 1) == Some(b'/') => stack.push(Mode::LineComment),
                b'/' if at(i + 1) == Some(b'*') => {
                    stack.push(Mode::BlockComment);
                    classes[i + 1] = class;
                    i += 2;
                    continue;
                }
                _ => {}
            },
            Some(Mode::LineComment) => {}
            Some(Mode::BlockComment) => {
                if c == b'*' && at(i + 1) == Some(b'/') {
                    classes[i + 1] = class;
                    stack.pop();
                    i += 2;
                    continue;
                }
            }
        }
        i += 1;
    }
    Scan {
        classes,
        starts,
        heredoc_openers,
    }
}

/// Tracks open brackets across lines and decides indentation levels.
///
/// Brackets opened on the same line form one group worth one level, as do
/// brackets re-opened on a line that partly closed a group (`}, {`).
#[derive(Default)]
struct Indenter {
    groups: Vec<usize>,
    brackets: Vec<u8>,
}

impl Indenter {
    /// The innermost open bracket before the next line.
    fn context(&self) -> Option<u8> {
        self.brackets.last().copied()
    }

    /// Consumes the bracket events of one line and returns its level.
    fn line(&mut self, events: &[u8], leading_closer: bool) -> usize {
        let start = self.groups.len();
        let mut lowest = start;
        let mut join: Option<usize> = None;
        for &event in events {
            if is_opener(event) {
                self.brackets.push(event);
                match join {
                    Some(index) if index + 1 == self.groups.len() => self.groups[index] += 1,
                    _ => {
                        self.groups.push(1);
                        join = Some(self.groups.len() - 1);
                    }
                }
            } else {
                self.brackets.pop();
                if let Some(last) = self.groups.last_mut() {
                    *last -= 1;
                    if *last == 0 {
                        self.groups.pop();
                        join = None;
                        lowest = lowest.min(self.groups.len());
                    } else {
                        join = Some(self.groups.len() - 1);
                    }
                }
            }
        }
        if leading_closer {
            lowest.min(start.saturating_sub(1))
        } else {
            lowest
        }
    }
}

/// One line of output before alignment.
#[derive(Debug)]
enum Kind {
    Blank,
    /// Finished text (indentation included).
    Text(String),
    /// A single-line attribute that takes part in `=` alignment.
    Attr {
        key: String,
        /// From the `=` to the end of the code, without a trailing comment.
        value: String,
        comment: Option<String>,
    },
}

#[derive(Debug)]
struct OutLine {
    level: usize,
    kind: Kind,
    /// The line's last token is an opening bracket.
    opens: bool,
    /// The line starts with a closing bracket.
    closes_first: bool,
    /// A heredoc body or closing line without brackets: it does not break a
    /// run of aligned attributes, the heredoc being part of one of them.
    transparent: bool,
}

fn to_string(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn indent(level: usize) -> String {
    "  ".repeat(level)
}

/// End of `bytes` once trailing whitespace outside literals is dropped.
fn trimmed_end(bytes: &[u8], classes: &[Class]) -> usize {
    let mut end = bytes.len();
    while end > 0 && is_ws(bytes[end - 1]) && classes[end - 1] != Class::Literal {
        end -= 1;
    }
    end
}

/// `=` at `pos` is an assignment, not part of `==`, `!=`, `<=`, `>=`, `=>`.
fn is_bare_eq(bytes: &[u8], pos: usize) -> bool {
    let prev = pos.checked_sub(1).map(|p| bytes[p]);
    let next = bytes.get(pos + 1).copied();
    !matches!(prev, Some(b'=' | b'!' | b'<' | b'>')) && !matches!(next, Some(b'=' | b'>'))
}

/// Puts exactly one space around each assignment `=` in code.
fn normalize_equals(bytes: &[u8], classes: &[Class]) -> (Vec<u8>, Vec<Class>) {
    let mut out = Vec::with_capacity(bytes.len() + 4);
    let mut out_classes = Vec::with_capacity(bytes.len() + 4);
    let mut i = 0;
    while i < bytes.len() {
        if classes[i] == Class::Code && bytes[i] == b'=' && is_bare_eq(bytes, i) {
            while out.last().is_some_and(|&b| is_ws(b)) && out_classes.last() == Some(&Class::Code)
            {
                out.pop();
                out_classes.pop();
            }
            if !out.is_empty() {
                out.push(b' ');
                out_classes.push(Class::Code);
            }
            out.push(b'=');
            out_classes.push(Class::Code);
            i += 1;
            while i < bytes.len() && is_ws(bytes[i]) && classes[i] == Class::Code {
                i += 1;
            }
            if i < bytes.len() {
                out.push(b' ');
                out_classes.push(Class::Code);
            }
            continue;
        }
        out.push(bytes[i]);
        out_classes.push(classes[i]);
        i += 1;
    }
    (out, out_classes)
}

/// End of an identifier starting at `pos`, if one does.
fn ident_end(bytes: &[u8], classes: &[Class], pos: usize) -> Option<usize> {
    let code = |i: usize| classes.get(i) == Some(&Class::Code);
    if !(code(pos) && is_id_start(bytes[pos])) {
        return None;
    }
    let mut end = pos + 1;
    while end < bytes.len() && code(end) && is_id_continue(bytes[end]) {
        end += 1;
    }
    Some(end)
}

/// End of a complete quoted string starting at `pos`, if one does.
fn string_end(bytes: &[u8], classes: &[Class], pos: usize) -> Option<usize> {
    if classes.get(pos) != Some(&Class::Literal) || bytes[pos] != b'"' {
        return None;
    }
    let mut end = pos + 1;
    while end < bytes.len() && classes[end] == Class::Literal {
        end += 1;
    }
    (end < bytes.len() && end - pos >= 2 && bytes[end - 1] == b'"').then_some(end)
}

/// Rewrites `type  "label"  label{` into `type "label" label {`.
fn block_header(bytes: &[u8], classes: &[Class]) -> Option<Vec<u8>> {
    let mut end = ident_end(bytes, classes, 0)?;
    let mut parts = vec![&bytes[..end]];
    loop {
        while end < bytes.len() && is_ws(bytes[end]) && classes[end] == Class::Code {
            end += 1;
        }
        if end >= bytes.len() {
            return None;
        }
        if classes[end] == Class::Code && bytes[end] == b'{' {
            break;
        }
        let next = string_end(bytes, classes, end).or_else(|| ident_end(bytes, classes, end))?;
        parts.push(&bytes[end..next]);
        end = next;
    }
    let mut out = parts.join(&b' ');
    out.extend_from_slice(b" {");
    out.extend_from_slice(&bytes[end + 1..]);
    Some(out)
}

/// Length of the key of a normalized `key = value` line.
fn attribute_key(bytes: &[u8], classes: &[Class]) -> Option<usize> {
    let key_end = ident_end(bytes, classes, 0).or_else(|| string_end(bytes, classes, 0))?;
    let assigns = bytes.get(key_end) == Some(&b' ')
        && bytes.get(key_end + 1) == Some(&b'=')
        && classes[key_end + 1] == Class::Code
        && is_bare_eq(bytes, key_end + 1);
    assigns.then_some(key_end)
}

/// Splits a trailing comment off a line's code.
fn split_comment(bytes: &[u8], classes: &[Class]) -> (String, Option<String>) {
    let mut tail = bytes.len();
    while tail > 0
        && (classes[tail - 1] == Class::Comment
            || (classes[tail - 1] == Class::Code && is_ws(bytes[tail - 1])))
    {
        tail -= 1;
    }
    match (tail..bytes.len()).find(|&i| classes[i] == Class::Comment) {
        Some(start) if tail > 0 => {
            let code_end = trimmed_end(&bytes[..start], &classes[..start]);
            (
                to_string(&bytes[..code_end]),
                Some(to_string(&bytes[start..])),
            )
        }
        _ => (to_string(bytes), None),
    }
}

/// Whether the line's brackets all close on it, none closing outer ones.
fn balanced(events: &[u8]) -> bool {
    let mut depth = 0usize;
    for &event in events {
        if is_opener(event) {
            depth += 1;
        } else if depth == 0 {
            return false;
        } else {
            depth -= 1;
        }
    }
    depth == 0
}

/// Formats text already known to parse, with LF line endings.
fn format_valid(text: &str) -> String {
    let src = text.as_bytes();
    let scan = scan(src);
    let mut indenter = Indenter::default();
    let mut lines = Vec::new();
    let mut offset = 0;
    for (index, raw) in text.split('\n').enumerate() {
        let (start, end) = (offset, offset + raw.len());
        offset = end + 1;
        let bytes = &src[start..end];
        let classes = &scan.classes[start..end];
        let line_start = scan.starts.get(index).copied().unwrap_or(LineStart::Code);
        let next_start = scan
            .starts
            .get(index + 1)
            .copied()
            .unwrap_or(LineStart::Code);

        let events: Vec<u8> = bytes
            .iter()
            .zip(classes)
            .filter(|&(&b, &class)| class == Class::Code && (is_opener(b) || is_closer(b)))
            .map(|(&b, _)| b)
            .collect();
        let first = bytes.iter().position(|&b| !is_ws(b));
        let closes_first = line_start == LineStart::Code
            && first.is_some_and(|i| classes[i] == Class::Code && is_closer(bytes[i]));
        let opens = bytes
            .iter()
            .zip(classes)
            .rev()
            .find(|&(&b, &class)| class == Class::Literal || (class == Class::Code && !is_ws(b)))
            .is_some_and(|(&b, &class)| class == Class::Code && is_opener(b));
        let context = indenter.context();
        let level = indenter.line(&events, closes_first);

        let end = trimmed_end(bytes, classes);
        let kind = match (line_start, first) {
            (LineStart::Code, Some(begin)) if begin < end => {
                let (content, content_classes) =
                    normalize_equals(&bytes[begin..end], &classes[begin..end]);
                code_line(
                    &content,
                    &content_classes,
                    level,
                    matches!(context, None | Some(b'{')),
                    balanced(&events)
                        && (next_start == LineStart::Code
                            || scan.heredoc_openers.binary_search(&index).is_ok()),
                )
            }
            (LineStart::Code, _) => Kind::Blank,
            _ => Kind::Text(to_string(&bytes[..end])),
        };
        lines.push(OutLine {
            level,
            kind,
            opens,
            closes_first,
            transparent: line_start == LineStart::Literal && events.is_empty(),
        });
    }
    render(arrange_blank_lines(lines))
}

/// Builds the output of a non-blank line that starts in code.
fn code_line(
    content: &[u8],
    classes: &[Class],
    level: usize,
    in_body: bool,
    single_line: bool,
) -> Kind {
    if in_body {
        if let Some(header) = block_header(content, classes) {
            return Kind::Text(indent(level) + &to_string(&header));
        }
        if let Some(key_end) = attribute_key(content, classes) {
            if single_line {
                let (value, comment) =
                    split_comment(&content[key_end + 1..], &classes[key_end + 1..]);
                return Kind::Attr {
                    key: to_string(&content[..key_end]),
                    value,
                    comment,
                };
            }
        }
    }
    Kind::Text(indent(level) + &to_string(content))
}

/// Drops leading, trailing and repeated blank lines, and blank lines right
/// after an opening bracket or right before a closing one.
fn arrange_blank_lines(lines: Vec<OutLine>) -> Vec<OutLine> {
    let mut out: Vec<OutLine> = Vec::with_capacity(lines.len());
    for line in lines {
        if matches!(line.kind, Kind::Blank) {
            match out.last() {
                Some(prev) if !matches!(prev.kind, Kind::Blank) && !prev.opens => out.push(line),
                _ => {}
            }
            continue;
        }
        if line.closes_first {
            while out.last().is_some_and(|l| matches!(l.kind, Kind::Blank)) {
                out.pop();
            }
        }
        out.push(line);
    }
    while out.last().is_some_and(|l| matches!(l.kind, Kind::Blank)) {
        out.pop();
    }
    out
}

/// Joins the lines, aligning runs of attributes at the same level.
fn render(lines: Vec<OutLine>) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < lines.len() {
        match &lines[i].kind {
            Kind::Blank => out.push('\n'),
            Kind::Text(text) => {
                out.push_str(text);
                out.push('\n');
            }
            Kind::Attr { .. } => {
                let level = lines[i].level;
                let run = lines[i..]
                    .iter()
                    .take_while(|l| {
                        l.transparent || (l.level == level && matches!(l.kind, Kind::Attr { .. }))
                    })
                    .count();
                render_attributes(&lines[i..i + run], &mut out);
                i += run;
                continue;
            }
        }
        i += 1;
    }
    out
}

/// Renders a run of attributes (with the bodies of their heredocs).
fn render_attributes(group: &[OutLine], out: &mut String) {
    let width = group
        .iter()
        .filter_map(|line| match &line.kind {
            Kind::Attr { key, .. } => Some(key.chars().count()),
            _ => None,
        })
        .max()
        .unwrap_or(0);
    // Each line with its comment; `None` for heredoc lines, which are kept.
    let mut rendered: Vec<(String, Option<Option<&str>>)> = Vec::with_capacity(group.len());
    for line in group {
        match &line.kind {
            Kind::Attr {
                key,
                value,
                comment,
            } => {
                let pad = " ".repeat(width - key.chars().count() + 1);
                let code = format!("{}{key}{pad}{value}", indent(line.level));
                rendered.push((code, Some(comment.as_deref())));
            }
            Kind::Text(text) => rendered.push((text.clone(), None)),
            Kind::Blank => rendered.push((String::new(), None)),
        }
    }
    let mut i = 0;
    while i < rendered.len() {
        let run = rendered[i..]
            .iter()
            .take_while(|(_, comment)| comment.is_some_and(|c| c.is_some()))
            .count();
        if run == 0 {
            out.push_str(&rendered[i].0);
            out.push('\n');
            i += 1;
            continue;
        }
        let column = rendered[i..i + run]
            .iter()
            .map(|(code, _)| code.chars().count())
            .max()
            .unwrap_or(0)
            + 1;
        for (code, comment) in &rendered[i..i + run] {
            out.push_str(code);
            out.push_str(&" ".repeat(column - code.chars().count()));
            out.push_str(comment.flatten().unwrap_or_default());
            out.push('\n');
        }
        i += run;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Formats `input`, then checks the result against `expected`, that it
    /// is stable under a second pass, and that it means the same as `input`.
    fn check(input: &str, expected: &str) {
        let output = format_source(input).expect("input should parse");
        assert_eq!(output, expected, "unexpected output for:\n{input}");
        assert_stable_and_equivalent(input, &output);
    }

    fn assert_stable_and_equivalent(input: &str, output: &str) {
        let again = format_source(output).expect("output should parse");
        assert_eq!(again, output, "formatting is not idempotent");
        let before: hcl::Body =
            hcl::from_str(&input.replace("\r\n", "\n")).expect("input should deserialize");
        let after: hcl::Body = hcl::from_str(output).expect("output should deserialize");
        assert_eq!(before, after, "formatting changed the meaning");
    }

    const BLOCKS_IN: &str = r#"service  "api"{
name="api"
    replicas    =3
  port = 8080
environment   "prod"   {
region="eu-west-1"
}
}
"#;
    const BLOCKS_OUT: &str = r#"service "api" {
  name     = "api"
  replicas = 3
  port     = 8080
  environment "prod" {
    region = "eu-west-1"
  }
}
"#;

    #[test]
    fn indents_blocks_and_normalizes_headers() {
        check(BLOCKS_IN, BLOCKS_OUT);
    }

    const ALIGN_IN: &str = r#"service "web" {
  image = "nginx"
  cpu = 256
  memory_limit = 512

  a = 1
  long_name = 2
  # a comment breaks the run
  bb = 3
  c = 4
  health {
    path = "/"
  }
  after_block = true
  x = 1
  tags = {
    team = "core"
    cost_center = "42"
  }
  y = 2
}
"#;
    const ALIGN_OUT: &str = r#"service "web" {
  image        = "nginx"
  cpu          = 256
  memory_limit = 512

  a         = 1
  long_name = 2
  # a comment breaks the run
  bb = 3
  c  = 4
  health {
    path = "/"
  }
  after_block = true
  x           = 1
  tags = {
    team        = "core"
    cost_center = "42"
  }
  y = 2
}
"#;

    #[test]
    fn aligns_runs_of_single_line_attributes() {
        check(ALIGN_IN, ALIGN_OUT);
    }

    const COMMENTS_IN: &str = r##"# file header
// another header line
service "db" {
      # full-line hash comment, re-indented
        // full-line slash comment, re-indented
   /* block comment
        keeps   its inner layout   
   */
  engine = "postgres" # trailing hash
  version = 16 // trailing slash
  size = "large"   /* trailing block */
  note = "# not a comment" # but this is
}
"##;
    const COMMENTS_OUT: &str = r##"# file header
// another header line
service "db" {
  # full-line hash comment, re-indented
  // full-line slash comment, re-indented
  /* block comment
        keeps   its inner layout
   */
  engine  = "postgres"        # trailing hash
  version = 16                // trailing slash
  size    = "large"           /* trailing block */
  note    = "# not a comment" # but this is
}
"##;

    #[test]
    fn keeps_all_three_comment_styles() {
        check(COMMENTS_IN, COMMENTS_OUT);
    }

    const HEREDOC_IN: &str = "deployment \"api\" {\n    script = <<EOF\n  #!/bin/sh   \n\n\n    echo \"a  =  b\" {\n}\nEOF\n      policy = <<-JSON\n        {\n          \"x\": [1,   2]\n        }\n        JSON\n  after = 1\n}\n";
    const HEREDOC_OUT: &str = "deployment \"api\" {\n  script = <<EOF\n  #!/bin/sh   \n\n\n    echo \"a  =  b\" {\n}\nEOF\n  policy = <<-JSON\n        {\n          \"x\": [1,   2]\n        }\n        JSON\n  after  = 1\n}\n";

    #[test]
    fn leaves_heredoc_bodies_untouched() {
        check(HEREDOC_IN, HEREDOC_OUT);
    }

    const HEREDOC_IN_LIST_IN: &str =
        "x = [\n<<EOT\n  body\nEOT\n, \"b\"\n    ]\ny = [<<-EOT\n    z\n    EOT\n]\n";
    const HEREDOC_IN_LIST_OUT: &str =
        "x = [\n  <<EOT\n  body\nEOT\n  , \"b\"\n]\ny = [<<-EOT\n    z\n    EOT\n]\n";

    #[test]
    fn heredoc_inside_a_list() {
        check(HEREDOC_IN_LIST_IN, HEREDOC_IN_LIST_OUT);
    }

    const HEREDOC_ALIGN_IN: &str = r#"variable "secrets" {
type = map(string)
default = {}
description = <<-EOT
    Secret variables: name = ARN.
  EOT
sensitive = true

  other = 1
}
"#;
    const HEREDOC_ALIGN_OUT: &str = r#"variable "secrets" {
  type        = map(string)
  default     = {}
  description = <<-EOT
    Secret variables: name = ARN.
  EOT
  sensitive   = true

  other = 1
}
"#;

    #[test]
    fn heredoc_attributes_join_alignment() {
        check(HEREDOC_ALIGN_IN, HEREDOC_ALIGN_OUT);
    }

    const NESTED_IN: &str = r#"rollout "canary" {
steps = [
{
weight = 10
pause = "5m"
},
{
weight = 50
}
]
matrix = [[1, 2],
[3, 4]]
settings = merge({
a = 1
}, {
b = 2
})
listed = [{
name = "one"
}, {
name = "two"
}]
call = format(
"%s-%s",
var.a,
var.b,
)
}
"#;
    const NESTED_OUT: &str = r#"rollout "canary" {
  steps = [
    {
      weight = 10
      pause  = "5m"
    },
    {
      weight = 50
    }
  ]
  matrix = [[1, 2],
  [3, 4]]
  settings = merge({
    a = 1
  }, {
    b = 2
  })
  listed = [{
    name = "one"
  }, {
    name = "two"
  }]
  call = format(
    "%s-%s",
    var.a,
    var.b,
  )
}
"#;

    #[test]
    fn indents_nested_objects_lists_and_calls() {
        check(NESTED_IN, NESTED_OUT);
    }

    const INTERPOLATION_IN: &str = r#"environment "staging" {
url = "https://${var.host}/{path}"
json = "${jsonencode({ a = "}", b = "{" })}"
cond="${var.x == "{" ? "a=b" : "}"}"
literal = "$${not_interpolated} %%{ nor this }"
escaped = "quote \" and brace { here"
tpl = "%{ if var.on }on%{ else }off%{ endif }"
next = {
k = 1
}
}
"#;
    const INTERPOLATION_OUT: &str = r#"environment "staging" {
  url     = "https://${var.host}/{path}"
  json    = "${jsonencode({ a = "}", b = "{" })}"
  cond    = "${var.x == "{" ? "a=b" : "}"}"
  literal = "$${not_interpolated} %%{ nor this }"
  escaped = "quote \" and brace { here"
  tpl     = "%{ if var.on }on%{ else }off%{ endif }"
  next = {
    k = 1
  }
}
"#;

    #[test]
    fn interpolations_with_braces_and_quotes() {
        check(INTERPOLATION_IN, INTERPOLATION_OUT);
    }

    const OPERATORS_IN: &str = r#"a=var.x==1
b  =  var.y!=2
c = var.z<=3 && var.w>=4
d = { for k, v in var.m : k=>v }
e = {x=1, y="a=b"}
"#;
    const OPERATORS_OUT: &str = r#"a = var.x==1
b = var.y!=2
c = var.z<=3 && var.w>=4
d = { for k, v in var.m : k=>v }
e = {x = 1, y = "a=b"}
"#;

    #[test]
    fn normalizes_only_assignment_equals() {
        check(OPERATORS_IN, OPERATORS_OUT);
    }

    const BLANKS_IN: &str =
        "\n\n\nservice \"a\" {\n\n\n  x = 1\n\n\n\n  y = 2\n\n}\n\n\n\nservice \"b\" {\n}\n\n\n";
    const BLANKS_OUT: &str = "service \"a\" {\n  x = 1\n\n  y = 2\n}\n\nservice \"b\" {\n}\n";

    #[test]
    fn collapses_blank_lines() {
        check(BLANKS_IN, BLANKS_OUT);
    }

    const WHITESPACE_IN: &str =
        "service \"a\" {  \r\n\tname = \"x  \"   \r\n\t\tlist = [ 1,  2 ]\t\r\n}";
    const WHITESPACE_OUT: &str = "service \"a\" {\n  name = \"x  \"\n  list = [ 1,  2 ]\n}\n";

    #[test]
    fn normalizes_line_endings_tabs_and_trailing_whitespace() {
        check(WHITESPACE_IN, WHITESPACE_OUT);
    }

    const SINGLE_LINE_BLOCKS_IN: &str =
        "service \"a\"{}\nservice  \"b\"   label  { port = 1 }\nempty{\n}\n";
    const SINGLE_LINE_BLOCKS_OUT: &str =
        "service \"a\" {}\nservice \"b\" label { port = 1 }\nempty {\n}\n";

    #[test]
    fn single_line_blocks() {
        check(SINGLE_LINE_BLOCKS_IN, SINGLE_LINE_BLOCKS_OUT);
    }

    const QUOTED_KEYS_IN: &str =
        "labels = {\n\"app.kubernetes.io/name\" = \"api\"\ntier=\"web\"\n}\n";
    const QUOTED_KEYS_OUT: &str =
        "labels = {\n  \"app.kubernetes.io/name\" = \"api\"\n  tier                     = \"web\"\n}\n";

    #[test]
    fn aligns_quoted_object_keys() {
        check(QUOTED_KEYS_IN, QUOTED_KEYS_OUT);
    }

    #[test]
    fn empty_and_blank_inputs() {
        check("", "");
        check("\n\n  \n", "");
        check("# only a comment", "# only a comment\n");
    }

    #[test]
    fn reports_syntax_errors_with_position() {
        let input = "service \"a\" {\n  name = \"x\"\n  port = = 1\n}\n";
        match format_source(input) {
            Err(FormatError::Syntax {
                line,
                column,
                message,
            }) => {
                assert_eq!(line, 3);
                assert_eq!(column, 10);
                assert!(!message.is_empty());
            }
            other => panic!("expected a syntax error, got {other:?}"),
        }
        let unclosed = format_source("service \"a\" {\n  name = \"x\"\n");
        assert!(
            matches!(unclosed, Err(FormatError::Syntax { .. })),
            "{unclosed:?}"
        );
        let err = format_source("a = \"unterminated\n").unwrap_err();
        assert!(
            err.to_string().starts_with("syntax error at line 1"),
            "{err}"
        );
    }

    const CASES: &[(&str, &str)] = &[
        (BLOCKS_IN, BLOCKS_OUT),
        (ALIGN_IN, ALIGN_OUT),
        (COMMENTS_IN, COMMENTS_OUT),
        (HEREDOC_IN, HEREDOC_OUT),
        (HEREDOC_IN_LIST_IN, HEREDOC_IN_LIST_OUT),
        (HEREDOC_ALIGN_IN, HEREDOC_ALIGN_OUT),
        (NESTED_IN, NESTED_OUT),
        (INTERPOLATION_IN, INTERPOLATION_OUT),
        (OPERATORS_IN, OPERATORS_OUT),
        (BLANKS_IN, BLANKS_OUT),
        (WHITESPACE_IN, WHITESPACE_OUT),
        (SINGLE_LINE_BLOCKS_IN, SINGLE_LINE_BLOCKS_OUT),
        (QUOTED_KEYS_IN, QUOTED_KEYS_OUT),
    ];

    #[test]
    fn every_case_is_idempotent() {
        for (input, expected) in CASES {
            for text in [*input, *expected] {
                let once = format_source(text).expect("case should parse");
                let twice = format_source(&once).expect("output should parse");
                assert_eq!(once, twice, "not idempotent for:\n{text}");
                assert_eq!(once, *expected);
            }
        }
    }

    /// Realistic configurations, written in canonical form.
    const CONFIGS: &[&str] = &[
        r#"# Production deployment of the storefront.
variable "image_tag" {
  type    = string
  default = "latest"
}

locals {
  app_name = "storefront"
  common_tags = {
    owner   = "platform"
    service = local.app_name
  }
}

service "storefront" {
  image    = "registry.example.com/storefront:${var.image_tag}"
  port     = 8080
  replicas = 3

  env = {
    LOG_LEVEL    = "info"
    DATABASE_URL = "postgres://db:5432/${local.app_name}"
  }

  health_check {
    path     = "/healthz"
    interval = "10s"
    timeout  = "2s"
  }

  depends_on = [service.database]
}

environment "production" {
  target = "ecs"
  region = "eu-west-1"

  /* Capacity is sized for the
     holiday peak. */
  cluster = "prod-main"
}

rollout "storefront" {
  strategy = "canary"
  steps = [
    { weight = 10, pause = "5m" },
    { weight = 50, pause = "10m" },
    { weight = 100 },
  ]
}
"#,
        r#"environment "staging" {
  target = "ssh"
  hosts  = ["10.0.0.5", "10.0.0.6"]

  ssh {
    user = "deploy"
    port = 22 # non-default ports are allowed
  }
}

deployment "worker" {
  service     = service.worker
  environment = environment.staging

  pre_deploy = <<-EOT
    set -eu
    echo "draining ${var.queue}"
      nested = { indented }
    EOT

  post_deploy = <<EOF
#!/bin/sh
curl -fsS "http://localhost:${var.port}/ready" || exit 1
EOF

  resources = {
    cpu    = var.size == "large" ? 2048 : 512
    memory = var.size != "small" ? 4096 : 1024
  }

  labels = merge(local.common_tags, {
    role = "worker"
  })

  routes = [
    for name, port in var.ports : {
      name = name
      port = port
    } if port >= 1024
  ]
}
"#,
        r#"// Blue/green for the API.
service "api" {
  image   = "api:${var.version}"
  command = ["serve", "--listen", ":${var.port}"]

  secrets = {
    for key, value in var.secrets : key => "arn:aws:secretsmanager:${value}"
  }
}

rollout "api" {
  strategy = "blue_green"
  verify {
    script = "curl -f http://{host}/health && test \"$(cat /etc/role)\" = api"
    checks = 3
  }
  on_failure = "rollback"
}
"#,
    ];

    /// Deterministic messing up of a canonical config: random indentation,
    /// trailing blanks, spaces around `=`, doubled blank lines; heredoc
    /// bodies are left alone.
    fn mangle(config: &str, seed: u64) -> String {
        let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
        let mut next = move |bound: u64| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) % bound
        };
        let mut out = String::new();
        let mut heredoc: Option<String> = None;
        let mut in_comment = false;
        for line in config.lines() {
            if let Some(marker) = &heredoc {
                if line.trim() == marker {
                    heredoc = None;
                }
                out.push_str(line);
                out.push('\n');
                continue;
            }
            if in_comment {
                in_comment = !line.contains("*/");
                out.push_str(line);
                out.push('\n');
                continue;
            }
            in_comment = line.contains("/*") && !line.contains("*/");
            if let Some(pos) = line.find("<<") {
                heredoc = Some(line[pos + 2..].trim_start_matches('-').to_string());
            }
            let mut text = line.trim_start().to_string();
            if let Some((key, rest)) = text.split_once(' ') {
                let is_key = key.chars().all(|c| c.is_alphanumeric() || c == '_');
                if let Some(value) = rest.trim_start().strip_prefix("= ").filter(|_| is_key) {
                    let spacing = ["=", " =", "=  ", "   =   ", "\t= "][next(5) as usize];
                    text = format!("{key}{spacing}{value}");
                }
            }
            let lead = ["", " ", "    ", "\t", "       "][next(5) as usize];
            let trail = ["", " ", "\t", "  "][next(4) as usize];
            if text.is_empty() {
                out.push_str(&"\n".repeat(1 + next(3) as usize));
                continue;
            }
            out.push_str(lead);
            out.push_str(&text);
            out.push_str(if heredoc.is_some() { "" } else { trail });
            out.push_str(if next(4) == 0 { "\r\n" } else { "\n" });
        }
        out
    }

    #[test]
    fn realistic_configs_are_fixed_points() {
        for config in CONFIGS {
            let output = format_source(config).expect("config should parse");
            assert_eq!(output, *config);
            assert_stable_and_equivalent(config, &output);
        }
    }

    #[test]
    fn mangled_realistic_configs_format_back() {
        for (index, config) in CONFIGS.iter().enumerate() {
            for seed in 0..25u64 {
                let messy = mangle(config, seed * 31 + index as u64);
                let output = format_source(&messy)
                    .unwrap_or_else(|err| panic!("mangled config does not parse: {err}\n{messy}"));
                assert_eq!(output, *config, "seed {seed} of config {index}:\n{messy}");
                assert_stable_and_equivalent(&messy, &output);
            }
        }
    }
}
