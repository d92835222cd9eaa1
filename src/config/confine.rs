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
//! These are lexical checks, made at validate time; a refusal is a
//! [`ConfineError`] holding the text as written. What a path on a host
//! resolves to (symbolic links) is checked by the remote scripts when they
//! run (`vm::steps`). Pure functions; nothing here touches a file system.

use crate::encode::text::{describe_char, excerpt, forbidden_in_line};

/// Why a path, a version or a local host name is refused. Each variant keeps
/// the text as written; messages show it escaped and bounded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfineError {
    /// The text holds a character no path or name may hold.
    #[error("{} holds {}", excerpt(.text), describe_char(*.found))]
    Holds { text: String, found: char },
    /// A service path that does not start with `/`.
    #[error("{} is not an absolute path (it must start with /)", excerpt(.path))]
    NotAbsolute { path: String },
    /// A service path with `//`.
    #[error("{} has an empty component (//)", excerpt(.path))]
    EmptyComponent { path: String },
    /// A service path with a `.` or `..` component.
    #[error("{} has a \"{component}\" component; write the path it means", excerpt(.path))]
    DotComponent { path: String, component: String },
    /// A component longer than [`MAX_COMPONENT_BYTES`].
    #[error("{} has a component longer than {MAX_COMPONENT_BYTES} bytes", excerpt(.path))]
    ComponentTooLong { path: String },
    /// A path longer than [`MAX_PATH_BYTES`].
    #[error("{} is longer than {MAX_PATH_BYTES} bytes", excerpt(.path))]
    PathTooLong { path: String },
    /// A service directory that is one of [`SYSTEM_DIRS`].
    #[error("{} is a system directory; use a directory of the service's own, such as /opt/NAME or /etc/NAME", excerpt(.dir))]
    SystemDir { dir: String },
    /// A service directory under `/proc`, `/sys` or `/dev`.
    #[error("{} is on a kernel file system (/proc, /sys, /dev)", excerpt(.dir))]
    KernelFileSystem { dir: String },
    /// A config file in a part of `install_dir` slipway keeps for itself.
    #[error("{} is in {reserved}, which slipway manages itself", excerpt(.file))]
    Reserved { file: String, reserved: String },
    /// A config file outside `install_dir` and the `config_dirs`.
    #[error("{} is outside the service's directories", excerpt(.file))]
    OutsideServiceDirs { file: String },
    /// An empty version.
    #[error("the version cannot be empty: it names the release directory")]
    EmptyVersion,
    /// A version starting with `.`.
    #[error("{} starts with \".\": it names the release directory", excerpt(.version))]
    VersionStartsWithDot { version: String },
    /// A version holding `/`.
    #[error("{} holds \"/\": it names the release directory", excerpt(.version))]
    VersionHoldsSlash { version: String },
    /// A version longer than [`MAX_VERSION_BYTES`].
    #[error("{} is longer than {MAX_VERSION_BYTES} bytes: it names the release directory", excerpt(.version))]
    VersionTooLong { version: String },
    /// A local host name that is empty, `.` or `..`.
    #[error("{} cannot name a host's directory with the local transport", excerpt(.host))]
    NotAHostDir { host: String },
    /// A local host name holding `/`, a control character or a blank.
    #[error("{} cannot name a host's directory with the local transport: it holds {}", excerpt(.host), describe_char(*.found))]
    HostDirHolds { host: String, found: char },
    /// A local host name longer than [`MAX_COMPONENT_BYTES`].
    #[error("{} cannot name a host's directory with the local transport: it is longer than {MAX_COMPONENT_BYTES} bytes", excerpt(.host))]
    HostDirTooLong { host: String },
    /// A local `root` that is absolute or starts with `~`.
    #[error("{} is not relative: the local transport keeps hosts inside the configuration's directory", excerpt(.root))]
    RootNotRelative { root: String },
    /// A local `root` with a `..` component.
    #[error("{} has a \"..\" component: the local transport keeps hosts inside the configuration's directory", excerpt(.root))]
    RootLeaves { root: String },
    /// A local `root` that is the configuration's directory itself.
    #[error("{} is the configuration's directory itself: name a directory inside it, such as \".slipway/hosts\"", excerpt(.root))]
    RootIsConfigDir { root: String },
}

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
pub fn absolute_path(path: &str) -> Result<String, ConfineError> {
    let owned = || path.to_string();
    if let Some(found) = forbidden_in_line(path).or_else(|| path.chars().find(|c| *c == '\t')) {
        return Err(ConfineError::Holds {
            text: owned(),
            found,
        });
    }
    if !path.starts_with('/') {
        return Err(ConfineError::NotAbsolute { path: owned() });
    }
    let trimmed = path.trim_end_matches('/');
    for part in trimmed.split('/').skip(1) {
        match part {
            "" => return Err(ConfineError::EmptyComponent { path: owned() }),
            "." | ".." => {
                return Err(ConfineError::DotComponent {
                    path: owned(),
                    component: part.to_string(),
                })
            }
            _ if part.len() > MAX_COMPONENT_BYTES => {
                return Err(ConfineError::ComponentTooLong { path: owned() })
            }
            _ => {}
        }
    }
    if path.len() > MAX_PATH_BYTES {
        return Err(ConfineError::PathTooLong { path: owned() });
    }
    Ok(if trimmed.is_empty() {
        "/".to_string()
    } else {
        trimmed.to_string()
    })
}

/// A directory slipway may own on a host: [`absolute_path`], not one of
/// [`SYSTEM_DIRS`], not under `/proc`, `/sys` or `/dev`.
pub fn service_dir(path: &str) -> Result<String, ConfineError> {
    let dir = absolute_path(path)?;
    if SYSTEM_DIRS.contains(&dir.as_str()) {
        return Err(ConfineError::SystemDir { dir });
    }
    if PSEUDO_FILE_SYSTEMS.iter().any(|fs| {
        dir.strip_prefix(fs)
            .is_some_and(|rest| rest.starts_with('/'))
    }) {
        return Err(ConfineError::KernelFileSystem { dir });
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
) -> Result<String, ConfineError> {
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
            return Err(ConfineError::Reserved {
                reserved: first.to_string(),
                file,
            });
        }
        return Ok(file);
    }
    if config_dirs.iter().any(|dir| inside(dir).is_some()) {
        return Ok(file);
    }
    Err(ConfineError::OutsideServiceDirs { file })
}

/// The longest version a release directory can be named after: the config
/// snapshot of a release is `VERSION+` and 16 hex digits, and a file name
/// has at most 255 bytes.
pub const MAX_VERSION_BYTES: usize = 200;

/// A VM service's version as the name of its release directory: not empty,
/// not starting with `.`, without `/` or control characters, at most
/// [`MAX_VERSION_BYTES`] bytes.
pub fn release_name(version: &str) -> Result<(), ConfineError> {
    let owned = || version.to_string();
    if version.is_empty() {
        return Err(ConfineError::EmptyVersion);
    }
    if version.starts_with('.') {
        return Err(ConfineError::VersionStartsWithDot { version: owned() });
    }
    if version.contains('/') {
        return Err(ConfineError::VersionHoldsSlash { version: owned() });
    }
    if let Some(found) = version.chars().find(|c| c.is_control()) {
        return Err(ConfineError::Holds {
            text: owned(),
            found,
        });
    }
    if version.len() > MAX_VERSION_BYTES {
        return Err(ConfineError::VersionTooLong { version: owned() });
    }
    Ok(())
}

/// A host name with the local transport: one directory name (not `.`, `..`,
/// no `/`, no control characters, at most [`MAX_COMPONENT_BYTES`] bytes).
pub fn local_host(host: &str) -> Result<(), ConfineError> {
    let owned = || host.to_string();
    if host.is_empty() || host == "." || host == ".." {
        return Err(ConfineError::NotAHostDir { host: owned() });
    }
    if let Some(found) = host
        .chars()
        .find(|c| *c == '/' || c.is_control() || c.is_whitespace())
    {
        return Err(ConfineError::HostDirHolds {
            host: owned(),
            found,
        });
    }
    if host.len() > MAX_COMPONENT_BYTES {
        return Err(ConfineError::HostDirTooLong { host: owned() });
    }
    Ok(())
}

/// `root` of the local transport: a relative path that stays inside the
/// configuration's directory (no `..` components).
pub fn local_root(root: &str) -> Result<(), ConfineError> {
    let owned = || root.to_string();
    if let Some(found) = root.chars().find(|c| c.is_control()) {
        return Err(ConfineError::Holds {
            text: owned(),
            found,
        });
    }
    if root.starts_with('/') || root.starts_with('~') {
        return Err(ConfineError::RootNotRelative { root: owned() });
    }
    if root.split('/').any(|part| part == "..") {
        return Err(ConfineError::RootLeaves { root: owned() });
    }
    if root.trim_matches(['/', '.']).is_empty() {
        return Err(ConfineError::RootIsConfigDir { root: owned() });
    }
    if root.split('/').any(|part| part.len() > MAX_COMPONENT_BYTES) {
        return Err(ConfineError::ComponentTooLong { path: owned() });
    }
    if root.len() > MAX_PATH_BYTES {
        return Err(ConfineError::PathTooLong { path: owned() });
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
            absolute_path(&format!("/opt/{long}"))
                .unwrap_err()
                .to_string(),
            absolute_path(&"/opt".repeat(MAX_PATH_BYTES))
                .unwrap_err()
                .to_string(),
            service_dir(&format!("/opt/app{long}"))
                .unwrap_err()
                .to_string(),
            destination(&format!("/opt/app/{long}.env"), Some("/opt/app"), &[])
                .unwrap_err()
                .to_string(),
            local_host(&long).unwrap_err().to_string(),
            local_root(&format!(".slipway/{long}"))
                .unwrap_err()
                .to_string(),
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
