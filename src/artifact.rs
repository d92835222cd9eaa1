//! Artifacts: what a service deploys, found, packed and digested.
//!
//! A local directory is packed into a deterministic `.tar.gz` (sorted entries,
//! zero times and owners), so the same content always has the same sha256 and a
//! second apply sees nothing to do. A local file is taken as a `.tar.gz`
//! already. Remote sources (`https://`, `s3://`) are not fetched here.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use flate2::{Compression, GzBuilder};
use sha2::{Digest, Sha256};

/// Where an artifact comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArtifactSource {
    LocalDirectory(PathBuf),
    LocalFile(PathBuf),
    Remote(String),
}

/// Resolve `source` as written in configuration against `base` (the directory
/// of the configuration or module that declared it).
pub fn classify(base: &Path, source: &str) -> ArtifactSource {
    if let Some(path) = source.strip_prefix("file://") {
        return local(Path::new(path).to_path_buf());
    }
    if source.contains("://") {
        return ArtifactSource::Remote(source.to_string());
    }
    local(base.join(source))
}

fn local(path: PathBuf) -> ArtifactSource {
    if path.is_dir() {
        ArtifactSource::LocalDirectory(path)
    } else {
        ArtifactSource::LocalFile(path)
    }
}

/// The deterministic `.tar.gz` of a directory.
pub fn pack_directory(dir: &Path) -> io::Result<Vec<u8>> {
    let encoder = GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), Compression::default());
    let mut builder = tar::Builder::new(encoder);
    builder.mode(tar::HeaderMode::Deterministic);
    builder.follow_symlinks(false);
    append_sorted(&mut builder, dir, Path::new(""))?;
    let mut encoder = builder.into_inner()?;
    encoder.flush()?;
    encoder.finish()
}

fn append_sorted<W: Write>(
    builder: &mut tar::Builder<W>,
    root: &Path,
    relative: &Path,
) -> io::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(root.join(relative))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    entries.sort();
    for path in entries {
        let name = relative.join(path.file_name().unwrap_or_default());
        let metadata = std::fs::symlink_metadata(&path)?;
        if metadata.is_dir() {
            builder.append_dir(&name, &path)?;
            append_sorted(builder, root, &name)?;
        } else {
            builder.append_path_with_name(&path, &name)?;
        }
    }
    Ok(())
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The sha256 of a local artifact as it will be transferred (a directory's
/// packed form), or `None` for a remote source.
pub fn local_digest(base: &Path, source: &str) -> io::Result<Option<String>> {
    match classify(base, source) {
        ArtifactSource::LocalDirectory(dir) => {
            pack_directory(&dir).map(|bytes| Some(sha256_hex(&bytes)))
        }
        ArtifactSource::LocalFile(file) => {
            std::fs::read(file).map(|bytes| Some(sha256_hex(&bytes)))
        }
        ArtifactSource::Remote(_) => Ok(None),
    }
}

/// A local artifact ready to upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedArtifact {
    pub path: PathBuf,
    pub sha256: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error("cannot read artifact {path}: {source}")]
    Read { path: String, source: io::Error },
    #[error("cannot write the packed artifact to {path}: {source}")]
    Write { path: String, source: io::Error },
    #[error("artifact {source_text} has sha256 {actual}, but the configuration says {expected}; the artifact changed or the digest is wrong")]
    DigestMismatch {
        source_text: String,
        expected: String,
        actual: String,
    },
    #[error("artifact {0} is remote; this build deploys local artifacts (a directory or a .tar.gz) only")]
    Remote(String),
}

/// Pack (for a directory) or locate (for a file) the artifact, check its
/// digest against `expected` when given, and return the file to upload.
/// Packed directories are written to `cache_dir/<sha256>.tar.gz`.
pub fn prepare(
    base: &Path,
    source: &str,
    expected: Option<&str>,
    cache_dir: &Path,
) -> Result<PreparedArtifact, ArtifactError> {
    let (path, sha256) = match classify(base, source) {
        ArtifactSource::Remote(url) => return Err(ArtifactError::Remote(url)),
        ArtifactSource::LocalDirectory(dir) => {
            let bytes = pack_directory(&dir).map_err(|source| ArtifactError::Read {
                path: dir.display().to_string(),
                source,
            })?;
            let sha256 = sha256_hex(&bytes);
            let path = cache_dir.join(format!("{sha256}.tar.gz"));
            if !path.exists() {
                std::fs::create_dir_all(cache_dir)
                    .and_then(|()| std::fs::write(path.with_extension("partial"), &bytes))
                    .and_then(|()| std::fs::rename(path.with_extension("partial"), &path))
                    .map_err(|source| ArtifactError::Write {
                        path: path.display().to_string(),
                        source,
                    })?;
            }
            (path, sha256)
        }
        ArtifactSource::LocalFile(file) => {
            let bytes = std::fs::read(&file).map_err(|source| ArtifactError::Read {
                path: file.display().to_string(),
                source,
            })?;
            (file, sha256_hex(&bytes))
        }
    };
    if let Some(expected) = expected {
        if !expected.eq_ignore_ascii_case(&sha256) {
            return Err(ArtifactError::DigestMismatch {
                source_text: source.to_string(),
                expected: expected.to_string(),
                actual: sha256,
            });
        }
    }
    Ok(PreparedArtifact { path, sha256 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packing_is_deterministic_and_content_sensitive() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("bin")).unwrap();
        std::fs::write(dir.path().join("bin/start.sh"), "echo hi\n").unwrap();
        std::fs::write(dir.path().join("README"), "x").unwrap();
        let first = pack_directory(dir.path()).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        filetime_touch(&dir.path().join("README"));
        assert_eq!(
            first,
            pack_directory(dir.path()).unwrap(),
            "times must not change the archive"
        );
        std::fs::write(dir.path().join("README"), "y").unwrap();
        assert_ne!(first, pack_directory(dir.path()).unwrap());
    }

    fn filetime_touch(path: &Path) {
        let content = std::fs::read(path).unwrap();
        std::fs::write(path, content).unwrap();
    }

    #[test]
    fn prepare_checks_the_expected_digest() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("app")).unwrap();
        std::fs::write(dir.path().join("app/x"), "1").unwrap();
        let cache = dir.path().join("cache");
        let prepared = prepare(dir.path(), "app", None, &cache).unwrap();
        assert!(prepared.path.starts_with(&cache));
        assert_eq!(
            local_digest(dir.path(), "app").unwrap(),
            Some(prepared.sha256.clone())
        );
        assert!(prepare(dir.path(), "app", Some(&prepared.sha256), &cache).is_ok());
        let wrong = prepare(dir.path(), "app", Some("00"), &cache).unwrap_err();
        assert!(wrong.to_string().contains("sha256"), "{wrong}");
        assert!(matches!(
            prepare(dir.path(), "https://x/y.tgz", None, &cache),
            Err(ArtifactError::Remote(_))
        ));
    }
}
