//! OCI images as VM artifacts: `oci://REGISTRY/REPOSITORY:TAG` (or
//! `@sha256:DIGEST`) pulled without a container daemon and flattened into
//! the release directory's archive.
//!
//! The image's manifest is read through oci-client (the distribution
//! protocol, token auth, the platform of a multi-platform index: linux on
//! this machine's architecture); every layer blob is checked against its
//! digest as it is downloaded. The layers are applied bottom first into a
//! directory, honouring whiteouts (`.wh.NAME` removes NAME from the layers
//! below, `.wh..wh..opq` empties its directory of them), and the directory
//! is packed like a local one. So an image becomes an ordinary artifact
//! with a sha256: the cache, pinning, the transfer and the hosts' check are
//! the same as for any other source. The cache remembers which archive a
//! manifest digest flattened to, so an image is pulled once.
//!
//! Not here: running containers, image configs (entrypoint, env), zstd
//! layers, or pushing.

use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::Reference;

use super::cache::{Cache, SourceRecord};
use crate::config::Artifact;

/// What an image reference resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PulledImage {
    /// The image manifest's digest (`sha256:...`).
    pub manifest_digest: String,
    /// The sha256 of the flattened archive, in the cache.
    pub sha256: String,
}

/// Why an image cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    #[error("not an image reference ({0}); write oci://REGISTRY/REPOSITORY:TAG or oci://REGISTRY/REPOSITORY@sha256:DIGEST")]
    Reference(String),
    #[error("the registry: {0}")]
    Registry(String),
    #[error("the registry refused the credentials ({0}); set username and password in the artifact block")]
    Auth(String),
    #[error("layer {digest} is {media_type}; slipway flattens tar and tar+gzip layers")]
    LayerType { digest: String, media_type: String },
    #[error("layer {digest}: {problem}")]
    Layer { digest: String, problem: String },
    #[error("the runner's cache: {0}")]
    Cache(io::Error),
}

/// The reference inside `oci://...`.
pub fn parse_reference(source: &str) -> Result<Reference, OciError> {
    let text = source.strip_prefix("oci://").unwrap_or(source);
    text.parse::<Reference>()
        .map_err(|e| OciError::Reference(e.to_string()))
}

/// Pull the image `artifact.source` names (unless the cache already holds
/// what its manifest flattens to) and return the manifest digest and the
/// archive's sha256.
pub async fn pull(
    artifact: &Artifact,
    ca_file: Option<&Path>,
    cache: &Cache,
) -> Result<PulledImage, OciError> {
    let reference = parse_reference(&artifact.source)?;
    let client = client(ca_file)?;
    let auth = match (&artifact.username, &artifact.password) {
        (Some(user), password) => {
            RegistryAuth::Basic(user.clone(), password.clone().unwrap_or_default())
        }
        (None, _) => RegistryAuth::Anonymous,
    };
    let (manifest, manifest_digest) = client
        .pull_image_manifest(&reference, &auth)
        .await
        .map_err(registry_error)?;
    let record_key = format!("oci-manifest:{manifest_digest}");
    if let Some(record) = cache.source_record(&record_key) {
        if cache
            .lookup(&record.sha256)
            .map_err(OciError::Cache)?
            .is_some()
        {
            return Ok(PulledImage {
                manifest_digest,
                sha256: record.sha256,
            });
        }
    }
    let work = cache.scratch_dir().map_err(OciError::Cache)?;
    let root = work.path().join("rootfs");
    std::fs::create_dir_all(&root).map_err(OciError::Cache)?;
    for layer in &manifest.layers {
        let compressed = match layer.media_type.as_str() {
            t if t.ends_with("tar+gzip") || t.ends_with("tar.gzip") => true,
            t if t.ends_with(".tar") || t.ends_with("tar") => false,
            other => {
                return Err(OciError::LayerType {
                    digest: layer.digest.clone(),
                    media_type: other.to_string(),
                })
            }
        };
        let blob_path = work.path().join("layer");
        let file = tokio::fs::File::create(&blob_path)
            .await
            .map_err(OciError::Cache)?;
        client
            .pull_blob(&reference, layer, file)
            .await
            .map_err(|e| OciError::Layer {
                digest: layer.digest.clone(),
                problem: e.to_string(),
            })?;
        let root = root.clone();
        let digest = layer.digest.clone();
        tokio::task::spawn_blocking(move || apply_layer(&blob_path, compressed, &root))
            .await
            .map_err(|e| OciError::Cache(io::Error::other(e.to_string())))?
            .map_err(|e| OciError::Layer {
                digest,
                problem: e.to_string(),
            })?;
    }
    let packed = super::pack_directory(&root).map_err(OciError::Cache)?;
    let (_, sha256) = cache.store(&packed).map_err(OciError::Cache)?;
    let _ = cache.remember_source(
        &record_key,
        &SourceRecord {
            sha256: sha256.clone(),
            etag: None,
            last_modified: None,
        },
    );
    Ok(PulledImage {
        manifest_digest,
        sha256,
    })
}

fn client(ca_file: Option<&Path>) -> Result<oci_client::Client, OciError> {
    crate::http::install_crypto_provider();
    let mut config = ClientConfig {
        protocol: ClientProtocol::Https,
        read_timeout: Some(Duration::from_secs(60)),
        connect_timeout: Some(Duration::from_secs(10)),
        ..ClientConfig::default()
    };
    if let Some(path) = ca_file {
        let pem = std::fs::read(path)
            .map_err(|e| OciError::Registry(format!("ca_file {}: {e}", path.display())))?;
        config.extra_root_certificates.push(Certificate {
            encoding: CertificateEncoding::Pem,
            data: pem,
        });
    }
    oci_client::Client::try_from(config).map_err(|e| OciError::Registry(e.to_string()))
}

fn registry_error(error: oci_client::errors::OciDistributionError) -> OciError {
    use oci_client::errors::OciDistributionError as E;
    match error {
        E::AuthenticationFailure(text) => OciError::Auth(text),
        E::UnauthorizedError { url } => OciError::Auth(format!("unauthorized at {url}")),
        E::ImageManifestNotFoundError(text) => {
            OciError::Registry(format!("no such image or tag ({text})"))
        }
        other => {
            let text = other.to_string();
            if text.contains("401") || text.to_ascii_lowercase().contains("unauthorized") {
                OciError::Auth(text)
            } else {
                OciError::Registry(text)
            }
        }
    }
}

/// Apply one layer (a tar, gzipped when `compressed`) onto `root`: its
/// whiteouts first (they remove what the layers below put there), then its
/// files. Device nodes are skipped; paths are kept inside `root`.
pub fn apply_layer(blob: &Path, compressed: bool, root: &Path) -> io::Result<()> {
    let open = || -> io::Result<tar::Archive<Box<dyn Read>>> {
        let file = std::fs::File::open(blob)?;
        let reader: Box<dyn Read> = if compressed {
            Box::new(flate2::read::GzDecoder::new(io::BufReader::new(file)))
        } else {
            Box::new(io::BufReader::new(file))
        };
        Ok(tar::Archive::new(reader))
    };
    let mut archive = open()?;
    for entry in archive.entries()? {
        let entry = entry?;
        let path = inside(&entry.path()?)?;
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let parent = path.parent().unwrap_or(Path::new(""));
        if name == ".wh..wh..opq" {
            let dir = real_dir(root, parent)?;
            if let Some(dir) = dir {
                for child in std::fs::read_dir(&dir)? {
                    remove_any(&child?.path())?;
                }
            }
        } else if let Some(hidden) = name.strip_prefix(".wh.") {
            if let Some(dir) = real_dir(root, parent)? {
                remove_any(&dir.join(hidden))?;
            }
        }
    }
    let mut archive = open()?;
    archive.set_preserve_permissions(true);
    archive.set_unpack_xattrs(false);
    archive.set_overwrite(true);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = inside(&entry.path()?)?;
        let whiteout = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with(".wh."));
        let device = matches!(
            entry.header().entry_type(),
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo
        );
        if whiteout || device || path.as_os_str().is_empty() {
            continue;
        }
        // A file replacing a directory of a lower layer (or the reverse).
        let target = root.join(&path);
        if let Ok(existing) = std::fs::symlink_metadata(&target) {
            let replacing_dir = existing.is_dir() && !entry.header().entry_type().is_dir();
            if replacing_dir || existing.file_type().is_symlink() {
                remove_any(&target)?;
            }
        }
        entry.unpack_in(root)?;
    }
    Ok(())
}

/// `path` as a relative path with no `..`, or an error.
fn inside(path: &Path) -> io::Result<PathBuf> {
    let mut clean = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => clean.push(part),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "the layer names a path outside the image: {}",
                        path.display()
                    ),
                ))
            }
        }
    }
    Ok(clean)
}

/// `root/relative` when every part of it is a real directory (no symlink
/// on the way), else `None`.
fn real_dir(root: &Path, relative: &Path) -> io::Result<Option<PathBuf>> {
    let mut current = root.to_path_buf();
    for part in relative.components() {
        current.push(part);
        match std::fs::symlink_metadata(&current) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => return Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        }
    }
    Ok(Some(current))
}

fn remove_any(path: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A gzipped layer with `files` (path, content) and `links` (path, target).
    fn layer(dir: &Path, name: &str, files: &[(&str, &str)], links: &[(&str, &str)]) -> PathBuf {
        let path = dir.join(name);
        let gz = flate2::write::GzEncoder::new(
            std::fs::File::create(&path).unwrap(),
            flate2::Compression::fast(),
        );
        let mut builder = tar::Builder::new(gz);
        for (file, content) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(content.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder
                .append_data(&mut header, file, content.as_bytes())
                .unwrap();
        }
        for (link, target) in links {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(tar::EntryType::Symlink);
            header.set_size(0);
            header.set_mode(0o777);
            builder.append_link(&mut header, link, target).unwrap();
        }
        builder.into_inner().unwrap().finish().unwrap();
        path
    }

    fn tree(root: &Path) -> Vec<String> {
        let mut found = Vec::new();
        fn walk(root: &Path, dir: &Path, found: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                let relative = path.strip_prefix(root).unwrap().display().to_string();
                if path.is_dir() && !path.is_symlink() {
                    walk(root, &path, found);
                } else {
                    found.push(relative);
                }
            }
        }
        walk(root, root, &mut found);
        found.sort();
        found
    }

    #[test]
    fn whiteouts_remove_what_lower_layers_put_there_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(&root).unwrap();
        let base = layer(
            dir.path(),
            "base",
            &[
                ("bin/app", "v1"),
                ("etc/old.conf", "x"),
                ("data/a", "1"),
                ("data/b", "2"),
            ],
            &[],
        );
        let top = layer(
            dir.path(),
            "top",
            &[
                ("bin/app", "v2"),
                ("etc/.wh.old.conf", ""),
                ("data/.wh..wh..opq", ""),
                ("data/c", "3"),
            ],
            &[],
        );
        apply_layer(&base, true, &root).unwrap();
        apply_layer(&top, true, &root).unwrap();
        assert_eq!(tree(&root), ["bin/app", "data/c"]);
        assert_eq!(std::fs::read_to_string(root.join("bin/app")).unwrap(), "v2");
    }

    #[test]
    fn a_layer_cannot_write_or_remove_outside_the_image() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(dir.path().join("outside"), "keep").unwrap();
        // A symlink to the outside, then a whiteout and a file through it.
        let linked = layer(dir.path(), "linked", &[], &[("escape", "..")]);
        apply_layer(&linked, true, &root).unwrap();
        let through = layer(
            dir.path(),
            "through",
            &[("escape/.wh.outside", ""), ("escape/new", "x")],
            &[],
        );
        let _ = apply_layer(&through, true, &root);
        assert_eq!(
            std::fs::read_to_string(dir.path().join("outside")).unwrap(),
            "keep"
        );
        assert!(!dir.path().join("new").exists());
        assert!(inside(Path::new("../x")).is_err());
        assert_eq!(inside(Path::new("/a/./b")).unwrap(), PathBuf::from("a/b"));
    }
}
