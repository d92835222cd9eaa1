//! A real OCI registry on loopback: Debian's `docker-registry` (the CNCF
//! distribution registry) serving https with a certificate of a private CA
//! ([`crate::tls::Pki`]) behind htpasswd basic auth, and images pushed into
//! it with `skopeo` from an OCI image layout this harness writes itself (no
//! container daemon, no internet). Dropping the [`Registry`] kills it.
//!
//! Without `docker-registry` or `skopeo`, [`Registry::start`] fails the test
//! naming the install command; it returns `None` (the test skips) only under
//! `SLIPWAY_TEST_ALLOW_SKIP` (see [`crate::support::missing_component`]).

use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::tls::Pki;

pub const USER: &str = "deployer";
pub const PASSWORD: &str = "registry-pw-81c2";

pub struct Registry {
    pub port: u16,
    dir: tempfile::TempDir,
    cert_dir: PathBuf,
    child: Child,
}

impl Registry {
    pub fn start(pki: &Pki) -> Option<Registry> {
        for tool in ["docker-registry", "skopeo"] {
            if Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .stdout(Stdio::null())
                .status()
                .map(|s| !s.success())
                .unwrap_or(true)
            {
                crate::support::missing_component(
                    &format!("{tool} is not installed"),
                    "apt-get install docker-registry skopeo",
                );
                return None;
            }
        }
        let dir = tempfile::Builder::new()
            .prefix("registry-")
            .tempdir()
            .unwrap();
        let htpasswd = dir.path().join("htpasswd");
        let hash = Command::new("python3")
            .args([
                "-c",
                "import crypt, sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH)))",
                PASSWORD,
            ])
            .env("PYTHONWARNINGS", "ignore")
            .output()
            .expect("python3 makes the bcrypt hash");
        assert!(hash.status.success(), "{hash:?}");
        std::fs::write(
            &htpasswd,
            format!("{USER}:{}\n", String::from_utf8_lossy(&hash.stdout).trim()),
        )
        .unwrap();
        let port = crate::support::free_port_block(1);
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {data}\n\
                 http:\n  addr: 127.0.0.1:{port}\n  tls:\n    certificate: {cert}\n    key: {key}\n\
                 auth:\n  htpasswd:\n    realm: slipway-test\n    path: {htpasswd}\n",
                data = dir.path().join("data").display(),
                cert = pki.path("server.pem").display(),
                key = pki.path("server.key").display(),
                htpasswd = htpasswd.display(),
            ),
        )
        .unwrap();
        // skopeo trusts the CA of a directory of *.crt files.
        let cert_dir = dir.path().join("certs");
        std::fs::create_dir_all(&cert_dir).unwrap();
        std::fs::copy(pki.ca_pem(), cert_dir.join("ca.crt")).unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("docker-registry starts");
        let registry = Registry {
            port,
            dir,
            cert_dir,
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "the registry did not listen: {}",
                registry.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(registry)
    }

    /// `127.0.0.1:PORT`
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Push an image made of `layers` (each a list of tar entries, see
    /// [`Entry`]) as `repository:tag`; returns its manifest digest.
    pub fn push(&self, repository: &str, tag: &str, layers: &[Vec<Entry>]) -> String {
        let layout = self.dir.path().join(format!("layout-{repository}-{tag}"));
        let manifest_digest = write_layout(&layout, tag, layers);
        let output = Command::new("skopeo")
            .args(["--insecure-policy", "copy", "--quiet", "--dest-cert-dir"])
            .arg(&self.cert_dir)
            .args(["--dest-creds", &format!("{USER}:{PASSWORD}")])
            .arg(format!("oci:{}:{tag}", layout.display()))
            .arg(format!("docker://{}/{repository}:{tag}", self.host()))
            .stdin(Stdio::null())
            .output()
            .expect("skopeo runs");
        assert!(
            output.status.success(),
            "skopeo copy: {}\nregistry log: {}",
            String::from_utf8_lossy(&output.stderr),
            self.log()
        );
        manifest_digest
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One entry of a layer: a file with content, or a whiteout (`.wh.NAME`).
pub enum Entry {
    File(String, Vec<u8>),
    Executable(String, Vec<u8>),
}

impl Entry {
    pub fn file(path: &str, content: &str) -> Entry {
        Entry::File(path.to_string(), content.as_bytes().to_vec())
    }

    /// Every file under `dir`, at the same relative paths (executables kept so).
    pub fn tree(dir: &Path) -> Vec<Entry> {
        let mut entries = Vec::new();
        collect(dir, dir, &mut entries);
        entries
    }
}

fn collect(root: &Path, dir: &Path, entries: &mut Vec<Entry>) {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    for path in paths {
        if path.is_dir() {
            collect(root, &path, entries);
            continue;
        }
        let relative = path.strip_prefix(root).unwrap().display().to_string();
        let content = std::fs::read(&path).unwrap();
        use std::os::unix::fs::PermissionsExt;
        let executable = std::fs::metadata(&path).unwrap().permissions().mode() & 0o111 != 0;
        entries.push(if executable {
            Entry::Executable(relative, content)
        } else {
            Entry::File(relative, content)
        });
    }
}

/// Write an OCI image layout with one image of `layers`, tagged `tag`;
/// returns the manifest digest.
fn write_layout(layout: &Path, tag: &str, layers: &[Vec<Entry>]) -> String {
    let blobs = layout.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let put = |bytes: &[u8]| -> (String, usize) {
        let hex = hex::encode(Sha256::digest(bytes));
        std::fs::write(blobs.join(&hex), bytes).unwrap();
        (format!("sha256:{hex}"), bytes.len())
    };
    let mut layer_descriptors = Vec::new();
    let mut diff_ids = Vec::new();
    for layer in layers {
        let mut builder = tar::Builder::new(Vec::new());
        for entry in layer {
            let (path, content, mode) = match entry {
                Entry::File(path, content) => (path, content, 0o644),
                Entry::Executable(path, content) => (path, content, 0o755),
            };
            let mut header = tar::Header::new_gnu();
            header.set_size(content.len() as u64);
            header.set_mode(mode);
            header.set_cksum();
            builder
                .append_data(&mut header, path, content.as_slice())
                .unwrap();
        }
        let tar_bytes = builder.into_inner().unwrap();
        diff_ids.push(format!(
            "sha256:{}",
            hex::encode(Sha256::digest(&tar_bytes))
        ));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&tar_bytes).unwrap();
        let (digest, size) = put(&gz.finish().unwrap());
        layer_descriptors.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": digest,
            "size": size,
        }));
    }
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {},
        "rootfs": { "type": "layers", "diff_ids": diff_ids },
    });
    let (config_digest, config_size) = put(config.to_string().as_bytes());
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": config_size,
        },
        "layers": layer_descriptors,
    });
    let (manifest_digest, manifest_size) = put(manifest.to_string().as_bytes());
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest,
            "size": manifest_size,
            "annotations": { "org.opencontainers.image.ref.name": tag },
        }],
    });
    std::fs::write(layout.join("index.json"), index.to_string()).unwrap();
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    manifest_digest
}
