//! A watchdog for the SSH master connections of one slipway process, so
//! that no `ssh -M` process outlives slipway, however slipway ends (including
//! `kill -9`, a crash or a second Ctrl-C).
//!
//! The `openssh` crate starts each master with `ssh -M -f` and
//! `ControlPersist=yes`: `-f` puts it in a session of its own, so it survives
//! slipway unless slipway stops it ([`super::ssh::SshTransport::close`]),
//! which a killed process never does. A shorter `ControlPersist` would not
//! do: a master idle between two steps (a bake, a long health check on
//! another host) would end under a running apply.
//!
//! Instead every master of a process lives in one directory of that process
//! ([`control_dir`]), and one watchdog, started with the directory and so
//! before the first master, watches it: a small `sh` loop in a process group
//! of its own (a Ctrl-C at the terminal does not reach it) that checks once a
//! second whether slipway's process still exists. When slipway is gone it
//! asks every master in the directory to exit (`ssh -S SOCKET -O exit`) and
//! removes its temporary directory (socket and log), again each second for a
//! while, so that a master that was still logging in when slipway died (its
//! socket appears later) ends too; then it removes the directory. It waits
//! only for masters whose `ssh` still runs (seen with `ps`): the directory of
//! a login that failed (a host that was down) is removed at once, not waited
//! for until the grace time ends. A watchdog
//! started per master, once its login returned, missed exactly that master:
//! a `kill -9` during a login left it running for good.
//!
//! It runs nothing on hosts and knows nothing of deployments.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

/// How long after slipway's end the watchdog keeps looking for masters that
/// were still logging in (a login gives up long before: `connect_timeout`).
const GRACE_SECONDS: u32 = 60;

/// The watchdog loop: `$1` slipway's pid, `$2` the directory of its masters
/// (each in a `.ssh-connection*` directory of the `openssh` crate, socket
/// `master`), `$3` how long to keep looking once slipway is gone. Run in the
/// background by an `sh` that exits at once, so that the loop is not
/// slipway's child (no zombie while slipway runs) and is reparented when
/// slipway dies.
const SCRIPT: &str = r#"(
  trap '' INT HUP
  while kill -0 "$1" 2>/dev/null; do
    [ -d "$2" ] || exit 0
    sleep 1
  done
  waited=0
  while :; do
    for socket in "$2"/.ssh-connection*/master; do
      [ -S "$socket" ] || continue
      if command -v timeout >/dev/null 2>&1; then
        timeout 10 ssh -S "$socket" -O exit slipway-watchdog >/dev/null 2>&1
      else
        ssh -S "$socket" -O exit slipway-watchdog >/dev/null 2>&1
      fi
      rm -rf -- "${socket%/master}"
    done
    left=
    running=$(ps -A -ww -o args= 2>/dev/null) || running=
    for dir in "$2"/.ssh-connection*; do
      [ -e "$dir" ] || continue
      case $running in
        "") ;;
        *"$dir/"*) ;;
        *)
          rm -rf -- "$dir"
          continue
          ;;
      esac
      left=1
    done
    [ -n "$left" ] && [ "$waited" -lt "$3" ] || break
    sleep 1
    waited=$((waited + 1))
  done
  rm -rf -- "$2"
) </dev/null >/dev/null 2>&1 &"#;

/// The directory this process's SSH masters go in, under `base` (created
/// with its watchdog on the first call for `base`).
pub fn control_dir(base: &Path) -> std::io::Result<PathBuf> {
    static DIRS: Mutex<Vec<(PathBuf, PathBuf)>> = Mutex::new(Vec::new());
    let mut dirs = DIRS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, dir)) = dirs.iter().find(|(b, _)| b == base) {
        return Ok(dir.clone());
    }
    std::fs::create_dir_all(base)?;
    // New, and readable by its owner only (the masters' sockets go in it).
    let dir = base.join(format!(
        "slipway-ssh-{}-{}",
        std::process::id(),
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    ));
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
    }
    watch(&dir, std::process::id());
    dirs.push((base.to_path_buf(), dir.clone()));
    Ok(dir)
}

/// Start the watchdog of `dir` for process `pid`. Best effort: a watchdog
/// that cannot start changes nothing for the apply.
fn watch(dir: &Path, pid: u32) {
    use std::os::unix::process::CommandExt;
    let _ = Command::new("/bin/sh")
        .arg("-c")
        .arg(SCRIPT)
        .arg("slipway-ssh-watchdog")
        .arg(pid.to_string())
        .arg(dir)
        .arg(GRACE_SECONDS.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .status();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Stand-ins for masters: sockets the watchdog watches (that never
    /// answer `-O exit`), one there from the start and one that appears only
    /// after the watched process ended (a master still logging in when
    /// slipway was killed: a process naming its directory runs), and the
    /// directory of a login that failed (no socket, no process). All, and
    /// the directory, are removed once the process is gone, well within the
    /// grace time.
    #[test]
    fn the_watchdog_removes_every_master_even_one_that_comes_late() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = control_dir(tmp.path()).unwrap();
        assert_eq!(control_dir(tmp.path()).unwrap(), dir, "one per process");
        let early = dir.join(".ssh-connection-early");
        let late = dir.join(".ssh-connection-late");
        std::fs::create_dir(&early).unwrap();
        std::fs::create_dir(&late).unwrap();
        // The socket file stays after the listener is closed: nobody answers.
        drop(std::os::unix::net::UnixListener::bind(early.join("master")).unwrap());

        // A process that ends soon stands for slipway.
        let watched = tmp.path().join("watched");
        std::fs::create_dir(&watched).unwrap();
        let mut parent = Command::new("sleep").arg("1").spawn().unwrap();
        watch(&watched, parent.id());
        std::fs::rename(&early, watched.join(".ssh-connection-early")).unwrap();
        std::fs::rename(&late, watched.join(".ssh-connection-late")).unwrap();
        std::fs::create_dir(watched.join(".ssh-connection-failed")).unwrap();
        std::fs::write(watched.join(".ssh-connection-failed/log"), "timed out\n").unwrap();
        let mut logging_in = Command::new("/bin/sh")
            .args(["-c", "sleep 6"])
            .arg(watched.join(".ssh-connection-late/log"))
            .spawn()
            .unwrap();
        assert!(watched.exists(), "the watched process still runs");
        parent.wait().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(2500));
        assert!(
            watched.exists(),
            "the directory stays while a master may still come"
        );
        drop(
            std::os::unix::net::UnixListener::bind(watched.join(".ssh-connection-late/master"))
                .unwrap(),
        );
        assert!(
            !watched.join(".ssh-connection-failed").exists(),
            "a failed login is not waited for"
        );
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while watched.exists() {
            assert!(
                std::time::Instant::now() < deadline,
                "the watchdog did not remove {}",
                watched.display()
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let _ = logging_in.kill();
        let _ = logging_in.wait();
    }
}
