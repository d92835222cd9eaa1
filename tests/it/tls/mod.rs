//! A private certificate authority and an https server on loopback, for the
//! TLS tests.
//!
//! [`Pki::make`] runs the `openssl` command line in a temporary directory:
//! a CA (`ca.pem`, EC P-256, `CA:TRUE`) and a server certificate for
//! `127.0.0.1` (an IP SAN) and `localhost` signed by it (`server.pem`,
//! `server.key`). Nothing is kept: every test run makes its own, valid for a
//! day.
//!
//! [`HttpsServer::start`] runs `server.py` beside this file with that
//! certificate on a free `127.0.0.1` port: it records POST bodies (a webhook
//! receiver), answers `GET /health`, and with an upstream relays every other
//! GET to it (a TLS front for the plain-HTTP Prometheus of
//! `tests/it/prometheus`). Dropping it kills the process.
//!
//! Without `openssl`, [`Pki::make`] fails the test naming it; it returns
//! `None` (the test skips) only under `SLIPWAY_TEST_ALLOW_SKIP` (see
//! [`crate::support::missing_component`]). Nothing here leaves loopback.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

const SERVER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/tls/server.py");

/// A private CA and a server certificate it signed.
pub struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    /// Make the CA and the server certificate; `None` (after a note) only
    /// when `openssl` is missing and skipping is allowed.
    pub fn make() -> Option<Pki> {
        Pki::make_for(&[])
    }

    /// [`Pki::make`], with a server certificate valid for the IP addresses
    /// `addresses` too (besides 127.0.0.1 and `localhost`).
    pub fn make_for(addresses: &[&str]) -> Option<Pki> {
        if Command::new("openssl")
            .arg("version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_err()
        {
            crate::support::missing_component(
                "the openssl command line is not installed",
                "apt-get install openssl",
            );
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("pki-")
            .tempdir()
            .expect("temporary directory");
        let pki = Pki { dir };
        pki.openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "1",
            "-subj",
            "/CN=slipway test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        pki.openssl(&[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ]);
        let more: String = addresses.iter().map(|a| format!(",IP:{a}")).collect();
        std::fs::write(
            pki.path("server.ext"),
            format!(
                "basicConstraints=critical,CA:FALSE\n\
                 keyUsage=critical,digitalSignature\n\
                 extendedKeyUsage=serverAuth\n\
                 subjectAltName=IP:127.0.0.1,DNS:localhost{more}\n"
            ),
        )
        .expect("server.ext");
        pki.openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-set_serial",
            "2",
            "-days",
            "1",
            "-sha256",
            "-extfile",
            "server.ext",
            "-out",
            "server.pem",
        ]);
        Some(pki)
    }

    fn openssl(&self, args: &[&str]) {
        let output = Command::new("openssl")
            .args(args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .output()
            .expect("openssl runs");
        assert!(
            output.status.success(),
            "openssl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The CA's certificate (PEM): what a client must trust.
    pub fn ca_pem(&self) -> PathBuf {
        self.path("ca.pem")
    }
}

/// `server.py` serving https with the server certificate of a [`Pki`].
pub struct HttpsServer {
    pub port: u16,
    received: PathBuf,
    child: Child,
}

impl HttpsServer {
    /// Serve on a free port; with `upstream` (`http://...`), relay GETs
    /// other than `/health` to it.
    pub fn start(pki: &Pki, upstream: Option<&str>) -> HttpsServer {
        let received = pki.path(&format!("received-{}.jsonl", uuid_like()));
        let server_pem = pki.path("server.pem");
        let server_key = pki.path("server.key");
        let mut args = vec![
            server_pem.as_os_str(),
            server_key.as_os_str(),
            received.as_os_str(),
        ];
        args.extend(upstream.map(std::ffi::OsStr::new));
        let (child, port) = crate::support::spawn_python_server(SERVER, &args);
        HttpsServer {
            port,
            received,
            child,
        }
    }

    /// `https://127.0.0.1:PORT` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }

    /// Every POST body received so far, in order.
    pub fn received(&self) -> Vec<String> {
        read_lines(&self.received)
    }
}

impl Drop for HttpsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON string per line"))
        .collect()
}

/// A name unique within this process.
fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    )
}
