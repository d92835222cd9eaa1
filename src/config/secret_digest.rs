//! Digests of rendered texts that hold sensitive values, so that state can
//! tell a rotated secret from an unchanged one without holding anything that
//! helps recover it.
//!
//! State keeps config files with sensitive values masked, so two texts that
//! differ only in a secret look the same. Beside them it keeps, per file, a
//! salted scrypt digest of the real text: `scrypt$LOG_N$R$P$SALT$HASH` (hex).
//! scrypt is deliberately slow and memory-hard (16 MiB, tens of
//! milliseconds), and each digest has its own random salt, so a state file
//! is no table to look secrets up in and guessing one costs a scrypt run per
//! guess. Plan recomputes the digest with the stored salt and parameters and
//! compares; nothing of it is ever shown. A saved plan's digests of the
//! `secret` blocks it read use the same format with a salt of its own
//! ([`digest_with_salt`]: the configuration digest's start and the name), so
//! the same plan made twice is the same document.

use crate::config::{Config, Deployment};
use std::collections::BTreeMap;

/// scrypt cost: N = 2^14, r = 8, p = 1 (16 MiB of memory per digest).
const LOG_N: u8 = 14;
const R: u32 = 8;
const P: u32 = 1;
const HASH_LEN: usize = 32;

fn hash(text: &str, salt: &[u8], log_n: u8, r: u32, p: u32) -> Option<Vec<u8>> {
    let params = scrypt::Params::new(log_n, r, p, HASH_LEN).ok()?;
    let mut out = vec![0u8; HASH_LEN];
    scrypt::scrypt(text.as_bytes(), salt, &params, &mut out).ok()?;
    Some(out)
}

/// A new digest of `text`, with a fresh random salt.
pub fn digest(text: &str) -> String {
    digest_with_salt(text, uuid::Uuid::new_v4().as_bytes())
}

/// A digest of `text` with the given salt: for a document that must come
/// out the same when made twice (a saved plan's secrets, salted with its
/// configuration digest and the secret's name), where [`digest`] would not.
pub fn digest_with_salt(text: &str, salt: &[u8]) -> String {
    let hashed = hash(text, salt, LOG_N, R, P).unwrap_or_default();
    format!(
        "scrypt${LOG_N}${R}${P}${}${}",
        hex::encode(salt),
        hex::encode(hashed)
    )
}

/// Whether `stored` (made by [`digest`] or [`digest_with_salt`]) is a digest of `text`; `None` when
/// `stored` cannot be read (a format this version does not know, or costs
/// beyond what it accepts).
pub fn matches(stored: &str, text: &str) -> Option<bool> {
    let parts: Vec<&str> = stored.split('$').collect();
    let ["scrypt", log_n, r, p, salt, expected] = parts[..] else {
        return None;
    };
    let (log_n, r, p): (u8, u32, u32) = (log_n.parse().ok()?, r.parse().ok()?, p.parse().ok()?);
    // A state file is data: refuse costs that would make plan take minutes.
    if log_n > 20 || r > 32 || p > 4 {
        return None;
    }
    let salt = hex::decode(salt).ok()?;
    let expected = hex::decode(expected).ok()?;
    let actual = hash(text, &salt, log_n, r, p)?;
    // Compared in constant time (the texts are secret).
    Some(
        actual.len() == expected.len()
            && actual
                .iter()
                .zip(&expected)
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0,
    )
}

/// The config files of `deployment` that hold sensitive values (their masked
/// text differs from the real one), by destination, with their real text.
pub fn sensitive_files<'a>(
    config: &Config,
    deployment: &'a Deployment,
) -> BTreeMap<&'a str, &'a str> {
    deployment
        .service
        .vm
        .iter()
        .flat_map(|vm| vm.config_files.iter())
        .filter(|f| config.mask(&f.content) != f.content)
        .map(|f| (f.destination.as_str(), f.content.as_str()))
        .collect()
}

/// Fresh digests of the files [`sensitive_files`] finds, as state stores them.
pub fn sensitive_file_digests(
    config: &Config,
    deployment: &Deployment,
) -> BTreeMap<String, String> {
    sensitive_files(config, deployment)
        .into_iter()
        .map(|(destination, content)| (destination.to_string(), digest(content)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_digest_matches_its_text_only_and_reveals_no_part_of_it() {
        let stored = digest("password=hunter2\n");
        assert!(stored.starts_with("scrypt$14$8$1$"), "{stored}");
        assert!(!stored.contains("hunter2"));
        assert_eq!(matches(&stored, "password=hunter2\n"), Some(true));
        assert_eq!(matches(&stored, "password=hunter3\n"), Some(false));
        // Salted: the same text digests differently each time.
        assert_ne!(digest("password=hunter2\n"), stored);
        assert_eq!(matches("md5$abc", "x"), None);
        let salted = digest_with_salt("password=hunter2\n", b"plan-salt");
        assert_eq!(salted, digest_with_salt("password=hunter2\n", b"plan-salt"));
        assert_ne!(
            salted,
            digest_with_salt("password=hunter2\n", b"other-salt")
        );
        assert_eq!(matches(&salted, "password=hunter2\n"), Some(true));
        assert_eq!(matches(&salted, "password=hunter3\n"), Some(false));
        assert_eq!(matches("scrypt$30$8$1$00$00", "x"), None);
    }
}
