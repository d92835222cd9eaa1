//! Config file snapshots per release, so rollback restores the configuration
//! that went with the previous release, not only its code.
//!
//! After apply writes a release's config files it saves a copy under
//! `<install_dir>/.slipway/config/<name>/` (files numbered in the order of a
//! `manifest` of destinations), where the name ([`snapshot_name`]) is the
//! release pair: version and config digest. Rollback copies the files of the
//! pair it restores back, each atomically. Pure builders of scripts, like
//! [`super::steps`].

use super::shell::quote;
use super::steps::{
    confinement_functions, host_path, install_dir, refuse_managed_links, systemd_unit_path,
    systemd_unit_script, HostContext, Phase, RemoteStep,
};
use crate::config::{SystemdUnit, VmSpec};

/// The file of a snapshot holding the release pair's systemd unit.
const UNIT_FILE: &str = "systemd.unit";

/// The snapshot directory's name for a release pair: `VERSION+DIGEST`, or
/// `VERSION` for a pair recorded without a config digest (snapshots saved
/// before pairs were recorded are named so).
pub fn snapshot_name(version: &str, config_digest: Option<&str>) -> String {
    match config_digest {
        Some(digest) => format!("{version}+{digest}"),
        None => version.to_string(),
    }
}

fn snapshot_dir(vm: &VmSpec, ctx: &HostContext, name: &str) -> String {
    format!(
        "{}/.slipway/config/{name}",
        install_dir(vm, ctx).trim_end_matches('/')
    )
}

/// Save the config files just written, as snapshot `name` ([`snapshot_name`]),
/// and `unit_text`, the systemd unit the release pair runs with, as its
/// `systemd.unit`.
pub fn save(vm: &VmSpec, ctx: &HostContext, name: &str, unit_text: Option<&str>) -> RemoteStep {
    let snapshot = snapshot_dir(vm, ctx, name);
    let mut lines = vec!["set -eu".to_string()];
    lines.extend(refuse_managed_links(vm, ctx));
    lines.extend([
        format!("snapshot={}", quote(&snapshot)),
        "rm -rf \"$snapshot.tmp\"".to_string(),
        "mkdir -p \"$snapshot.tmp\"".to_string(),
        ": > \"$snapshot.tmp/manifest\"".to_string(),
    ]);
    for (index, file) in vm.config_files.iter().enumerate() {
        let destination = quote(&host_path(ctx, &file.destination));
        lines.push(format!(
            "cp -p {destination} \"$snapshot.tmp/{}\"",
            index + 1
        ));
        lines.push(format!(
            "printf '%s\\n' {destination} >> \"$snapshot.tmp/manifest\""
        ));
    }
    if let Some(text) = unit_text {
        lines.push(format!(
            "printf %s {} > \"$snapshot.tmp/{UNIT_FILE}\"",
            quote(text)
        ));
    }
    lines.push("rm -rf \"$snapshot\"".to_string());
    lines.push("mv \"$snapshot.tmp\" \"$snapshot\"".to_string());
    RemoteStep {
        phase: Phase::Configure,
        name: "config_snapshot.save".into(),
        script: lines.join("\n"),
        time_limit: None,
    }
}

/// Put back the config files of snapshot `name`; does nothing (and says so)
/// when there is no such snapshot. Each file goes back atomically (a new
/// `mktemp` file renamed with `mv -T`), and only into a directory whose real
/// path is inside one of the service's directories: a manifest line or a
/// symbolic link leading elsewhere fails the step.
pub fn restore(vm: &VmSpec, ctx: &HostContext, name: &str) -> RemoteStep {
    let snapshot = snapshot_dir(vm, ctx, name);
    let version = name;
    let mut lines = vec!["set -eu".to_string()];
    lines.extend(refuse_managed_links(vm, ctx));
    lines.extend(confinement_functions(vm, ctx));
    lines.extend([
        format!("snapshot={}", quote(&snapshot)),
        "if [ ! -f \"$snapshot/manifest\" ]; then".to_string(),
        format!("  printf 'slipway: no saved configuration for %s, config files left as they are\\n' {}", quote(version)),
        "  exit 0".to_string(),
        "fi".to_string(),
        "i=0".to_string(),
        "while IFS= read -r destination; do".to_string(),
        "  i=$((i + 1))".to_string(),
        "  dir=$(dirname \"$destination\")".to_string(),
        "  if ! allowed \"$(cd \"$dir\" 2>/dev/null && pwd -P)\"; then".to_string(),
        "    printf 'slipway: %s is outside the service'\\''s directories; not restoring it\\n' \"$destination\" >&2".to_string(),
        "    exit 1".to_string(),
        "  fi".to_string(),
        "  tmp=$(mktemp \"$dir/.slipway-restore-XXXXXX\")".to_string(),
        "  cp -p \"$snapshot/$i\" \"$tmp\"".to_string(),
        "  mv -fT \"$tmp\" \"$destination\"".to_string(),
        "done < \"$snapshot/manifest\"".to_string(),
    ]);
    RemoteStep {
        phase: Phase::Rollback,
        name: "rollback.config".into(),
        script: lines.join("\n"),
        time_limit: None,
    }
}

/// Put back the systemd unit saved with snapshot `name` (when, with
/// `systemd`, systemd is reloaded); does nothing (and says so) when the
/// snapshot has none. Written as apply writes a unit
/// ([`super::steps::install_systemd_unit`]): atomically, and only when it
/// differs.
pub fn restore_systemd_unit(
    vm: &VmSpec,
    unit: &SystemdUnit,
    ctx: &HostContext,
    name: &str,
    systemd: bool,
) -> RemoteStep {
    let saved = quote(&format!("{}/{UNIT_FILE}", snapshot_dir(vm, ctx, name)));
    let stage = vec![
        format!("if [ ! -f {saved} ]; then"),
        format!(
            "  printf 'slipway: no saved systemd unit for %s, %s left as it is\\n' {} {}",
            quote(name),
            quote(&unit.name)
        ),
        "  exit 0".to_string(),
        "fi".to_string(),
        format!("cp {saved} \"$staged\""),
    ];
    RemoteStep {
        phase: Phase::Rollback,
        name: "rollback.systemd_unit".into(),
        script: systemd_unit_script(vm, unit, ctx, stage, systemd).join("\n"),
        time_limit: None,
    }
}

/// What [`compare`] says of a host's config files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigSeen {
    /// Byte for byte the files of the snapshot.
    Same,
    /// A file differs from the snapshot's, or is missing.
    Differs,
    /// The host has no snapshot of that pair: nothing to compare with.
    Unknown,
}

/// Compare the config files on the host with those of snapshot `name` (the
/// pair state records for the host), reading only: prints `same`,
/// `differs` or `unknown` (no such snapshot).
pub fn compare(vm: &VmSpec, ctx: &HostContext, name: &str) -> RemoteStep {
    let snapshot = snapshot_dir(vm, ctx, name);
    let mut lines = vec![
        "set -eu".to_string(),
        format!("snapshot={}", quote(&snapshot)),
        "if [ ! -f \"$snapshot/manifest\" ]; then".to_string(),
        "  echo unknown".to_string(),
        "  exit 0".to_string(),
        "fi".to_string(),
        "i=0".to_string(),
        "while IFS= read -r destination; do".to_string(),
        "  i=$((i + 1))".to_string(),
        "  if ! cmp -s \"$destination\" \"$snapshot/$i\"; then".to_string(),
        "    echo differs".to_string(),
        "    exit 0".to_string(),
        "  fi".to_string(),
        "done < \"$snapshot/manifest\"".to_string(),
    ];
    if let Some(unit) = &vm.systemd_unit {
        lines.extend([
            format!(
                "if [ -f \"$snapshot/{UNIT_FILE}\" ] && ! cmp -s {} \"$snapshot/{UNIT_FILE}\"; then",
                quote(&systemd_unit_path(ctx, unit))
            ),
            "  echo differs".to_string(),
            "  exit 0".to_string(),
            "fi".to_string(),
        ]);
    }
    lines.push("echo same".to_string());
    RemoteStep {
        phase: Phase::Marker,
        name: "config_snapshot.compare".into(),
        script: lines.join("\n"),
        time_limit: None,
    }
}

impl ConfigSeen {
    /// Read [`compare`]'s output.
    pub fn parse(output: &str) -> Option<ConfigSeen> {
        match output.trim() {
            "same" => Some(ConfigSeen::Same),
            "differs" => Some(ConfigSeen::Differs),
            "unknown" => Some(ConfigSeen::Unknown),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigFile;

    fn spec() -> VmSpec {
        VmSpec {
            install_dir: "/opt/app".into(),
            run_as: None,
            keep_releases: 3,
            config_dirs: vec!["/etc/app".into()],
            start_command: None,
            stop_command: None,
            systemd_unit: None,
            config_files: vec![
                ConfigFile {
                    name: "a".into(),
                    destination: "/opt/app/config/a.env".into(),
                    content: "A=1\n".into(),
                    mode: None,
                    owner: None,
                },
                ConfigFile {
                    name: "b".into(),
                    destination: "/etc/app/b's.conf".into(),
                    content: "B=1\n".into(),
                    mode: None,
                    owner: None,
                },
            ],
            prechecks: vec![],
            health: vec![],
            smoke: vec![],
            hooks: vec![],
        }
    }

    fn context(root: &str, version: &str) -> HostContext {
        HostContext {
            host: "h".into(),
            host_index: 0,
            host_root: root.into(),
            environment: "e".into(),
            deployment: "d".into(),
            version: version.into(),
            apply_id: "id".into(),
            sudo: false,
        }
    }

    fn sh(script: &str) {
        let status = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(script)
            .status()
            .unwrap();
        assert!(status.success(), "{script}");
    }

    #[test]
    fn a_snapshot_is_named_by_its_release_pair() {
        assert_eq!(snapshot_name("1.0", Some("ab12")), "1.0+ab12");
        assert_eq!(snapshot_name("1.0", None), "1.0");
    }

    #[test]
    fn scripts_quote_every_path() {
        let text = save(&spec(), &context("/", "1.0"), "1.0", None).script;
        assert!(
            text.contains("cp -p '/etc/app/b'\\''s.conf' \"$snapshot.tmp/2\""),
            "{text}"
        );
        assert!(
            text.contains("snapshot=/opt/app/.slipway/config/1.0"),
            "{text}"
        );
    }

    #[test]
    fn restore_brings_back_the_files_of_a_saved_version() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().display().to_string();
        let vm = spec();
        let write = |content: &str| {
            for file in &vm.config_files {
                let path = dir.path().join(file.destination.trim_start_matches('/'));
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(path, content).unwrap();
            }
        };
        write("v1\n");
        sh(&save(&vm, &context(&root, "1"), "1", None).script);
        write("v2\n");
        sh(&save(&vm, &context(&root, "2"), "2", None).script);
        sh(&restore(&vm, &context(&root, "2"), "1").script);
        for file in &vm.config_files {
            let path = dir.path().join(file.destination.trim_start_matches('/'));
            assert_eq!(std::fs::read_to_string(path).unwrap(), "v1\n");
        }
        // A version without a snapshot leaves files alone.
        sh(&restore(&vm, &context(&root, "2"), "0.9").script);
    }

    #[test]
    fn the_systemd_unit_of_a_pair_is_saved_restored_and_compared() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().display().to_string();
        let unit = SystemdUnit {
            name: "app $(touch PWNED).service".into(),
            exec_start: "/bin/true".into(),
            exec_stop: None,
            user: None,
            environment: Default::default(),
            restart: None,
            after: vec![],
        };
        let vm = VmSpec {
            systemd_unit: Some(unit.clone()),
            ..spec()
        };
        for file in &vm.config_files {
            let path = dir.path().join(file.destination.trim_start_matches('/'));
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, "v1\n").unwrap();
        }
        let unit_file = dir.path().join("etc/systemd/system").join(&unit.name);
        std::fs::create_dir_all(unit_file.parent().unwrap()).unwrap();
        let ctx = context(&root, "1");
        let v1 = "[Service]\nExecStart=/bin/true '$(x)'\n";
        sh(&save(&vm, &ctx, "1+d", Some(v1)).script);
        let seen = || {
            let output = std::process::Command::new("/bin/sh")
                .arg("-c")
                .arg(compare(&vm, &ctx, "1+d").script)
                .output()
                .unwrap();
            ConfigSeen::parse(&String::from_utf8_lossy(&output.stdout))
        };

        // The next release pair came with another unit.
        std::fs::write(&unit_file, "[Service]\nExecStart=/bin/false\n").unwrap();
        assert_eq!(
            seen(),
            Some(ConfigSeen::Differs),
            "the unit is part of the pair"
        );
        for _ in 0..2 {
            sh(&restore_systemd_unit(&vm, &unit, &ctx, "1+d", false).script);
            assert_eq!(std::fs::read_to_string(&unit_file).unwrap(), v1);
            assert_eq!(seen(), Some(ConfigSeen::Same));
        }

        // A snapshot saved without a unit (before units were saved) leaves
        // the unit as it is, and says so.
        sh(&save(&vm, &ctx, "0.9", None).script);
        std::fs::write(&unit_file, "by hand\n").unwrap();
        let output = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(restore_systemd_unit(&vm, &unit, &ctx, "0.9", false).script)
            .output()
            .unwrap();
        assert!(output.status.success());
        assert!(
            String::from_utf8_lossy(&output.stdout).contains("no saved systemd unit for 0.9"),
            "{output:?}"
        );
        assert_eq!(std::fs::read_to_string(&unit_file).unwrap(), "by hand\n");
        assert!(!dir.path().join("PWNED").exists());
        assert!(!std::path::Path::new("PWNED").exists());
    }

    #[test]
    fn compare_says_whether_the_files_are_the_snapshots() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().display().to_string();
        let vm = spec();
        let paths: Vec<std::path::PathBuf> = vm
            .config_files
            .iter()
            .map(|f| dir.path().join(f.destination.trim_start_matches('/')))
            .collect();
        for path in &paths {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, "v1\n").unwrap();
        }
        let ctx = context(&root, "1");
        sh(&save(&vm, &ctx, "1+d", None).script);
        let seen = |name: &str| {
            let output = std::process::Command::new("/bin/sh")
                .arg("-c")
                .arg(compare(&vm, &ctx, name).script)
                .output()
                .unwrap();
            assert!(output.status.success());
            ConfigSeen::parse(&String::from_utf8_lossy(&output.stdout))
        };
        assert_eq!(seen("1+d"), Some(ConfigSeen::Same));
        assert_eq!(seen("0.9+d"), Some(ConfigSeen::Unknown));
        std::fs::write(&paths[1], "v1\n# by hand\n").unwrap();
        assert_eq!(seen("1+d"), Some(ConfigSeen::Differs));
        std::fs::remove_file(&paths[1]).unwrap();
        assert_eq!(seen("1+d"), Some(ConfigSeen::Differs));
    }
}
