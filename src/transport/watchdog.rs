//! A watchdog for each SSH master connection, so that no `ssh -M` process
//! outlives slipway, however slipway ends (including `kill -9`, a crash or a
//! second Ctrl-C).
//!
//! The `openssh` crate starts the master with `ssh -M -f` and
//! `ControlPersist=yes`: `-f` puts it in a session of its own, so it survives
//! slipway unless slipway stops it ([`super::ssh::SshTransport::close`]),
//! which a killed process never does. A shorter `ControlPersist` would not
//! do: a master idle between two steps (a bake, a long health check on
//! another host) would end under a running apply. Instead [`watch`] starts,
//! beside each master, a small `sh` loop in a process group of its own
//! (a Ctrl-C at the terminal does not reach it) that checks once a second
//! whether slipway's process still exists. When slipway is gone it asks the
//! master to exit (`ssh -S SOCKET -O exit`) and removes the master's
//! temporary directory (socket and log). When the master's socket goes away
//! first (slipway closed the connection), the loop ends at once.
//!
//! It runs nothing on hosts and knows nothing of deployments.

use std::path::Path;
use std::process::{Command, Stdio};

/// The watchdog loop: `$1` slipway's pid, `$2` the master's control socket,
/// `$3` the master's temporary directory. Run in the background by an `sh`
/// that exits at once, so that the loop is not slipway's child (no zombie
/// while slipway runs) and is reparented when slipway dies.
const SCRIPT: &str = r#"(
  trap '' INT HUP
  while kill -0 "$1" 2>/dev/null; do
    [ -S "$2" ] || exit 0
    sleep 1
  done
  if command -v timeout >/dev/null 2>&1; then
    timeout 10 ssh -S "$2" -O exit slipway-watchdog >/dev/null 2>&1
  else
    ssh -S "$2" -O exit slipway-watchdog >/dev/null 2>&1
  fi
  rm -rf -- "$3"
) </dev/null >/dev/null 2>&1 &"#;

/// Start the watchdog of the master whose control socket is `socket` (in a
/// temporary directory of its own, which the watchdog removes). Best effort:
/// a watchdog that cannot start changes nothing for the apply.
pub fn watch(socket: &Path) {
    let Some(dir) = socket.parent() else {
        return;
    };
    use std::os::unix::process::CommandExt;
    let _ = Command::new("/bin/sh")
        .arg("-c")
        .arg(SCRIPT)
        .arg("slipway-ssh-watchdog")
        .arg(std::process::id().to_string())
        .arg(socket)
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .status();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in for a master: a socket the watchdog watches (that never
    /// answers `-O exit`) and a directory it removes once the process it
    /// watches is gone.
    #[test]
    fn the_watchdog_removes_the_directory_once_its_process_is_gone() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join(".ssh-connection-test");
        std::fs::create_dir(&dir).unwrap();
        let socket = dir.join("master");
        // The socket file stays after the listener is closed: nobody answers.
        drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
        // A process that ends soon stands for slipway.
        let mut parent = Command::new("sleep").arg("1").spawn().unwrap();
        let status = Command::new("/bin/sh")
            .arg("-c")
            .arg(SCRIPT)
            .arg("slipway-ssh-watchdog")
            .arg(parent.id().to_string())
            .arg(&socket)
            .arg(&dir)
            .status()
            .unwrap();
        assert!(status.success());
        assert!(dir.exists(), "the watched process still runs");
        parent.wait().unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while dir.exists() {
            assert!(
                std::time::Instant::now() < deadline,
                "the watchdog did not remove {}",
                dir.display()
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}
