//! The systemd unit file format (systemd.syntax(5), systemd.exec(5)): how a
//! value is written so that systemd reads it back byte-exact in the setting
//! it was meant for, and what a unit cannot hold.
//!
//! - Every line is `Key=value`; a value never holds a raw newline, and never
//!   ends in an unpaired backslash (which would join the next line to it).
//! - `%` starts a specifier in every setting slipway writes: it is written
//!   `%%`. Specifiers are therefore not available in slipway's settings.
//! - `Environment=` values are one double-quoted word with C-style escapes
//!   (`\\`, `\"`, `\n`, `\t`, `\xNN`), so any text but NUL arrives exactly.
//! - `ExecStart=`/`ExecStop=` are systemd command lines: slipway writes them as
//!   the configuration says (systemd's quoting and `$VAR` expansion apply),
//!   only `%` escaped; they must be one line ([`check_command`]).
//! - Names — units, users, environment variable names, `Restart=` values —
//!   are checked against their grammars and never escaped.
//!
//! The `check_*` functions are what validation calls; they refuse with a
//! [`SystemdValueError`]. The writers are total and never emit a line break
//! or an unpaired trailing backslash, even for a value a check would refuse.
//! Nothing here does I/O.

use super::text::{describe_char, excerpt, forbidden_in_line};

/// Why a value cannot be written into a systemd unit as it is meant. Each
/// variant keeps the text as written; messages show it escaped and bounded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SystemdValueError {
    /// An empty unit name.
    #[error("a unit name cannot be empty")]
    EmptyUnitName,
    /// A unit name longer than systemd allows.
    #[error("a unit name of {bytes} bytes is longer than the {MAX_UNIT_NAME} systemd allows")]
    UnitNameTooLong { bytes: usize },
    /// A unit name with a character outside its grammar.
    #[error("{} is not a unit name: {} is not a letter, digit or one of : - _ . \\ @", excerpt(.name), describe_char(*.found))]
    UnitNameChar { name: String, found: char },
    /// A unit name starting with `.` or `-`.
    #[error("{} is not a unit name: it must not start with '.' or '-'", excerpt(.name))]
    UnitNameStart { name: String },
    /// A unit name without the suffix of the type it must be.
    #[error("{} is not a unit name ending in \".{kind}\"", excerpt(.name))]
    UnitNameNotOfKind { name: String, kind: String },
    /// A unit name without a known type suffix.
    #[error("{} is not a unit name: it must end in a unit type such as .service or .target", excerpt(.name))]
    UnitNameNoType { name: String },
    /// An environment variable name outside `[A-Za-z_][A-Za-z0-9_]*`.
    #[error("{} is not an environment variable name: use letters, digits and '_', not starting with a digit", excerpt(.name))]
    EnvName { name: String },
    /// A one-line value holding a line break or control character.
    #[error("{} cannot be written into a systemd unit line: it holds {}", excerpt(.value), describe_char(*.found))]
    LineHolds { value: String, found: char },
    /// A one-line value that is empty or only whitespace.
    #[error("the value is empty")]
    EmptyValue,
    /// A one-line value ending in an unpaired backslash.
    #[error("{} ends with a backslash, which would join the next line of the unit to it", excerpt(.value))]
    TrailingBackslash { value: String },
    /// An environment value holding NUL.
    #[error("{} holds a NUL byte, which no environment variable can hold", excerpt(.value))]
    EnvValueNul { value: String },
    /// A `Restart=` value systemd does not know.
    #[error("{} is not a Restart= value", excerpt(.value))]
    NotRestart { value: String },
    /// A `User=` that is not a user name.
    #[error(transparent)]
    User(#[from] super::ssh::SshValueError),
}

/// The unit types systemd knows, as name suffixes.
const UNIT_TYPES: &[&str] = &[
    "service",
    "socket",
    "device",
    "mount",
    "automount",
    "swap",
    "target",
    "path",
    "timer",
    "slice",
    "scope",
];

/// What `Restart=` accepts.
pub const RESTART: &[&str] = &[
    "no",
    "on-success",
    "on-failure",
    "on-abnormal",
    "on-watchdog",
    "on-abort",
    "always",
];

/// systemd's longest unit name.
const MAX_UNIT_NAME: usize = 255;

/// A unit name as systemd accepts it: letters, digits and `:-_.\@`, a known
/// type suffix (`.service`, `.target`...), at most 255 bytes, not starting
/// with `.` or `-`. With `kind`, the suffix must be that type.
pub fn check_unit_name(name: &str, kind: Option<&str>) -> Result<(), SystemdValueError> {
    let owned = || name.to_string();
    if name.is_empty() {
        return Err(SystemdValueError::EmptyUnitName);
    }
    if name.len() > MAX_UNIT_NAME {
        return Err(SystemdValueError::UnitNameTooLong { bytes: name.len() });
    }
    if let Some(found) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || ":-_.\\@".contains(*c)))
    {
        return Err(SystemdValueError::UnitNameChar {
            name: owned(),
            found,
        });
    }
    if name.starts_with(['.', '-']) {
        return Err(SystemdValueError::UnitNameStart { name: owned() });
    }
    let suffix = name.rsplit_once('.');
    match (suffix, kind) {
        (Some((prefix, suffix)), Some(kind)) if !prefix.is_empty() && suffix == kind => Ok(()),
        (Some((prefix, suffix)), None) if !prefix.is_empty() && UNIT_TYPES.contains(&suffix) => {
            Ok(())
        }
        (_, Some(kind)) => Err(SystemdValueError::UnitNameNotOfKind {
            name: owned(),
            kind: kind.to_string(),
        }),
        (_, None) => Err(SystemdValueError::UnitNameNoType { name: owned() }),
    }
}

/// An environment variable name: `[A-Za-z_][A-Za-z0-9_]*`.
pub fn check_env_name(name: &str) -> Result<(), SystemdValueError> {
    let mut chars = name.chars();
    let valid = matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if valid {
        Ok(())
    } else {
        Err(SystemdValueError::EnvName {
            name: name.to_string(),
        })
    }
}

/// A value for a one-line setting (`ExecStart=`, `WorkingDirectory=`,
/// `Description=`): no line breaks or control characters other than tab, no
/// unpaired backslash at the end, not only whitespace.
pub fn check_line(value: &str) -> Result<(), SystemdValueError> {
    if let Some(found) = forbidden_in_line(value) {
        return Err(SystemdValueError::LineHolds {
            value: value.to_string(),
            found,
        });
    }
    if value.trim().is_empty() {
        return Err(SystemdValueError::EmptyValue);
    }
    if ends_in_unpaired_backslash(value.trim_end()) {
        return Err(SystemdValueError::TrailingBackslash {
            value: value.to_string(),
        });
    }
    Ok(())
}

/// A command line for `ExecStart=`/`ExecStop=`: see [`check_line`].
pub fn check_command(value: &str) -> Result<(), SystemdValueError> {
    check_line(value)
}

/// An `Environment=` value: any text but NUL, which no environment holds.
pub fn check_env_value(value: &str) -> Result<(), SystemdValueError> {
    if value.contains('\0') {
        return Err(SystemdValueError::EnvValueNul {
            value: value.to_string(),
        });
    }
    Ok(())
}

/// Every value of a `systemd_unit` block a unit cannot hold exactly, as
/// `(attribute, problem)`; the attribute is `"name"` for the block's label.
/// Validation reports each at that attribute.
pub fn unit_problems(unit: &crate::config::SystemdUnit) -> Vec<(&'static str, SystemdValueError)> {
    let mut problems = Vec::new();
    if let Err(p) = check_unit_name(&unit.name, Some("service")) {
        problems.push(("name", p));
    }
    if let Err(p) = check_command(&unit.exec_start) {
        problems.push(("exec_start", p));
    }
    if let Some(Err(p)) = unit.exec_stop.as_deref().map(check_command) {
        problems.push(("exec_stop", p));
    }
    if let Some(Err(p)) = unit.user.as_deref().map(super::ssh::check_user) {
        problems.push(("user", p.into()));
    }
    for after in &unit.after {
        if let Err(p) = check_unit_name(after, None) {
            problems.push(("after", p));
        }
    }
    if let Some(restart) = &unit.restart {
        if !RESTART.contains(&restart.as_str()) {
            problems.push((
                "restart",
                SystemdValueError::NotRestart {
                    value: restart.clone(),
                },
            ));
        }
    }
    for (name, value) in &unit.environment {
        if let Err(p) = check_env_name(name).and_then(|()| check_env_value(value)) {
            problems.push(("environment", p));
        }
    }
    problems
}

fn ends_in_unpaired_backslash(text: &str) -> bool {
    text.bytes().rev().take_while(|b| *b == b'\\').count() % 2 == 1
}

/// `value` for a one-line setting: `%` as `%%`. Total: a line break or other
/// control character (which [`check_line`] refuses) becomes U+FFFD, and a
/// trailing unpaired backslash is doubled, so the result is always one line.
pub fn line(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '%' => out.push_str("%%"),
            c if (c.is_control() && c != '\t') || matches!(c, '\u{2028}' | '\u{2029}') => {
                out.push('\u{fffd}')
            }
            c => out.push(c),
        }
    }
    if ends_in_unpaired_backslash(out.trim_end()) {
        let trimmed = out.trim_end().len();
        out.insert(trimmed, '\\');
    }
    out
}

/// The value of one `Environment=` line for `name` = `value`: one
/// double-quoted word `"NAME=VALUE"` with C-style escapes and `%` as `%%`.
/// Total: a NUL (which [`check_env_value`] refuses) is written as U+FFFD.
pub fn environment(name: &str, value: &str) -> String {
    let mut out = String::with_capacity(name.len() + value.len() + 3);
    out.push('"');
    for c in name
        .chars()
        .chain(std::iter::once('='))
        .chain(value.chars())
    {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '%' => out.push_str("%%"),
            '\0' => out.push_str("\\ufffd"),
            c if (c as u32) < 0x80 && c.is_control() => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
pub(crate) mod reader {
    //! A small reader of unit files as systemd parses them, for tests: it
    //! finds what a unit *means*, so a test can check that values arrive in
    //! the settings they were meant for and nowhere else.

    /// Why the reader cannot read a unit file or a value.
    #[derive(Debug, thiserror::Error)]
    pub enum ReadError {
        /// A line that is neither a section, a comment nor `key=value`.
        #[error("not a setting: {0:?}")]
        NotASetting(String),
        /// A continuation backslash on the last line.
        #[error("the file ends in a continued line")]
        ContinuedAtEnd,
        /// A `%` specifier other than `%%`.
        #[error("specifier %{found:?} in {value:?}")]
        Specifier { found: Option<char>, value: String },
        /// A quote without its closing quote.
        #[error("unterminated quote in {0:?}")]
        UnterminatedQuote(String),
        /// A numeric escape whose digits are not hexadecimal.
        #[error(transparent)]
        Hex(#[from] std::num::ParseIntError),
        /// A numeric escape of NUL or of no character.
        #[error("bad escape {0}")]
        BadEscape(String),
        /// A backslash before a character that is not an escape.
        #[error("unknown escape \\{0:?}")]
        UnknownEscape(Option<char>),
    }

    /// `(section, key, raw value)` for every setting, in order.
    pub fn settings(text: &str) -> Result<Vec<(String, String, String)>, ReadError> {
        let mut out = Vec::new();
        let mut section = String::new();
        let mut pending = String::new();
        // systemd ends a line at a newline, a carriage return or a NUL.
        for raw in text.split(['\n', '\r', '\0']) {
            let line = format!("{pending}{raw}");
            pending.clear();
            let trimmed = line.trim_start_matches([' ', '\t']);
            if pending.is_empty() && (trimmed.starts_with('#') || trimmed.starts_with(';')) {
                continue;
            }
            // A line ending in an unpaired backslash continues on the next.
            if line.bytes().rev().take_while(|b| *b == b'\\').count() % 2 == 1 {
                pending = format!("{} ", &line[..line.len() - 1]);
                continue;
            }
            let line = line.trim_matches([' ', '\t', '\r']);
            if line.is_empty() {
                continue;
            }
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                section = name.to_string();
                continue;
            }
            let (key, value) = line
                .split_once('=')
                .ok_or_else(|| ReadError::NotASetting(line.to_string()))?;
            out.push((
                section.clone(),
                key.trim().to_string(),
                value.trim_matches([' ', '\t']).to_string(),
            ));
        }
        if !pending.is_empty() {
            return Err(ReadError::ContinuedAtEnd);
        }
        Ok(out)
    }

    /// Undo specifier escaping; any specifier other than `%%` is an error
    /// (systemd would replace it with something else).
    pub fn unspecify(value: &str) -> Result<String, ReadError> {
        let mut out = String::new();
        let mut chars = value.chars();
        while let Some(c) = chars.next() {
            if c == '%' {
                match chars.next() {
                    Some('%') => out.push('%'),
                    found => {
                        return Err(ReadError::Specifier {
                            found,
                            value: value.to_string(),
                        })
                    }
                }
            } else {
                out.push(c);
            }
        }
        Ok(out)
    }

    /// The words of an `Environment=` value (after [`unspecify`]): quotes
    /// removed, C escapes decoded.
    pub fn words(value: &str) -> Result<Vec<String>, ReadError> {
        let mut words = Vec::new();
        let mut chars = value.chars().peekable();
        loop {
            while chars.peek().is_some_and(|c| *c == ' ' || *c == '\t') {
                chars.next();
            }
            if chars.peek().is_none() {
                return Ok(words);
            }
            let mut word = String::new();
            let mut quote: Option<char> = None;
            while let Some(c) = chars.next() {
                match c {
                    '"' | '\'' if quote.is_none() => quote = Some(c),
                    c if Some(c) == quote => quote = None,
                    ' ' | '\t' if quote.is_none() => break,
                    '\\' => word.push(unescape(&mut chars)?),
                    c => word.push(c),
                }
            }
            if quote.is_some() {
                return Err(ReadError::UnterminatedQuote(value.to_string()));
            }
            words.push(word);
        }
    }

    fn unescape(chars: &mut std::iter::Peekable<std::str::Chars>) -> Result<char, ReadError> {
        fn hex(
            chars: &mut std::iter::Peekable<std::str::Chars>,
            n: usize,
        ) -> Result<char, ReadError> {
            let digits: String = (0..n).filter_map(|_| chars.next()).collect();
            let code = u32::from_str_radix(&digits, 16)?;
            match char::from_u32(code) {
                Some('\0') | None => Err(ReadError::BadEscape(digits)),
                Some(c) => Ok(c),
            }
        }
        match chars.next() {
            Some('\\') => Ok('\\'),
            Some('"') => Ok('"'),
            Some('\'') => Ok('\''),
            Some('n') => Ok('\n'),
            Some('t') => Ok('\t'),
            Some('r') => Ok('\r'),
            Some('s') => Ok(' '),
            Some('x') => hex(chars, 2),
            Some('u') => hex(chars, 4),
            Some('U') => hex(chars, 8),
            other => Err(ReadError::UnknownEscape(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::reader::*;
    use super::*;

    #[test]
    fn unit_names() {
        check_unit_name("myapp.service", Some("service")).unwrap();
        check_unit_name("app@blue.service", Some("service")).unwrap();
        check_unit_name("network-online.target", None).unwrap();
        for bad in [
            "",
            "../x.service",
            "a/b.service",
            "x.target",
            ".service",
            "-x.service",
            "x y.service",
            "x\n.service",
            "x%i.service",
            "myapp",
        ] {
            assert!(
                check_unit_name(bad, Some("service")).is_err(),
                "{bad:?} refused"
            );
        }
        assert!(check_unit_name("x.bogus", None).is_err());
        assert!(check_unit_name(&format!("{}.service", "a".repeat(300)), None).is_err());
    }

    #[test]
    fn environment_names() {
        check_env_name("APP_ENV").unwrap();
        check_env_name("_x1").unwrap();
        for bad in ["", "1A", "A-B", "A B", "A=B", "A\nB", "É"] {
            assert!(check_env_name(bad).is_err(), "{bad:?} refused");
        }
    }

    #[test]
    fn environment_values_round_trip() {
        for value in [
            "plain",
            "with space and \"quotes\" and 'single'",
            "back\\slash\\",
            "percent %n %% 100%",
            "dollar $HOME ${X}",
            "new\nline\r\ttab",
            "esc \u{1b}[2J bell \u{7} c1 \u{85}",
            "ünïcödé ✓",
            "",
        ] {
            let text = format!("[Service]\nEnvironment={}\n", environment("A_B", value));
            let settings = settings(&text).unwrap();
            assert_eq!(settings.len(), 1, "{text}");
            let words = words(&unspecify(&settings[0].2).unwrap()).unwrap();
            assert_eq!(words, vec![format!("A_B={value}")], "{text}");
        }
    }

    #[test]
    fn lines_never_break() {
        assert_eq!(line("/usr/bin/app --rate 5%"), "/usr/bin/app --rate 5%%");
        for hostile in [
            "a\nExecStartPre=/bin/touch x",
            "a\\",
            "a\r\n[Install]",
            "\u{2028}b",
        ] {
            let written = line(hostile);
            assert!(!written.contains(['\n', '\r']), "{written:?}");
            let text = format!("[Service]\nExecStart={written}\nRestart=no\n");
            let settings = settings(&text).unwrap();
            assert_eq!(settings.len(), 2, "{text}");
            assert!(check_line(hostile).is_err(), "{hostile:?} is refused");
        }
        check_line("a \\\\").unwrap();
        assert!(check_line("  ").is_err());
    }
}
