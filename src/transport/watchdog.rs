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
//! asks every master in the directory to exit (`ssh -S SOCKET -O exit`),
//! ends every process whose arguments name one of its connection
//! directories, and removes them, again each second until three seconds in
//! a row find nothing; then it removes the directory. So a master that was
//! still logging in when slipway died ends too, and so does an `ssh` that
//! slipway had forked but not yet started when it was killed (its directory
//! may already be gone: it is known by its arguments). A watchdog started
//! per master, once its login returned, missed a master still logging in;
//! one that waited for a login's socket missed an `ssh` that started after
//! it had looked.
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
/// `master`), `$3` how long at most to keep looking once slipway is gone.
/// Once slipway is gone, each second: every master with a socket is asked
/// to exit, every process whose arguments name one of the connection
/// directories (a login in progress, a master that lost its socket, an
/// `ssh` that started after slipway died) is ended, and the connection
/// directories are removed; after three quiet seconds in a row the
/// directory goes too. Without `ps` it waits for sockets instead. Run in
/// the background by an `sh` that exits at once, so that the loop is not
/// slipway's child (no zombie while slipway runs) and is reparented when
/// slipway dies.
const SCRIPT: &str = r#"(
  trap '' INT HUP
  while kill -0 "$1" 2>/dev/null; do
    [ -d "$2" ] || exit 0
    sleep 1
  done
  waited=0
  quiet=0
  while [ "$waited" -lt "$3" ]; do
    found=
    for socket in "$2"/.ssh-connection*/master; do
      [ -S "$socket" ] || continue
      found=1
      if command -v timeout >/dev/null 2>&1; then
        timeout 10 ssh -S "$socket" -O exit slipway-watchdog >/dev/null 2>&1
      else
        ssh -S "$socket" -O exit slipway-watchdog >/dev/null 2>&1
      fi
    done
    if running=$(ps -A -ww -o pid=,args= 2>/dev/null) && [ -n "$running" ]; then
      ours=$(printf '%s\n' "$running" | while read -r pid args; do
        case $args in *"$2/.ssh-connection"*/*) echo "$pid" ;; esac
      done)
      for pid in $ours; do
        found=1
        kill "$pid" 2>/dev/null
      done
      rm -rf -- "$2"/.ssh-connection*
    else
      for dir in "$2"/.ssh-connection*; do
        [ -e "$dir" ] && found=1
      done
    fi
    if [ -n "$found" ]; then quiet=0; else quiet=$((quiet + 1)); fi
    [ "$quiet" -lt 3 ] || break
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

    /// Stand-ins for masters: a socket that never answers `-O exit`, a
    /// login in progress when the watched process ends (a process naming its
    /// connection directory), the directory of a login that failed (no
    /// process), and an `ssh` that starts only after the watchdog first
    /// looked, its directory already gone (slipway killed between forking
    /// it and its start). All end, and the directory goes, well within the
    /// grace time.
    #[test]
    fn the_watchdog_ends_every_master_even_one_that_starts_late() {
        use std::time::{Duration, Instant};
        let tmp = tempfile::tempdir().unwrap();
        let dir = control_dir(tmp.path()).unwrap();
        assert_eq!(control_dir(tmp.path()).unwrap(), dir, "one per process");

        // A process that ends soon stands for slipway.
        let watched = tmp.path().join("watched");
        std::fs::create_dir(&watched).unwrap();
        let mut parent = Command::new("sleep").arg("1").spawn().unwrap();
        watch(&watched, parent.id());
        let stale = watched.join(".ssh-connection-stale");
        std::fs::create_dir(&stale).unwrap();
        // The socket file stays after the listener is closed: nobody answers.
        drop(std::os::unix::net::UnixListener::bind(stale.join("master")).unwrap());
        std::fs::create_dir(watched.join(".ssh-connection-login")).unwrap();
        std::fs::create_dir(watched.join(".ssh-connection-failed")).unwrap();
        std::fs::write(watched.join(".ssh-connection-failed/log"), "timed out\n").unwrap();
        let stand_in = |connection: &str| {
            Command::new("/bin/sh")
                .args(["-c", "sleep 30"])
                .arg(watched.join(connection).join("master"))
                .spawn()
                .unwrap()
        };
        let mut logging_in = stand_in(".ssh-connection-login");
        assert!(watched.exists(), "the watched process still runs");
        parent.wait().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while watched.join(".ssh-connection-login").exists() {
            assert!(Instant::now() < deadline, "the watchdog never looked");
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut late = stand_in(".ssh-connection-late");
        for (name, process) in [("the login", &mut logging_in), ("the late ssh", &mut late)] {
            while process.try_wait().unwrap().is_none() {
                assert!(Instant::now() < deadline, "{name} was not ended");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        while watched.exists() {
            assert!(
                Instant::now() < deadline,
                "the watchdog did not remove {}",
                watched.display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
