//! The configuration language: from a directory of HCL files to a typed,
//! validated [`Config`].
//!
//! Stages: [`raw`] parses files keeping spans, [`check`] compares blocks with the
//! [`schema`], [`load`] evaluates expressions (functions in [`eval`]) and
//! validates. Everything is reported as diagnostics with file, line and column.
//! Nothing here reads state or touches the network: [`secrets`] says what a
//! `secret` block names, and the values read elsewhere come in as data.

pub mod arithmetic;
pub mod check;
pub mod choices;
pub mod confine;
pub mod cycles;
pub mod eval;
pub mod events;
pub mod functions;
pub mod inputs;
pub mod load;
pub mod model;
pub mod placeholders;
pub mod raw;
pub mod schema;
pub mod secret_digest;
pub mod secrets;
pub mod taint;
pub mod units;

pub use inputs::InputSources;
pub use load::{
    load, load_backend_only, load_sources, load_with_saved, load_with_secrets, Loaded, SavedInputs,
};
pub use model::*;
pub use secrets::{SecretSource, SecretSpec, SecretValues};

/// Why an SSH `vm_hosts` block's `identity_file` cannot be used — it does not
/// exist, is not a file, or cannot be read — or `None` when it can (or is not
/// set, or the transport is not SSH). A relative path is relative to `root`
/// (the configuration directory), `~/` is `$HOME`, as the SSH transport
/// reads it. Checked before anything connects: ssh would otherwise report a
/// missing key as a login every host refuses.
pub fn unusable_identity_file(hosts: &VmHosts, root: &std::path::Path) -> Option<String> {
    if hosts.transport != TransportKind::Ssh {
        return None;
    }
    let written = hosts.identity_file.as_deref()?;
    let path = match written.strip_prefix("~/") {
        Some(rest) => std::path::PathBuf::from(std::env::var_os("HOME")?).join(rest),
        None => root.join(written),
    };
    let shown = if path.as_os_str() == written {
        format!("identity_file {}", crate::encode::text::excerpt(written))
    } else {
        format!(
            "identity_file {} ({})",
            crate::encode::text::excerpt(written),
            crate::encode::text::short(&path.display().to_string())
        )
    };
    match std::fs::metadata(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Some(format!("{shown} does not exist"))
        }
        Err(e) => Some(format!("{shown} cannot be read: {e}")),
        Ok(meta) if !meta.is_file() => Some(format!("{shown} is not a file")),
        Ok(_) => match std::fs::File::open(&path) {
            Ok(_) => None,
            Err(e) => Some(format!("{shown} cannot be read: {e}")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unusable_identity_file_is_named_by_an_excerpt() {
        let written = format!("id{}", "m".repeat(1 << 20));
        let hosts: VmHosts = serde_json::from_value(serde_json::json!({
            "hosts": ["web-1"],
            "identity_file": written,
        }))
        .unwrap();
        let problem = unusable_identity_file(&hosts, std::path::Path::new("/nonexistent"))
            .expect("a missing key is a problem");
        assert!(problem.len() < 500, "{} bytes", problem.len());
        assert!(problem.starts_with("identity_file \"idmmm"), "{problem}");
    }
}
