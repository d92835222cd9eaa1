//! Text for people: values quoted in messages, and text shown on a terminal or
//! in a markdown comment with its control characters made visible.
//!
//! A value a user set may hold anything the language can write (`"\u001b[2J"`
//! clears a terminal). Where such a value is shown, it goes through
//! [`excerpt`] (messages) or [`visible`] (longer text such as a diff), which
//! escape every control character except newline and tab, and bound the
//! length of what a message repeats.

use std::fmt::Write as _;

/// At most this many characters of a value are repeated in a message.
pub const EXCERPT_CHARS: usize = 64;

/// `value` for a message: in double quotes, control characters, quotes and
/// backslashes escaped as Rust writes them, cut after [`EXCERPT_CHARS`]
/// characters (then the length in bytes is said).
pub fn excerpt(value: &str) -> String {
    let count = value.chars().count();
    if count <= EXCERPT_CHARS {
        return format!("\"{}\"", value.escape_debug());
    }
    let head: String = value.chars().take(EXCERPT_CHARS).collect();
    format!("\"{}…\" ({} bytes)", head.escape_debug(), value.len())
}

/// `value` for a message without quotes: escaped like [`excerpt`], cut with
/// `…` after [`EXCERPT_CHARS`] characters.
pub fn short(value: &str) -> String {
    if value.chars().count() <= EXCERPT_CHARS {
        return value.escape_debug().to_string();
    }
    let head: String = value.chars().take(EXCERPT_CHARS).collect();
    format!("{}…", head.escape_debug())
}

/// A name for one character in a message: `a newline`, `a NUL byte`,
/// `the control character U+001B`, or the character in quotes.
pub fn describe_char(c: char) -> String {
    match c {
        '\0' => "a NUL byte".to_string(),
        '\n' => "a newline".to_string(),
        '\r' => "a carriage return".to_string(),
        '\t' => "a tab".to_string(),
        ' ' => "a space".to_string(),
        c if c.is_control() => format!("the control character U+{:04X}", c as u32),
        c if c.is_whitespace() => format!("the space character U+{:04X}", c as u32),
        c => format!("'{c}'"),
    }
}

/// `text` with every control character other than newline and tab written as
/// `\u{…}`: safe to print on a terminal or into markdown, where it can no
/// longer move the cursor, clear the screen or change colours. Text without
/// such characters is returned unchanged.
pub fn visible(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(is_hidden) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if is_hidden(c) {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

fn is_hidden(c: char) -> bool {
    c.is_control() && c != '\n' && c != '\t'
}

/// The first character a single-line value may not hold: any control
/// character but tab (newline, carriage return, NUL, escape...), and the
/// Unicode line separators.
pub fn forbidden_in_line(value: &str) -> Option<char> {
    value
        .chars()
        .find(|c| (c.is_control() && *c != '\t') || is_line_break(*c))
}

/// The first character file content (or a multi-line command) may not hold:
/// control characters other than newline, carriage return and tab. NUL in
/// particular cannot pass through a shell or a `printf` and would be dropped.
pub fn forbidden_in_content(value: &str) -> Option<char> {
    value
        .chars()
        .find(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
}

/// Unicode line and paragraph separators: not control characters, but line
/// breaks to some readers.
fn is_line_break(c: char) -> bool {
    matches!(c, '\u{2028}' | '\u{2029}' | '\u{85}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_escape_and_bound() {
        assert_eq!(excerpt("web-1"), "\"web-1\"");
        assert_eq!(excerpt("a\nb\u{1b}[2J\0"), "\"a\\nb\\u{1b}[2J\\0\"");
        let long = "x".repeat(100_000);
        let shown = excerpt(&long);
        assert!(shown.len() < 100, "{shown}");
        assert!(shown.ends_with("(100000 bytes)"), "{shown}");
    }

    #[test]
    fn visible_text_has_no_terminal_controls() {
        assert_eq!(visible("plain\ntext\t!"), "plain\ntext\t!");
        let shown = visible("red \u{1b}[31mX\u{7}\r\u{9b}2J");
        assert_eq!(shown, "red \\u{1b}[31mX\\u{7}\\u{d}\\u{9b}2J");
        assert!(!shown.chars().any(|c| c.is_control()));
    }

    #[test]
    fn line_and_content_policies() {
        assert_eq!(forbidden_in_line("ok value"), None);
        assert_eq!(forbidden_in_line("a\tb"), None);
        assert_eq!(forbidden_in_line("a\nb"), Some('\n'));
        assert_eq!(forbidden_in_line("a\u{2028}b"), Some('\u{2028}'));
        assert_eq!(forbidden_in_content("a\r\n\tb"), None);
        assert_eq!(forbidden_in_content("a\0b"), Some('\0'));
        assert_eq!(forbidden_in_content("\u{1b}[2J"), Some('\u{1b}'));
    }
}
