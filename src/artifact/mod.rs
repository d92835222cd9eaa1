//! Artifacts: what a service deploys, found, fetched, packed and digested.
//!
//! A local directory is packed into a deterministic `.tar.gz` (sorted entries,
//! zero times and owners), so the same content always has the same sha256 and a
//! second apply sees nothing to do. A local file is taken as a `.tar.gz`
//! already. A remote source (`https://`, `http://`, `s3://bucket/key`) is
//! downloaded into the runner's content-addressed [`cache`] by [`remote`]:
//! plan pins it to a digest, apply deploys exactly that digest.
//!
//! Not here: sending the artifact to hosts (the VM executor does that).

pub mod cache;
#[cfg(feature = "aws")]
pub mod oci;
#[cfg(feature = "aws")]
pub mod remote;

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use flate2::{Compression, GzBuilder};
use sha2::{Digest, Sha256};

pub use cache::Cache;

/// Where an artifact comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArtifactSource {
    LocalDirectory(PathBuf),
    LocalFile(PathBuf),
    Remote(RemoteSource),
}

/// A source slipway downloads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteSource {
    /// An `https://` (or `http://`) URL.
    Http(String),
    /// `s3://bucket/key`.
    S3 { bucket: String, key: String },
    /// `oci://registry/repository:tag` or `...@sha256:digest`: an image
    /// flattened into an archive (see [`oci`]).
    Oci(String),
}

/// Why a source cannot be used, found without fetching anything.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    #[error("the scheme {0}:// is not a source slipway can fetch; use https://, http://, s3://bucket/key, oci://registry/repository:tag or a local path")]
    UnknownScheme(String),
    #[error("an s3 source is s3://BUCKET/KEY, with both a bucket and a key")]
    IncompleteS3,
    #[error("an image source is oci://REGISTRY/REPOSITORY:TAG or oci://REGISTRY/REPOSITORY@sha256:DIGEST")]
    IncompleteOci,
}

/// Resolve `source` as written in configuration against `base` (the directory
/// of the configuration or module that declared it).
pub fn classify(base: &Path, source: &str) -> Result<ArtifactSource, SourceError> {
    if let Some(path) = source.strip_prefix("file://") {
        return Ok(local(Path::new(path).to_path_buf()));
    }
    let Some((scheme, rest)) = source.split_once("://") else {
        return Ok(local(base.join(source)));
    };
    match scheme.to_ascii_lowercase().as_str() {
        "https" | "http" => Ok(ArtifactSource::Remote(RemoteSource::Http(
            source.to_string(),
        ))),
        "s3" => match rest.split_once('/') {
            Some((bucket, key)) if !bucket.is_empty() && !key.is_empty() => {
                Ok(ArtifactSource::Remote(RemoteSource::S3 {
                    bucket: bucket.to_string(),
                    key: key.to_string(),
                }))
            }
            _ => Err(SourceError::IncompleteS3),
        },
        "oci" if rest.contains('/') && !rest.starts_with('/') => Ok(ArtifactSource::Remote(
            RemoteSource::Oci(source.to_string()),
        )),
        "oci" => Err(SourceError::IncompleteOci),
        other => Err(SourceError::UnknownScheme(other.to_string())),
    }
}

/// `source` as it may be shown: a URL without its user, password and query
/// (any of which may hold a credential).
pub fn display_source(source: &str) -> String {
    match url::Url::parse(source) {
        Ok(mut url) if source.contains("://") => {
            let hidden =
                !url.username().is_empty() || url.password().is_some() || url.query().is_some();
            let _ = url.set_username("");
            let _ = url.set_password(None);
            url.set_query(None);
            let mut text = url.to_string();
            if hidden {
                text.push_str(" (credentials and query hidden)");
            }
            text
        }
        _ => source.to_string(),
    }
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
/// packed form), or `None` for a remote source (plan pins those).
pub fn local_digest(source: &ArtifactSource) -> io::Result<Option<String>> {
    match source {
        ArtifactSource::LocalDirectory(dir) => {
            pack_directory(dir).map(|bytes| Some(sha256_hex(&bytes)))
        }
        ArtifactSource::LocalFile(file) => cache::digest_of_file(file).map(Some),
        ArtifactSource::Remote(_) => Ok(None),
    }
}

/// An artifact ready to deploy: the checked file in the runner's cache (the
/// runner uploads it), and, when hosts download it themselves, where from.
#[derive(Debug, Clone)]
pub struct PreparedArtifact {
    pub path: PathBuf,
    pub sha256: String,
    /// Set when the artifact's `delivery` is `pull`.
    pub host_pull: Option<HostPull>,
}

/// Where hosts download a `pull` artifact from.
#[derive(Debug, Clone)]
pub enum HostPull {
    /// An http(s) URL that needs no credentials.
    Url(String),
    /// An s3 object: each host gets its own presigned GET URL, made just
    /// before its update, so hosts need no AWS credentials.
    #[cfg(feature = "aws")]
    S3 {
        client: aws_sdk_s3::Client,
        bucket: String,
        key: String,
    },
}

/// How long a presigned URL for one host's download stays valid: the host
/// starts its download within seconds of the signature.
#[cfg(feature = "aws")]
const PRESIGNED_URL_LIFETIME: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// What one host's download needs: the URL (sensitive: a presigned URL is a
/// credential for its lifetime) and what errors show instead of it.
#[derive(Clone)]
pub struct HostDownload {
    pub url: String,
    /// The source as errors may show it: without credentials or query.
    pub shown_source: String,
}

impl std::fmt::Debug for HostDownload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostDownload")
            .field("url", &"(not shown)")
            .field("shown_source", &self.shown_source)
            .finish()
    }
}

impl HostPull {
    /// The URL one host downloads from now (for s3, freshly presigned).
    pub async fn download_for_host(&self, source: &str) -> Result<HostDownload, ArtifactError> {
        let shown_source = display_source(source);
        let url = match self {
            HostPull::Url(url) => url.clone(),
            #[cfg(feature = "aws")]
            HostPull::S3 {
                client,
                bucket,
                key,
            } => {
                let fail = |problem: String| ArtifactError::Fetch {
                    source_text: shown_source.clone(),
                    problem,
                };
                let presigning =
                    aws_sdk_s3::presigning::PresigningConfig::expires_in(PRESIGNED_URL_LIFETIME)
                        .map_err(|e| fail(format!("cannot presign a URL: {e}")))?;
                client
                    .get_object()
                    .bucket(bucket)
                    .key(key)
                    .presigned(presigning)
                    .await
                    .map_err(|e| {
                        fail(format!(
                            "cannot presign a URL for the hosts: {}",
                            crate::aws::error_text(&e)
                        ))
                    })?
                    .uri()
                    .to_string()
            }
        };
        Ok(HostDownload { url, shown_source })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error("artifact {source_text}: {problem}")]
    Source {
        source_text: String,
        problem: SourceError,
    },
    #[error("cannot read artifact {path}: {source}")]
    Read { path: String, source: io::Error },
    #[error("cannot store the artifact in the runner's cache {path}: {source}")]
    Write { path: String, source: io::Error },
    #[error("artifact {source_text} has sha256 {actual}, but {expected} was expected (the sha256 in the configuration, or the digest the plan pinned): the artifact changed since, or the digest is wrong; nothing was sent to any host")]
    DigestMismatch {
        source_text: String,
        expected: String,
        actual: String,
    },
    #[error("cannot fetch artifact {source_text}: {problem}")]
    Fetch {
        source_text: String,
        problem: String,
    },
}

/// Pack (for a directory) or locate (for a file) a local artifact, check its
/// digest against `expected` when given, and return the file to upload.
/// Packed directories are stored in `cache`.
pub fn prepare_local(
    source_text: &str,
    source: &ArtifactSource,
    expected: Option<&str>,
    cache: &Cache,
) -> Result<PreparedArtifact, ArtifactError> {
    let (path, sha256) = match source {
        ArtifactSource::Remote(_) => {
            unreachable!("remote artifacts are fetched by artifact::remote")
        }
        ArtifactSource::LocalDirectory(dir) => {
            let bytes = pack_directory(dir).map_err(|source| ArtifactError::Read {
                path: dir.display().to_string(),
                source,
            })?;
            cache.store(&bytes).map_err(|source| ArtifactError::Write {
                path: cache.path_of("").display().to_string(),
                source,
            })?
        }
        ArtifactSource::LocalFile(file) => {
            let sha256 = cache::digest_of_file(file).map_err(|source| ArtifactError::Read {
                path: file.display().to_string(),
                source,
            })?;
            (file.clone(), sha256)
        }
    };
    check_digest(source_text, expected, sha256.clone())?;
    Ok(PreparedArtifact {
        path,
        sha256,
        host_pull: None,
    })
}

/// The file to upload for `spec`, with exactly the digest `expected` when
/// one is given (the plan's pin or the configured sha256): a local artifact
/// packed or read, a remote one from the cache in `cache_dir` or downloaded.
#[cfg(feature = "aws")]
pub async fn prepare(
    config: &crate::config::Config,
    spec: &crate::config::Artifact,
    expected: Option<&str>,
    cache_dir: &Path,
) -> Result<PreparedArtifact, ArtifactError> {
    let cache = Cache::new(cache_dir);
    let source =
        classify(&spec.base_dir, &spec.source).map_err(|problem| ArtifactError::Source {
            source_text: display_source(&spec.source),
            problem,
        })?;
    if let ArtifactSource::Remote(_) = source {
        let http = crate::http::Client::for_config(config).map_err(|e| ArtifactError::Fetch {
            source_text: display_source(&spec.source),
            problem: e.to_string(),
        })?;
        let fetcher = remote::Fetcher::new(http, config.ca_file.as_deref());
        let mut prepared = match expected {
            Some(expected) => fetcher.fetch_pinned(spec, expected, &cache).await?,
            None => {
                let resolved = fetcher.resolve(spec, &cache).await?;
                fetcher.fetch_pinned(spec, &resolved.sha256, &cache).await?
            }
        };
        if spec.delivery() == crate::config::ArtifactDelivery::Pull {
            prepared.host_pull = Some(fetcher.host_pull(spec).await?);
        }
        return Ok(prepared);
    }
    let source_text = spec.source.clone();
    let expected = expected.map(str::to_string);
    tokio::task::spawn_blocking(move || {
        prepare_local(&source_text, &source, expected.as_deref(), &cache)
    })
    .await
    .map_err(|e| ArtifactError::Fetch {
        source_text: display_source(&spec.source),
        problem: format!("preparing the artifact stopped: {e}"),
    })?
}

/// `actual` when it is what `expected` asks for (or nothing is expected).
pub fn check_digest(
    source_text: &str,
    expected: Option<&str>,
    actual: String,
) -> Result<String, ArtifactError> {
    match expected {
        Some(expected) if !expected.eq_ignore_ascii_case(&actual) => {
            Err(ArtifactError::DigestMismatch {
                source_text: display_source(source_text),
                expected: expected.to_string(),
                actual,
            })
        }
        _ => Ok(actual),
    }
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
        let cache_dir = dir.path().join("cache");
        let cache = Cache::new(&cache_dir);
        let source = classify(dir.path(), "app").unwrap();
        let prepared = prepare_local("app", &source, None, &cache).unwrap();
        assert!(prepared.path.starts_with(&cache_dir));
        assert_eq!(
            local_digest(&source).unwrap(),
            Some(prepared.sha256.clone())
        );
        assert!(prepare_local("app", &source, Some(&prepared.sha256), &cache).is_ok());
        let wrong = prepare_local("app", &source, Some("00"), &cache).unwrap_err();
        assert!(wrong.to_string().contains("sha256"), "{wrong}");
    }

    #[test]
    fn sources_are_classified_by_scheme() {
        let base = Path::new("/cfg");
        assert_eq!(
            classify(base, "https://repo.example/a.tar.gz"),
            Ok(ArtifactSource::Remote(RemoteSource::Http(
                "https://repo.example/a.tar.gz".into()
            )))
        );
        assert_eq!(
            classify(base, "s3://bucket/path/to/a.tar.gz"),
            Ok(ArtifactSource::Remote(RemoteSource::S3 {
                bucket: "bucket".into(),
                key: "path/to/a.tar.gz".into()
            }))
        );
        assert_eq!(
            classify(base, "s3://bucket"),
            Err(SourceError::IncompleteS3)
        );
        assert_eq!(classify(base, "s3:///key"), Err(SourceError::IncompleteS3));
        assert_eq!(
            classify(base, "ftp://x/y"),
            Err(SourceError::UnknownScheme("ftp".into()))
        );
        assert_eq!(
            classify(base, "build/app.tar.gz"),
            Ok(ArtifactSource::LocalFile("/cfg/build/app.tar.gz".into()))
        );
    }

    #[test]
    fn shown_sources_hide_credentials_and_queries() {
        assert_eq!(
            display_source("https://user:pw@repo.example/a.tgz?token=t"),
            "https://repo.example/a.tgz (credentials and query hidden)"
        );
        assert_eq!(
            display_source("https://repo.example/a.tgz"),
            "https://repo.example/a.tgz"
        );
        assert_eq!(display_source("s3://b/k"), "s3://b/k");
        assert_eq!(display_source("app"), "app");
    }
}
