//! POSIX shell quoting for the scripts built in [`super::steps`].
//!
//! Pure string functions: the result of [`quote`] is one shell word that expands to
//! exactly its input, whatever the input holds (`$(...)`, backticks, quotes,
//! backslashes, newlines, non-ASCII text).

/// Bytes that never need quoting in a POSIX shell word, wherever they stand in it.
fn is_bare(byte: u8) -> bool {
    byte.is_ascii_alphanumeric()
        || matches!(
            byte,
            b'_' | b'-' | b'.' | b'/' | b':' | b'@' | b'%' | b'+' | b','
        )
}

/// Quote `value` as one POSIX shell word that expands to exactly `value`.
///
/// A non-empty value made only of ASCII letters, digits and `_ - . / : @ % + ,` stays
/// bare (`abc-1.2_/x`). Anything else is put in single quotes, inside which the shell
/// takes every character literally, with each `'` written as `'\''` (close the
/// quotes, an escaped quote, open them again). The empty string is `''`.
///
/// A NUL character cannot be part of a shell word at all: a script holding one cannot
/// be run, whatever the quoting.
pub fn quote(value: &str) -> String {
    if !value.is_empty() && value.bytes().all(is_bare) {
        return value.to_string();
    }
    let mut quoted = String::with_capacity(value.len() + 2);
    quoted.push('\'');
    for c in value.chars() {
        if c == '\'' {
            quoted.push_str("'\\''");
        } else {
            quoted.push(c);
        }
    }
    quoted.push('\'');
    quoted
}

/// Quote each argument and join them with spaces: a command line whose words are
/// exactly `args`.
pub fn join(args: &[&str]) -> String {
    args.iter()
        .map(|arg| quote(arg))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `env NAME=VALUE ...`, to put in front of a command so that it runs with these
/// variables added to its environment: `env A=1 B='x y' /bin/sh -c ...`.
///
/// `env` rather than `export A=...;` so that the variables reach only that command and
/// a failing `cd` before it (`cd DIR && env ... COMMAND`) skips the command. Values are
/// quoted with [`quote`]. With no variables the prefix is a bare `env`, which runs the
/// command unchanged.
///
/// # Panics
///
/// When a name is not a shell identifier (`[A-Za-z_][A-Za-z0-9_]*`). Names come from
/// code, never from configuration.
pub fn env_prefix(vars: &[(&str, &str)]) -> String {
    let mut prefix = String::from("env");
    for (name, value) in vars {
        assert!(
            is_identifier(name),
            "environment variable name {name:?} is not a shell identifier"
        );
        prefix.push(' ');
        prefix.push_str(name);
        prefix.push('=');
        prefix.push_str(&quote(value));
    }
    prefix
}

fn is_identifier(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::process::Command;

    /// Values a configuration could hold that would do harm if a shell read them as
    /// code instead of data.
    const HOSTILE: &[&str] = &[
        "$(rm -rf /)",
        "'; reboot",
        "`reboot`",
        "a\nb\n",
        "\n",
        "say \"hi\"",
        "back\\slash\\",
        "\\'",
        "''",
        "'",
        "ünïcödé ✓ 日本",
        "",
        " ",
        "\t tab",
        "$HOME ${HOME} $$ $1 $@ $*",
        "*",
        "~",
        "a=b",
        "x; y && z || w | v > /tmp/never < /dev/null & u",
        "#comment",
        "!bang",
        "-n",
        "%s%d\\n",
        "abc-1.2_/x",
    ];

    /// Run `script` with the real `/bin/sh` and return its standard output.
    fn sh(script: &str) -> String {
        let output = Command::new("/bin/sh")
            .arg("-c")
            .arg(script)
            .output()
            .expect("run /bin/sh");
        assert!(
            output.status.success(),
            "{script:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("utf-8 output")
    }

    #[test]
    fn quote_exact_text() {
        assert_eq!(quote("abc-1.2_/x"), "abc-1.2_/x");
        assert_eq!(quote("user@host:22"), "user@host:22");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), "'it'\\''s'");
        assert_eq!(quote("'"), "''\\'''");
        assert_eq!(quote("$(rm -rf /)"), "'$(rm -rf /)'");
        assert_eq!(quote("'; reboot"), "''\\''; reboot'");
        assert_eq!(quote("a=b"), "'a=b'");
        assert_eq!(quote("~"), "'~'");
        assert_eq!(quote("é"), "'é'");
    }

    #[test]
    fn quoted_values_reach_the_shell_literally() {
        for value in HOSTILE {
            let printed = sh(&format!("printf %s {}", quote(value)));
            assert_eq!(&printed, value, "quoted as {}", quote(value));
        }
    }

    #[test]
    fn join_keeps_every_argument_one_word() {
        assert_eq!(join(&["ls", "-l", "a b", ""]), "ls -l 'a b' ''");
        assert_eq!(join(&[]), "");
        let printed = sh(&format!("printf '%s|' {}", join(HOSTILE)));
        let expected: String = HOSTILE.iter().map(|v| format!("{v}|")).collect();
        assert_eq!(printed, expected);
    }

    #[test]
    fn env_prefix_exact_text() {
        assert_eq!(env_prefix(&[]), "env");
        assert_eq!(
            env_prefix(&[("A", "1"), ("B_2", "x y"), ("C", "")]),
            "env A=1 B_2='x y' C=''"
        );
    }

    #[test]
    fn env_prefix_values_reach_the_command_literally() {
        for value in HOSTILE {
            let script = format!(
                "{} /bin/sh -c 'printf %s \"$SLIPWAY_TEST\"'",
                env_prefix(&[("SLIPWAY_TEST", value)])
            );
            assert_eq!(&sh(&script), value);
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]

        /// Any value is refused at validate time (one with a NUL byte, which
        /// no shell word holds: even `encode::text::forbidden_in_content`,
        /// the loosest check of a value that reaches a script, refuses it) or
        /// reaches the command byte-exact, as a quoted argument and as an
        /// environment variable of [`env_prefix`].
        #[test]
        fn any_value_is_refused_or_reaches_the_command_exactly(
            values in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::arbitrary::any::<String>(),
                    "['\"\\\\$`\n\r\t ;&|()<>*?~#!=%{}é✓\u{0}\u{1b}-]{0,12}",
                ],
                1..4,
            )
        ) {
            if values.iter().any(|v| v.contains('\0')) {
                // Refused everywhere at validate time.
                let refused = values.iter().any(|v| {
                    crate::encode::text::forbidden_in_content(v).is_some()
                        && crate::encode::text::forbidden_in_line(v).is_some()
                });
                proptest::prop_assert!(refused);
                return Ok(());
            }
            let vars: Vec<(String, &str)> = values
                .iter()
                .enumerate()
                .map(|(i, v)| (format!("SLIPWAY_TEST_{i}"), v.as_str()))
                .collect();
            let named: Vec<(&str, &str)> = vars.iter().map(|(n, v)| (n.as_str(), *v)).collect();
            let read_back = (0..values.len())
                .map(|i| format!("\"$SLIPWAY_TEST_{i}\""))
                .collect::<Vec<_>>()
                .join(" ");
            let script = format!(
                "printf '%s\\0' {}; {} /bin/sh -c {}",
                join(&values.iter().map(String::as_str).collect::<Vec<_>>()),
                env_prefix(&named),
                quote(&format!("printf '%s\\0' {read_back}")),
            );
            let output = Command::new("/bin/sh").arg("-c").arg(&script).output().expect("run /bin/sh");
            proptest::prop_assert!(output.status.success(), "{:?}", script);
            let mut expected = Vec::new();
            for _ in 0..2 {
                for value in &values {
                    expected.extend_from_slice(value.as_bytes());
                    expected.push(0);
                }
            }
            proptest::prop_assert_eq!(output.stdout, expected, "{:?}", script);
        }
    }

    #[test]
    #[should_panic(expected = "not a shell identifier")]
    fn env_prefix_refuses_a_bad_name() {
        env_prefix(&[("A;B", "1")]);
    }
}
