//! Confinement: the directories a service may write to on a host, and the
//! names the local transport turns into directories on this machine.
//!
//! The rule (ARCHITECTURE.md, invariants): slipway writes on a host only
//! under the service's `install_dir`, its `config_dirs` and the systemd unit
//! directory (one file, named by a checked unit name). So
//!
//! - `install_dir` and every `config_dirs` entry are absolute, written without
//!   `.`/`..` components, and are not a system directory ([`SYSTEM_DIRS`]) or
//!   anything under `/proc`, `/sys` or `/dev`;
//! - a config file's destination is strictly inside one of them, and not in
//!   the parts of `install_dir` slipway keeps for itself (`.slipway`,
//!   `releases`, `current` itself);
//! - a VM service's version names its release directory
//!   (`install_dir/releases/VERSION`): one plain file name ([`release_name`]);
//! - with the local transport, a host name is one plain directory name and
//!   `root` a relative path that stays inside the configuration's directory.
//!
//! These are lexical checks, made at validate time. What a path on a host
//! resolves to (symbolic links) is checked by the remote scripts when they
//! run (`vm::steps`). Pure functions; nothing here touches a file system.

use crate::encode::text::{describe_char, excerpt, forbidden_in_line};

/// Directories that may not be an `install_dir` or a config directory: the
/// root, the directories of the Filesystem Hierarchy Standard, and the ones
/// whose files the system itself reads (`/etc/systemd/system`...). A service
/// directory below them (`/opt/myapp`, `/etc/myapp`) is fine.
pub const SYSTEM_DIRS: &[&str] = &[
    "/",
    "/bin",
    "/boot",
    "/dev",
    "/etc",
    "/etc/default",
    "/etc/init.d",
    "/etc/ssh",
    "/etc/sudoers.d",
    "/etc/systemd",
    "/etc/systemd/system",
    "/home",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/media",
    "/mnt",
    "/opt",
    "/proc",
    "/root",
    "/run",
    "/sbin",
    "/srv",
    "/sys",
    "/tmp",
    "/usr",
    "/usr/bin",
    "/usr/lib",
    "/usr/lib64",
    "/usr/libexec",
    "/usr/local",
    "/usr/local/bin",
    "/usr/local/lib",
    "/usr/local/sbin",
    "/usr/sbin",
    "/usr/share",
    "/var",
    "/var/cache",
    "/var/lib",
    "/var/log",
    "/var/run",
    "/var/tmp",
];

/// Kernel file systems: nothing under them is a place for files.
const PSEUDO_FILE_SYSTEMS: &[&str] = &["/proc", "/sys", "/dev"];

/// The names under `install_dir` that slipway manages itself.
const RESERVED: &[&str] = &[".slipway", "releases", "current"];

/// The longest component of a path slipway writes to: a file name has at
/// most 255 bytes, and slipway's temporary files beside a file add 16.
pub const MAX_COMPONENT_BYTES: usize = 200;

/// The longest path of a service's directory or file.
pub const MAX_PATH_BYTES: usize = 2048;

/// An absolute path without `.`/`..` components, empty components or control
/// characters, at most [`MAX_PATH_BYTES`] long with components of at most
/// [`MAX_COMPONENT_BYTES`], returned without a trailing `/` (the root stays
/// `/`).
pub fn absolute_path(path: &str) -> Result<String, String> {
    let shown = excerpt(path);
    if let Some(c) = forbidden_in_line(path).or_else(|| path.chars().find(|c| *c == '\t')) {
        return Err(format!("{shown} holds {}", describe_char(c)));
    }
    if !path.starts_with('/') {
        return Err(format!(
            "{shown} is not an absolute path (it must start with /)"
        ));
    }
    let trimmed = path.trim_end_matches('/');
    for part in trimmed.split('/').skip(1) {
        match part {
            "" => return Err(format!("{shown} has an empty component (//)")),
            "." | ".." => {
                return Err(format!(
                    "{shown} has a \"{part}\" component; write the path it means"
                ))
            }
            _ if part.len() > MAX_COMPONENT_BYTES => {
                return Err(format!(
                    "{shown} has a component longer than {MAX_COMPONENT_BYTES} bytes"
                ))
            }
            _ => {}
        }
    }
    if path.len() > MAX_PATH_BYTES {
        return Err(format!("{shown} is longer than {MAX_PATH_BYTES} bytes"));
    }
    Ok(if trimmed.is_empty() {
        "/".to_string()
    } else {
        trimmed.to_string()
    })
}

/// A directory slipway may own on a host: [`absolute_path`], not one of
/// [`SYSTEM_DIRS`], not under `/proc`, `/sys` or `/dev`.
pub fn service_dir(path: &str) -> Result<String, String> {
    let dir = absolute_path(path)?;
    if SYSTEM_DIRS.contains(&dir.as_str()) {
        return Err(format!(
            "{} is a system directory; use a directory of the service's own, such as /opt/NAME or /etc/NAME",
            excerpt(&dir)
        ));
    }
    if PSEUDO_FILE_SYSTEMS.iter().any(|fs| {
        dir.strip_prefix(fs)
            .is_some_and(|rest| rest.starts_with('/'))
    }) {
        return Err(format!(
            "{} is on a kernel file system (/proc, /sys, /dev)",
            excerpt(&dir)
        ));
    }
    Ok(dir)
}

/// Where a config file may go: strictly inside `install_dir` (but not in
/// `.slipway` or `releases`, nor `current` itself) or inside one of
/// `config_dirs`. The directories are as [`service_dir`] returned them.
pub fn destination(
    path: &str,
    install_dir: Option<&str>,
    config_dirs: &[String],
) -> Result<String, String> {
    let file = absolute_path(path)?;
    let inside = |dir: &str| -> Option<String> {
        let rest = if dir == "/" {
            file.strip_prefix('/')
        } else {
            file.strip_prefix(dir)?.strip_prefix('/')
        }?;
        (!rest.is_empty()).then(|| rest.to_string())
    };
    if let Some(rest) = install_dir.and_then(inside) {
        let first = rest.split('/').next().unwrap_or_default();
        let is_current_itself = rest == "current";
        if RESERVED.contains(&first) && (first != "current" || is_current_itself) {
            return Err(format!(
                "{} is in {first}, which slipway manages itself",
                excerpt(&file)
            ));
        }
        return Ok(file);
    }
    if config_dirs.iter().any(|dir| inside(dir).is_some()) {
        return Ok(file);
    }
    Err(format!(
        "{} is outside the service's directories",
        excerpt(&file)
    ))
}

/// The longest version a release directory can be named after: the config
/// snapshot of a release is `VERSION+` and 16 hex digits, and a file name
/// has at most 255 bytes.
pub const MAX_VERSION_BYTES: usize = 200;

/// A VM service's version as the name of its release directory: not empty,
/// not starting with `.`, without `/` or control characters, at most
/// [`MAX_VERSION_BYTES`] bytes.
pub fn release_name(version: &str) -> Result<(), String> {
    let shown = excerpt(version);
    if version.is_empty() {
        return Err("the version cannot be empty: it names the release directory".to_string());
    }
    if version.starts_with('.') {
        return Err(format!(
            "{shown} starts with \".\": it names the release directory"
        ));
    }
    if version.contains('/') {
        return Err(format!(
            "{shown} holds \"/\": it names the release directory"
        ));
    }
    if let Some(c) = version.chars().find(|c| c.is_control()) {
        return Err(format!("{shown} holds {}", describe_char(c)));
    }
    if version.len() > MAX_VERSION_BYTES {
        return Err(format!(
            "{shown} is longer than {MAX_VERSION_BYTES} bytes: it names the release directory"
        ));
    }
    Ok(())
}

/// A host name with the local transport: one directory name (not `.`, `..`,
/// no `/`, no control characters, at most [`MAX_COMPONENT_BYTES`] bytes).
pub fn local_host(host: &str) -> Result<(), String> {
    let shown = excerpt(host);
    if host.is_empty() || host == "." || host == ".." {
        return Err(format!(
            "{shown} cannot name a host's directory with the local transport"
        ));
    }
    if let Some(c) = host
        .chars()
        .find(|c| *c == '/' || c.is_control() || c.is_whitespace())
    {
        return Err(format!(
            "{shown} cannot name a host's directory with the local transport: it holds {}",
            describe_char(c)
        ));
    }
    if host.len() > MAX_COMPONENT_BYTES {
        return Err(format!(
            "{shown} cannot name a host's directory with the local transport: it is longer than {MAX_COMPONENT_BYTES} bytes"
        ));
    }
    Ok(())
}

/// `root` of the local transport: a relative path that stays inside the
/// configuration's directory (no `..` components).
pub fn local_root(root: &str) -> Result<(), String> {
    let shown = excerpt(root);
    if let Some(c) = root.chars().find(|c| c.is_control()) {
        return Err(format!("{shown} holds {}", describe_char(c)));
    }
    if root.starts_with('/') || root.starts_with('~') {
        return Err(format!(
            "{shown} is not relative: the local transport keeps hosts inside the configuration's directory"
        ));
    }
    if root.split('/').any(|part| part == "..") {
        return Err(format!(
            "{shown} has a \"..\" component: the local transport keeps hosts inside the configuration's directory"
        ));
    }
    if root.trim_matches(['/', '.']).is_empty() {
        return Err(format!(
            "{shown} is the configuration's directory itself: name a directory inside it, such as \".slipway/hosts\""
        ));
    }
    if root.split('/').any(|part| part.len() > MAX_COMPONENT_BYTES) {
        return Err(format!(
            "{shown} has a component longer than {MAX_COMPONENT_BYTES} bytes"
        ));
    }
    if root.len() > MAX_PATH_BYTES {
        return Err(format!("{shown} is longer than {MAX_PATH_BYTES} bytes"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_longer_than_a_file_name_may_be_are_refused() {
        let long = "m".repeat(MAX_COMPONENT_BYTES + 1);
        let fits = "m".repeat(MAX_COMPONENT_BYTES);
        assert!(absolute_path(&format!("/opt/{fits}")).is_ok());
        for problem in [
            absolute_path(&format!("/opt/{long}")).unwrap_err(),
            absolute_path(&"/opt".repeat(MAX_PATH_BYTES)).unwrap_err(),
            service_dir(&format!("/opt/app{long}")).unwrap_err(),
            destination(&format!("/opt/app/{long}.env"), Some("/opt/app"), &[]).unwrap_err(),
            local_host(&long).unwrap_err(),
            local_root(&format!(".slipway/{long}")).unwrap_err(),
        ] {
            assert!(problem.len() < 300, "the message repeats the value");
            assert!(problem.contains("longer than"), "{problem}");
        }
    }

    #[test]
    fn absolute_paths() {
        assert_eq!(absolute_path("/opt/app/").unwrap(), "/opt/app");
        assert_eq!(absolute_path("/").unwrap(), "/");
        for bad in [
            "opt/app",
            "",
            "/opt/../etc",
            "/opt/./app",
            "/opt//app",
            "/a\nb",
            "/a\0",
        ] {
            assert!(absolute_path(bad).is_err(), "{bad:?} refused");
        }
    }

    #[test]
    fn service_directories() {
        assert_eq!(service_dir("/opt/myapp").unwrap(), "/opt/myapp");
        assert_eq!(service_dir("/etc/myapp/").unwrap(), "/etc/myapp");
        for bad in [
            "/",
            "/etc",
            "/etc/",
            "/usr",
            "/var/lib",
            "/tmp",
            "/home",
            "/proc/1",
            "/sys/x",
            "/dev/shm/a",
            "relative",
        ] {
            assert!(service_dir(bad).is_err(), "{bad:?} refused");
        }
    }

    #[test]
    fn destinations() {
        let dirs = vec!["/etc/myapp".to_string()];
        let install = Some("/opt/myapp");
        for good in [
            "/opt/myapp/config/app.properties",
            "/etc/myapp/app.conf",
            "/opt/myapp/current/config.yml",
            "/opt/myapp/currently",
        ] {
            destination(good, install, &dirs).unwrap();
        }
        for bad in [
            "/etc/passwd",
            "/opt/myapp",
            "/opt/myapp/../x",
            "/etc/myapp",
            "/etc/myapp2/x",
            "/opt/myapp/.slipway/release.json",
            "/opt/myapp/releases/1.0/x",
            "/opt/myapp/current",
            "relative/x",
        ] {
            assert!(destination(bad, install, &dirs).is_err(), "{bad:?} refused");
        }
    }

    #[test]
    fn local_transport_names() {
        local_host("host-1").unwrap();
        local_root(".slipway/hosts").unwrap();
        local_root("hosts").unwrap();
        for bad in ["", ".", "..", "a/b", "/", "a\nb", "a b"] {
            assert!(local_host(bad).is_err(), "{bad:?} refused");
        }
        for bad in [
            "/",
            "/tmp/hosts",
            "..",
            "../x",
            "a/../../x",
            ".",
            "./",
            "~/x",
            "a\0",
        ] {
            assert!(local_root(bad).is_err(), "{bad:?} refused");
        }
    }
}
