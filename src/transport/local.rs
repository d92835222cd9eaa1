//! The local transport: each "host" is a directory on this machine and every
//! step runs here with `/bin/sh -c`. Used by the quickstart and by tests that
//! need real processes without SSH.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use super::{CommandOutput, TransportError};

pub struct LocalTransport {
    host: String,
    root: PathBuf,
}

impl LocalTransport {
    /// A host whose files live under `root` (created when missing).
    pub fn new(host: &str, root: PathBuf) -> Result<LocalTransport, TransportError> {
        std::fs::create_dir_all(&root).map_err(|e| TransportError::Connect {
            host: host.to_string(),
            detail: format!("cannot create its directory {}: {e}", root.display()),
        })?;
        let root = root.canonicalize().map_err(|e| TransportError::Connect {
            host: host.to_string(),
            detail: format!("cannot resolve {}: {e}", root.display()),
        })?;
        Ok(LocalTransport {
            host: host.to_string(),
            root,
        })
    }

    /// A host whose files live under `base/root/host`, which must stay inside
    /// `base` (the configuration's directory) once links are resolved:
    /// validation checked the names lexically, this catches a link planted
    /// on the way (`root` or the host's directory pointing elsewhere).
    pub fn confined(host: &str, base: &Path, root: &str) -> Result<LocalTransport, TransportError> {
        let error = |detail: String| TransportError::Connect {
            host: host.to_string(),
            detail,
        };
        let base = base
            .canonicalize()
            .map_err(|e| error(format!("cannot resolve {}: {e}", base.display())))?;
        // Every part of ROOT/HOST that exists already must resolve inside the
        // configuration's directory; only then are the missing parts created.
        let mut path = base.clone();
        let parts = Path::new(root).join(host);
        let parts = parts
            .components()
            .filter(|c| !matches!(c, std::path::Component::CurDir));
        for part in parts {
            path.push(part);
            match path.canonicalize() {
                Ok(real) if real.starts_with(&base) && real != base => {}
                Ok(real) => {
                    return Err(error(format!(
                        "{} resolves to {}, outside the configuration's directory {} (a symbolic link?)",
                        path.display(),
                        real.display(),
                        base.display()
                    )))
                }
                Err(_) if std::fs::symlink_metadata(&path).is_ok() => {
                    return Err(error(format!(
                        "{} is a link to nothing: remove it",
                        path.display()
                    )))
                }
                Err(_) => break,
            }
        }
        LocalTransport::new(host, base.join(root).join(host))
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub async fn run(&self, script: &str) -> Result<CommandOutput, TransportError> {
        use tokio::io::AsyncWriteExt as _;
        let failed = |e: std::io::Error| TransportError::Run {
            host: self.host.clone(),
            detail: e.to_string(),
            stderr: String::new(),
        };
        let mut child = tokio::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(super::RUN_SCRIPT_FROM_STDIN)
            .current_dir(&self.root)
            .env("SLIPWAY_HOST_ROOT", &self.root)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            // Its own process group: a Ctrl-C at the terminal reaches slipway,
            // which lets the step finish, and not the step itself.
            .process_group(0)
            .spawn()
            .map_err(failed)?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(script.as_bytes()).await.map_err(failed)?;
        }
        let output = child.wait_with_output().await.map_err(failed)?;
        Ok(CommandOutput {
            status: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        })
    }

    pub async fn upload(&self, local: &Path, remote: &str) -> Result<(), TransportError> {
        let error = |detail: String| TransportError::Upload {
            host: self.host.clone(),
            local: local.display().to_string(),
            remote: remote.to_string(),
            detail,
        };
        let target = PathBuf::from(remote);
        if let Some(parent) = target.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| error(e.to_string()))?;
        }
        // A new file next to the target (never an existing file or link), then
        // renamed over it: a link at the target is replaced, not followed.
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let partial = target.with_file_name(format!(".{name}.{}.partial", uuid::Uuid::new_v4()));
        let copy = async {
            let mut from = tokio::fs::File::open(local).await?;
            let mut to = tokio::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&partial)
                .await?;
            tokio::io::copy(&mut from, &mut to).await?;
            to.sync_all().await
        };
        if let Err(e) = copy.await {
            let _ = tokio::fs::remove_file(&partial).await;
            return Err(error(e.to_string()));
        }
        tokio::fs::rename(&partial, &target)
            .await
            .map_err(|e| error(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn scripts_never_show_on_a_command_line() {
        let dir = tempfile::tempdir().unwrap();
        let transport = LocalTransport::new("h", dir.path().join("h")).unwrap();
        let secret = "s3cr3t-value-in-a-config-file";
        let output = transport
            .run(&format!(
                "content='{secret}'\nps -eo args\nread line || echo stdin-is-empty"
            ))
            .await
            .unwrap();
        assert!(output.success(), "{output:?}");
        assert!(
            !output.stdout.contains(secret),
            "the script leaked into a process list:\n{}",
            output.stdout
        );
        assert!(
            output.stdout.contains("stdin-is-empty"),
            "commands see an empty stdin: {}",
            output.stdout
        );
    }
}
