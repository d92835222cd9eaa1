//! An artifact repository on loopback: `server.py` beside this file serving
//! the files of a directory over https with a certificate of a private CA
//! ([`crate::tls::Pki`]), behind a bearer token, with ETags, a redirect and a
//! truncating path (see `server.py`). Every request is logged, so a test can
//! count downloads. Dropping the [`ArtifactRepo`] kills the server.

use std::path::PathBuf;
use std::process::Child;

use crate::tls::Pki;

const SERVER: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/it/artifact_repo/server.py"
);

/// The token every request must carry (`Authorization: Bearer TOKEN`).
pub const TOKEN: &str = "repo-token-3f9a1c";

pub struct ArtifactRepo {
    pub port: u16,
    /// Where it listens: 127.0.0.1, or an address the test hosts reach.
    address: String,
    dir: tempfile::TempDir,
    child: Child,
}

impl ArtifactRepo {
    /// Serve an empty repository with `pki`'s server certificate, behind
    /// [`TOKEN`].
    pub fn start(pki: &Pki) -> ArtifactRepo {
        ArtifactRepo::serve(pki, Some(TOKEN), "127.0.0.1")
    }

    /// Serve an empty repository anyone may read (no token).
    pub fn start_open(pki: &Pki) -> ArtifactRepo {
        ArtifactRepo::serve(pki, None, "127.0.0.1")
    }

    /// [`ArtifactRepo::start_open`], listening on `address` (one of this
    /// machine's, e.g. `SshHosts::shared_address`, which `pki`'s certificate
    /// names: see `Pki::make_for`).
    pub fn start_open_on(pki: &Pki, address: &str) -> ArtifactRepo {
        ArtifactRepo::serve(pki, None, address)
    }

    fn serve(pki: &Pki, token: Option<&str>, address: &str) -> ArtifactRepo {
        let dir = tempfile::Builder::new()
            .prefix("artifact-repo-")
            .tempdir()
            .expect("temporary directory");
        std::fs::create_dir_all(dir.path().join("files")).unwrap();
        let (server_pem, server_key) = (pki.path("server.pem"), pki.path("server.key"));
        let (files, log) = (dir.path().join("files"), dir.path().join("requests.log"));
        let bind = format!("--bind={address}");
        let mut args = vec![
            std::ffi::OsStr::new(&bind),
            server_pem.as_os_str(),
            server_key.as_os_str(),
            files.as_os_str(),
            log.as_os_str(),
        ];
        args.extend(token.map(std::ffi::OsStr::new));
        let (child, port) = crate::support::spawn_python_server(SERVER, &args);
        ArtifactRepo {
            port,
            address: address.to_string(),
            dir,
            child,
        }
    }

    /// Put `bytes` in the repository as `name` (replacing what was there:
    /// a moved tag).
    pub fn publish(&self, name: &str, bytes: &[u8]) {
        let path = self.dir.path().join("files").join(name);
        let partial = path.with_extension("partial");
        std::fs::write(&partial, bytes).unwrap();
        std::fs::rename(partial, path).unwrap();
    }

    /// `https://ADDRESS:PORT/KIND/NAME` (KIND: files, redirect, truncated,
    /// slow).
    pub fn url(&self, kind: &str, name: &str) -> String {
        format!("https://{}:{}/{kind}/{name}", self.address, self.port)
    }

    /// Every request so far, as "METHOD PATH STATUS".
    pub fn requests(&self) -> Vec<String> {
        std::fs::read_to_string(self.log_path())
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// How many requests got a whole file (status 200 on /files/ or /truncated/).
    pub fn downloads(&self) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.ends_with(" 200"))
            .count()
    }

    /// The whole downloads (status 200) made with a User-Agent starting with
    /// `agent` (`curl/`: a host's own download).
    pub fn downloads_by(&self, agent: &str) -> usize {
        std::fs::read_to_string(self.dir.path().join("requests.log.agents"))
            .unwrap_or_default()
            .lines()
            .filter(|line| {
                let mut fields = line.splitn(4, ' ');
                let status = fields.nth(2);
                status == Some("200") && fields.next().is_some_and(|a| a.starts_with(agent))
            })
            .count()
    }

    /// The whole downloads (status 200) of `/files/NAME` made with a
    /// User-Agent starting with `agent`.
    pub fn downloads_of_by(&self, name: &str, agent: &str) -> usize {
        let request = format!("GET /files/{name} 200 {agent}");
        std::fs::read_to_string(self.dir.path().join("requests.log.agents"))
            .unwrap_or_default()
            .lines()
            .filter(|line| line.starts_with(&request))
            .count()
    }

    /// While `slow` holds, `/slow/NAME` sends hosts (curl) the body at
    /// 64 KiB/s, and logs a host that goes away before the end with 499.
    pub fn set_slow(&self, slow: bool) {
        let marker = self.dir.path().join("slow");
        if slow {
            std::fs::write(marker, "").unwrap();
        } else {
            let _ = std::fs::remove_file(marker);
        }
    }

    /// The directory the repository serves `/files/NAME` from.
    pub fn files_dir(&self) -> PathBuf {
        self.dir.path().join("files")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("requests.log")
    }
}

impl Drop for ArtifactRepo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
