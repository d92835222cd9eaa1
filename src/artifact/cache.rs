//! The runner's content-addressed artifact cache.
//!
//! An artifact is stored once per sha256, as `DIR/<sha256>.tar.gz`. A
//! download is written to a temporary file under `DIR/partial/` while its
//! digest is computed, and renamed into place only when it is complete: a
//! partial download is never found under a digest, and two applies fetching
//! the same artifact at once each rename a complete copy (the same bytes).
//! A file found under a digest is checked against it before it is used.
//!
//! For a remote source the cache also keeps a small record of what the source
//! last resolved to (`DIR/sources/<sha256 of the source>.json`: the digest and
//! the server's validators), so the next plan can ask the server whether the
//! source changed instead of downloading it again.
//!
//! Not here: fetching (see `remote`) or packing directories.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The cache in one directory (created when first written).
#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
}

/// What a remote source resolved to when last fetched, and the validators
/// its server gave (`ETag`, `Last-Modified`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceRecord {
    pub sha256: String,
    #[serde(default)]
    pub etag: Option<String>,
    #[serde(default)]
    pub last_modified: Option<String>,
}

impl Cache {
    pub fn new(dir: impl Into<PathBuf>) -> Cache {
        Cache { dir: dir.into() }
    }

    /// Where the artifact with `sha256` is (or would be) stored.
    pub fn path_of(&self, sha256: &str) -> PathBuf {
        self.dir
            .join(format!("{}.tar.gz", sha256.to_ascii_lowercase()))
    }

    /// The stored artifact with `sha256`, checked against it. A file whose
    /// content does not match (changed by hand, a damaged disk) is removed
    /// and reported as absent.
    pub fn lookup(&self, sha256: &str) -> io::Result<Option<PathBuf>> {
        let path = self.path_of(sha256);
        let file = match std::fs::File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        if digest_of_reader(file)?.eq_ignore_ascii_case(sha256) {
            Ok(Some(path))
        } else {
            std::fs::remove_file(&path)?;
            Ok(None)
        }
    }

    /// Store `bytes` (a packed directory) under their digest.
    pub fn store(&self, bytes: &[u8]) -> io::Result<(PathBuf, String)> {
        let mut partial = self.begin()?;
        partial.write(bytes)?;
        partial.finish()
    }

    /// Start writing an artifact whose digest is not known yet.
    pub fn begin(&self) -> io::Result<Partial> {
        let partial_dir = self.dir.join("partial");
        std::fs::create_dir_all(&partial_dir)?;
        let file = tempfile::NamedTempFile::new_in(&partial_dir)?;
        Ok(Partial {
            cache: self.clone(),
            file: io::BufWriter::new(file),
            hasher: Sha256::new(),
        })
    }

    /// A temporary directory beside the cache (for unpacking), removed when
    /// dropped.
    pub fn scratch_dir(&self) -> io::Result<tempfile::TempDir> {
        let partial_dir = self.dir.join("partial");
        std::fs::create_dir_all(&partial_dir)?;
        tempfile::Builder::new()
            .prefix("unpack-")
            .tempdir_in(partial_dir)
    }

    /// What `source` last resolved to, if it was fetched before.
    pub fn source_record(&self, source: &str) -> Option<SourceRecord> {
        let text = std::fs::read_to_string(self.record_path(source)).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Remember what `source` resolved to (written whole, then renamed).
    pub fn remember_source(&self, source: &str, record: &SourceRecord) -> io::Result<()> {
        let path = self.record_path(source);
        let dir = path.parent().unwrap_or(&self.dir);
        std::fs::create_dir_all(dir)?;
        let mut file = tempfile::NamedTempFile::new_in(dir)?;
        file.write_all(serde_json::to_string(record)?.as_bytes())?;
        file.persist(&path).map_err(|e| e.error)?;
        Ok(())
    }

    /// Sources are recorded under the digest of their text, so a URL's
    /// query (which may hold a token) never becomes a file name.
    fn record_path(&self, source: &str) -> PathBuf {
        self.dir
            .join("sources")
            .join(format!("{}.json", hex::encode(Sha256::digest(source))))
    }
}

/// An artifact being written into the cache.
pub struct Partial {
    cache: Cache,
    file: io::BufWriter<tempfile::NamedTempFile>,
    hasher: Sha256,
}

impl Partial {
    pub fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.hasher.update(bytes);
        self.file.write_all(bytes)
    }

    /// The digest of what was written so far.
    pub fn digest(&self) -> String {
        hex::encode(self.hasher.clone().finalize())
    }

    /// Move the complete artifact to its place; returns its path and digest.
    /// Dropping a `Partial` instead removes the temporary file.
    pub fn finish(self) -> io::Result<(PathBuf, String)> {
        let sha256 = hex::encode(self.hasher.finalize());
        let file = self.file.into_inner().map_err(|e| e.into_error())?;
        file.as_file().sync_all()?;
        let path = self.cache.path_of(&sha256);
        file.persist(&path).map_err(|e| e.error)?;
        Ok((path, sha256))
    }
}

/// The sha256 (hex) of everything `reader` yields.
pub fn digest_of_reader(mut reader: impl Read) -> io::Result<String> {
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 256 * 1024];
    loop {
        let read = reader.read(&mut buffer)?;
        if read == 0 {
            return Ok(hex::encode(hasher.finalize()));
        }
        hasher.update(&buffer[..read]);
    }
}

/// The sha256 (hex) of the file at `path`.
pub fn digest_of_file(path: &Path) -> io::Result<String> {
    digest_of_reader(std::fs::File::open(path)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_finished_download_is_found_under_its_digest_and_a_partial_one_never() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path().join("cache"));
        let mut partial = cache.begin().unwrap();
        partial.write(b"half").unwrap();
        let half_digest = partial.digest();
        drop(partial);
        assert_eq!(cache.lookup(&half_digest).unwrap(), None);
        assert_eq!(
            std::fs::read_dir(dir.path().join("cache/partial"))
                .unwrap()
                .count(),
            0,
            "a dropped partial download leaves nothing behind"
        );

        let (path, sha256) = cache.store(b"whole artifact").unwrap();
        assert_eq!(sha256, crate::artifact::sha256_hex(b"whole artifact"));
        assert_eq!(cache.lookup(&sha256).unwrap(), Some(path.clone()));
        assert_eq!(
            cache.lookup(&sha256.to_uppercase()).unwrap(),
            Some(path.clone())
        );

        // A stored file changed behind the cache's back is not used.
        std::fs::write(&path, b"tampered").unwrap();
        assert_eq!(cache.lookup(&sha256).unwrap(), None);
        assert!(!path.exists());
    }

    #[test]
    fn source_records_are_kept_under_the_digest_of_the_source() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path());
        let source = "https://repo.example/app.tar.gz?token=secret";
        assert_eq!(cache.source_record(source), None);
        let record = SourceRecord {
            sha256: "ab".repeat(32),
            etag: Some("\"v1\"".into()),
            last_modified: None,
        };
        cache.remember_source(source, &record).unwrap();
        assert_eq!(cache.source_record(source), Some(record));
        let names: Vec<String> = std::fs::read_dir(dir.path().join("sources"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|n| !n.contains("secret")), "{names:?}");
    }
}
