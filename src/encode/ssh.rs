//! What may reach the `ssh` client: host strings, user names and paths, and
//! the words of the small ssh config slipway writes for a bastion.
//!
//! `ssh` reads its destination and `-J` from the command line, but reads every
//! `-o` option and config file line through its own tokenizer, which splits at
//! whitespace, honours quotes and backslashes, expands `%x` tokens and
//! `${VAR}`, and treats a destination starting with `-` as an option. So the
//! values are not escaped for `ssh`: they are checked against a grammar no
//! such character belongs to, and refused otherwise.
//!
//! - A host string is `[user@]address[:port]`, where the address is a host
//!   name (letters, digits, `-`, `_`, `.`, not starting with `-` or `.`), an
//!   IPv4 address, or an IPv6 address (bare, or in brackets when a port
//!   follows; an optional `%zone`).
//! - A user name is letters, digits, `_`, `.` and `-`, not starting with `-`.
//! - A path ([`check_path`]) has no double quote, backslash, `%`, `$` or
//!   control character; where ssh would split it at whitespace it is given as
//!   a [`config_word`].
//!
//! [`config_word`] writes an ssh config value in double quotes and refuses what
//! a quoted config word cannot hold. A refusal is an [`SshValueError`].
//! Nothing here runs `ssh`.

use super::text::{describe_char, excerpt};

/// Why a host string, user name, path or config value cannot be given to
/// `ssh`. Each variant keeps the text as written; messages show it escaped
/// and bounded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SshValueError {
    /// A port that is not a number from 1 to 65535.
    #[error("{} is not a port number (1-65535)", excerpt(.port))]
    BadPort { port: String },
    /// A `[` without its `]`.
    #[error("an opening [ without its closing ]")]
    UnclosedBracket,
    /// Brackets around something other than an IPv6 address.
    #[error("brackets hold an IPv6 address only")]
    BracketsNotIpv6,
    /// Something other than `:port` after `]`.
    #[error("unexpected {} after ]", excerpt(.rest))]
    AfterBracket { rest: String },
    /// An empty address.
    #[error("no host name")]
    NoHostName,
    /// An address longer than DNS allows.
    #[error("a host name of {bytes} bytes is longer than the {MAX_ADDRESS} DNS allows")]
    AddressTooLong { bytes: usize },
    /// An address with `:` that is not an IPv6 address.
    #[error("{} is not an IPv6 address (hex digits, ':' and '.', then an optional %zone)", excerpt(.address))]
    NotIpv6 { address: String },
    /// A host name starting with `-` or `.`.
    #[error("{} is not a host name: it must not start with '-' or '.'", excerpt(.address))]
    HostNameStart { address: String },
    /// A host name with a character outside its grammar.
    #[error("{} is not a host name: {} is not a letter, digit, '-', '_' or '.'", excerpt(.address), describe_char(*.found))]
    HostNameChar { address: String, found: char },
    /// An empty user name.
    #[error("the user name is empty")]
    EmptyUser,
    /// A user name longer than any in practice.
    #[error("a user name of {bytes} bytes is longer than {MAX_USER}")]
    UserTooLong { bytes: usize },
    /// A user name starting with `-`.
    #[error("{} is not a user name: it must not start with '-'", excerpt(.user))]
    UserStart { user: String },
    /// A user name with a character outside its grammar.
    #[error("{} is not a user name: {} is not a letter, digit, '-', '_' or '.'", excerpt(.user), describe_char(*.found))]
    UserChar { user: String, found: char },
    /// An empty path.
    #[error("the path is empty")]
    EmptyPath,
    /// A path with a character ssh would expand or unquote.
    #[error("{} cannot be given to ssh: it holds {}, which ssh would read as more than a path", excerpt(.path), describe_char(*.found))]
    PathHolds { path: String, found: char },
    /// A config value with a character a quoted config word cannot hold.
    #[error("{} cannot be written into an ssh config: it holds {}", excerpt(.value), describe_char(*.found))]
    ConfigWordHolds { value: String, found: char },
}

/// A host string taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub user: Option<String>,
    /// The address alone, without brackets or port.
    pub address: String,
    pub port: Option<u16>,
}

impl Target {
    /// `[user@]address`, what `ssh` takes as its destination argument.
    pub fn destination(&self) -> String {
        match &self.user {
            Some(user) => format!("{user}@{}", self.address),
            None => self.address.clone(),
        }
    }

    /// `[user@]address[:port]` as `ssh -J` takes it (an IPv6 address with a
    /// port in brackets).
    pub fn jump_spec(&self) -> String {
        let host = match self.port {
            Some(port) if self.address.contains(':') => format!("[{}]:{port}", self.address),
            Some(port) => format!("{}:{port}", self.address),
            None => self.address.clone(),
        };
        match &self.user {
            Some(user) => format!("{user}@{host}"),
            None => host,
        }
    }
}

/// The longest host name DNS allows.
const MAX_ADDRESS: usize = 253;
/// Longer user names exist nowhere in practice.
const MAX_USER: usize = 256;

/// Parse `[user@]address[:port]`, refusing anything outside the grammar of
/// the module documentation.
pub fn parse_target(host: &str) -> Result<Target, SshValueError> {
    let (user, rest) = match host.rsplit_once('@') {
        Some((user, rest)) => {
            check_user(user)?;
            (Some(user.to_string()), rest)
        }
        None => (None, host),
    };
    let bad_port = |port: &str| SshValueError::BadPort {
        port: port.to_string(),
    };
    let parse_port = |port: &str| match port.parse::<u16>() {
        Ok(p) if p != 0 && port.bytes().all(|b| b.is_ascii_digit()) => Ok(p),
        _ => Err(bad_port(port)),
    };
    let (address, port) = if let Some(bracketed) = rest.strip_prefix('[') {
        let (address, after) = bracketed
            .split_once(']')
            .ok_or(SshValueError::UnclosedBracket)?;
        if !address.contains(':') {
            return Err(SshValueError::BracketsNotIpv6);
        }
        match after {
            "" => (address, None),
            _ => match after.strip_prefix(':') {
                Some(port) => (address, Some(parse_port(port)?)),
                None => {
                    return Err(SshValueError::AfterBracket {
                        rest: after.to_string(),
                    })
                }
            },
        }
    } else {
        match rest.split_once(':') {
            // One colon: host:port. More: a bare IPv6 address.
            Some((address, port)) if !port.contains(':') => (address, Some(parse_port(port)?)),
            _ => (rest, None),
        }
    };
    check_address(address)?;
    Ok(Target {
        user,
        address: address.to_string(),
        port,
    })
}

/// A host name, IPv4 or IPv6 address (with an optional `%zone`).
fn check_address(address: &str) -> Result<(), SshValueError> {
    if address.is_empty() {
        return Err(SshValueError::NoHostName);
    }
    if address.len() > MAX_ADDRESS {
        return Err(SshValueError::AddressTooLong {
            bytes: address.len(),
        });
    }
    let owned = || address.to_string();
    if address.contains(':') {
        let (ip, zone) = match address.split_once('%') {
            Some((ip, zone)) => (ip, Some(zone)),
            None => (address, None),
        };
        let ip_ok = ip
            .bytes()
            .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
        let zone_ok = zone.is_none_or(|z| !z.is_empty() && z.bytes().all(is_name_byte));
        if ip_ok && zone_ok {
            return Ok(());
        }
        return Err(SshValueError::NotIpv6 { address: owned() });
    }
    if address.starts_with(['-', '.']) {
        return Err(SshValueError::HostNameStart { address: owned() });
    }
    if let Some(found) = address
        .chars()
        .find(|c| !c.is_ascii() || !is_name_byte(*c as u8))
    {
        return Err(SshValueError::HostNameChar {
            address: owned(),
            found,
        });
    }
    Ok(())
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')
}

/// A login name: letters, digits, `_`, `.`, `-`, not starting with `-`.
pub fn check_user(user: &str) -> Result<(), SshValueError> {
    if user.is_empty() {
        return Err(SshValueError::EmptyUser);
    }
    if user.len() > MAX_USER {
        return Err(SshValueError::UserTooLong { bytes: user.len() });
    }
    if user.starts_with('-') {
        return Err(SshValueError::UserStart {
            user: user.to_string(),
        });
    }
    if let Some(found) = user
        .chars()
        .find(|c| !c.is_ascii() || !is_name_byte(*c as u8))
    {
        return Err(SshValueError::UserChar {
            user: user.to_string(),
            found,
        });
    }
    Ok(())
}

/// A path `ssh` may be given (`-i`, `UserKnownHostsFile`, `IdentityFile`):
/// `ssh` expands `%x` and `${VAR}` in them and reads quotes and backslashes
/// in option values, so none of these may appear (nor a control character).
pub fn check_path(path: &str) -> Result<(), SshValueError> {
    if path.is_empty() {
        return Err(SshValueError::EmptyPath);
    }
    if let Some(found) = path
        .chars()
        .find(|c| c.is_control() || "\"\\%$".contains(*c))
    {
        return Err(SshValueError::PathHolds {
            path: path.to_string(),
            found,
        });
    }
    Ok(())
}

/// One ssh config value, in double quotes: exactly one word to `ssh`'s config
/// tokenizer. Refuses values holding a double quote, a backslash, a control
/// character, `%` or `$` (ssh would expand them in path options).
pub fn config_word(value: &str) -> Result<String, SshValueError> {
    if let Some(found) = value
        .chars()
        .find(|c| c.is_control() || "\"\\%$".contains(*c))
    {
        return Err(SshValueError::ConfigWordHolds {
            value: value.to_string(),
            found,
        });
    }
    Ok(format!("\"{value}\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_strings() {
        let t = parse_target("web-1").unwrap();
        assert_eq!((t.destination().as_str(), t.port), ("web-1", None));
        let t = parse_target("10.0.0.5:2222").unwrap();
        assert_eq!((t.destination().as_str(), t.port), ("10.0.0.5", Some(2222)));
        let t = parse_target("deploy@host:22").unwrap();
        assert_eq!(
            (t.destination().as_str(), t.port),
            ("deploy@host", Some(22))
        );
        assert_eq!(t.address, "host");
        assert_eq!(t.jump_spec(), "deploy@host:22");
        let t = parse_target("[::1]:2200").unwrap();
        assert_eq!((t.destination().as_str(), t.port), ("::1", Some(2200)));
        assert_eq!(t.jump_spec(), "[::1]:2200");
        let t = parse_target("fe80::1%eth0").unwrap();
        assert_eq!((t.destination().as_str(), t.port), ("fe80::1%eth0", None));
        for bad in [
            "host:abc",
            "host:0",
            "host:70000",
            "host:+22",
            ":22",
            "[::1",
            "[host]:22",
            "",
            "@host",
        ] {
            assert!(parse_target(bad).is_err(), "{bad:?} is refused");
        }
    }

    #[test]
    fn values_that_would_change_the_ssh_command_or_config_are_refused() {
        for hostile in [
            "bastion\nProxyCommand touch /x",
            "bastion ProxyCommand=touch",
            "-oProxyCommand=touch",
            "host,other",
            "*",
            "host\"",
            "ho'st",
            "h%h",
            "h$x",
            "h\0",
            "h\u{1b}[2J",
            "-user@host",
            "a b@host",
            "us%er@host",
            "héllo",
            "[::1\n]:22",
            "fe80::1%eth0\nX",
        ] {
            assert!(
                parse_target(hostile).is_err(),
                "{hostile:?} must not pass as a host string"
            );
        }
        let long = "a".repeat(MAX_ADDRESS + 1);
        assert!(parse_target(&long).is_err());
        for hostile in ["", "-l", "a b", "a\nb", "a@b", "a:b", "a%u"] {
            assert!(check_user(hostile).is_err(), "{hostile:?} is not a user");
        }
        check_user("deploy_user.1-a").unwrap();
    }

    #[test]
    fn paths_for_ssh() {
        check_path("/home/me/.ssh/id_ed25519").unwrap();
        check_path("keys/id-rsa.pem").unwrap();
        check_path("/home/me/my keys/id#1").unwrap();
        for hostile in [
            "", "/a\nb", "/a\"b", "/a\\b", "/a%d", "/${HOME}", "/a\tb", "/a\0",
        ] {
            assert!(check_path(hostile).is_err(), "{hostile:?} is refused");
        }
    }

    /// ssh's config tokenizer for one line (argv_split in OpenSSH's misc.c),
    /// enough to check that a quoted word is one argument holding the value.
    fn ssh_words(line: &str) -> Vec<String> {
        let mut words = Vec::new();
        let mut chars = line.chars().peekable();
        loop {
            while chars.peek().is_some_and(|c| *c == ' ' || *c == '\t') {
                chars.next();
            }
            let Some(&first) = chars.peek() else { break };
            let mut word = String::new();
            let quote = if first == '"' || first == '\'' {
                chars.next();
                Some(first)
            } else {
                None
            };
            while let Some(c) = chars.next() {
                match (c, quote) {
                    ('\\', _) => {
                        if let Some(next) = chars.next() {
                            word.push(next)
                        }
                    }
                    (c, Some(q)) if c == q => break,
                    (' ' | '\t', None) => break,
                    (c, _) => word.push(c),
                }
            }
            words.push(word);
        }
        words
    }

    #[test]
    fn config_words_are_one_word_holding_the_value() {
        for value in ["/home/me/id", "/a b/c d", "name", "ümlaut", "a'b", "#x"] {
            let word = config_word(value).unwrap();
            let line = format!("  IdentityFile {word}");
            assert_eq!(ssh_words(&line), vec!["IdentityFile", value], "{line}");
        }
        for hostile in ["a\nHost *", "a\"b", "a\\b", "%d", "${HOME}", "a\rb", "a\0"] {
            assert!(config_word(hostile).is_err(), "{hostile:?} is refused");
        }
    }
}
