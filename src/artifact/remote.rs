//! Remote artifacts: downloaded into the runner's [`Cache`], pinned by plan,
//! deployed by digest.
//!
//! - `https://` / `http://` go through the one HTTP client ([`crate::http`]):
//!   redirects, the artifact's `headers` and `username` / `password`, and the
//!   configuration's `ca_file` or `SSL_CERT_FILE` for a private CA.
//! - `s3://bucket/key` goes through aws-sdk-s3 with the standard AWS
//!   configuration chain (credentials, `AWS_REGION`, `AWS_ENDPOINT_URL_S3` /
//!   `AWS_ENDPOINT_URL`); the artifact's `region` overrides the chain's.
//!
//! [`Fetcher::resolve`] is what plan calls: it asks the source what it holds
//! now (a conditional request when the cache remembers the source's
//! validators, so an unchanged artifact is not downloaded again) and returns
//! its digest. [`Fetcher::fetch_pinned`] is what apply calls: the artifact
//! with exactly the digest the plan showed, from the cache or downloaded and
//! checked, or an error saying the source changed since the plan.
//!
//! Not here: deciding what to deploy, or anything on hosts.

use std::collections::BTreeMap;
use std::time::Duration;

use super::cache::{Cache, SourceRecord};
use super::{
    check_digest, classify, display_source, ArtifactError, ArtifactSource, HostPull,
    PreparedArtifact, RemoteSource,
};
use crate::config::Artifact;
use crate::http::{DownloadRequest, Downloaded};

/// The longest wait for a connection or for the next bytes of a download.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Downloads remote artifacts; one per apply or plan.
pub struct Fetcher {
    http: crate::http::Client,
    /// The configuration's `ca_file`, for registries (oci-client builds its
    /// own TLS configuration).
    ca_file: Option<std::path::PathBuf>,
    s3_clients: tokio::sync::Mutex<BTreeMap<Option<String>, aws_sdk_s3::Client>>,
}

/// What a remote source holds now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The sha256 of the archive apply sends (for an image: flattened).
    pub sha256: String,
    /// For an image: its manifest digest (`sha256:...`).
    pub image_digest: Option<String>,
}

/// What a download brought.
enum Fetched {
    /// The source still holds what the cache's record says.
    NotModified,
    Stored(SourceRecord),
}

impl Fetcher {
    pub fn new(http: crate::http::Client, ca_file: Option<&std::path::Path>) -> Fetcher {
        Fetcher {
            http,
            ca_file: ca_file.map(std::path::Path::to_path_buf),
            s3_clients: tokio::sync::Mutex::new(BTreeMap::new()),
        }
    }

    /// The digest `artifact`'s source holds now, downloading it into `cache`
    /// unless the source says it has not changed since the cache's record.
    pub async fn resolve(
        &self,
        artifact: &Artifact,
        cache: &Cache,
    ) -> Result<Resolved, ArtifactError> {
        let source = remote_source(artifact)?;
        if let RemoteSource::Oci(_) = source {
            let image = self.pull_image(artifact, cache).await?;
            return Ok(Resolved {
                sha256: image.sha256,
                image_digest: Some(image.manifest_digest),
            });
        }
        let known = cache.source_record(&artifact.source);
        let sha256 = match self
            .download(artifact, &source, known.as_ref(), cache)
            .await?
        {
            Fetched::NotModified => known.map(|k| k.sha256).unwrap_or_default(),
            Fetched::Stored(record) => record.sha256,
        };
        Ok(Resolved {
            sha256,
            image_digest: None,
        })
    }

    async fn pull_image(
        &self,
        artifact: &Artifact,
        cache: &Cache,
    ) -> Result<super::oci::PulledImage, ArtifactError> {
        super::oci::pull(artifact, self.ca_file.as_deref(), cache)
            .await
            .map_err(|e| ArtifactError::Fetch {
                source_text: display_source(&artifact.source),
                problem: e.to_string(),
            })
    }

    /// The artifact with digest `expected`: from `cache`, or downloaded and
    /// checked. A source that now holds other bytes is an error that names
    /// both digests; nothing is sent to hosts in that case.
    pub async fn fetch_pinned(
        &self,
        artifact: &Artifact,
        expected: &str,
        cache: &Cache,
    ) -> Result<PreparedArtifact, ArtifactError> {
        let store_error = |source| ArtifactError::Write {
            path: cache.path_of(expected).display().to_string(),
            source,
        };
        if let Some(path) = cache.lookup(expected).map_err(store_error)? {
            return Ok(PreparedArtifact {
                path,
                sha256: expected.to_ascii_lowercase(),
                host_pull: None,
            });
        }
        let source = remote_source(artifact)?;
        let actual = if let RemoteSource::Oci(_) = source {
            self.pull_image(artifact, cache).await?.sha256
        } else {
            let Fetched::Stored(record) = self.download(artifact, &source, None, cache).await?
            else {
                unreachable!("an unconditional download is never 'not modified'")
            };
            record.sha256
        };
        let sha256 = check_digest(&artifact.source, Some(expected), actual)?;
        Ok(PreparedArtifact {
            path: cache.path_of(&sha256),
            sha256,
            host_pull: None,
        })
    }

    /// Where hosts download `artifact` from when its delivery is `pull`.
    pub async fn host_pull(&self, artifact: &Artifact) -> Result<HostPull, ArtifactError> {
        match remote_source(artifact)? {
            RemoteSource::Http(url) => Ok(HostPull::Url(url)),
            RemoteSource::S3 { bucket, key } => Ok(HostPull::S3 {
                client: self.s3_client(artifact.region.as_deref()).await,
                bucket,
                key,
            }),
            RemoteSource::Oci(_) => Err(ArtifactError::Fetch {
                source_text: display_source(&artifact.source),
                problem: "hosts cannot pull an image: the runner sends it flattened".into(),
            }),
        }
    }

    /// Download `source` into `cache`; with `known`, ask the server first
    /// whether it changed.
    async fn download(
        &self,
        artifact: &Artifact,
        source: &RemoteSource,
        known: Option<&SourceRecord>,
        cache: &Cache,
    ) -> Result<Fetched, ArtifactError> {
        let fetch_error = |problem: String| ArtifactError::Fetch {
            source_text: display_source(&artifact.source),
            problem,
        };
        let store_error = |source| ArtifactError::Write {
            path: cache.path_of("").display().to_string(),
            source,
        };
        let mut partial = cache.begin().map_err(store_error)?;
        let validators = match source {
            RemoteSource::Http(url) => {
                let request = DownloadRequest {
                    headers: artifact
                        .headers
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                    basic_auth: artifact
                        .username
                        .clone()
                        .map(|user| (user, artifact.password.clone().unwrap_or_default())),
                    if_none_match: known.and_then(|k| k.etag.clone()),
                    if_modified_since: known.and_then(|k| k.last_modified.clone()),
                };
                let mut sink = |bytes: &[u8]| partial.write(bytes);
                match self
                    .http
                    .download(url, &request, IDLE_TIMEOUT, &mut sink)
                    .await
                    .map_err(|e| fetch_error(e.to_string()))?
                {
                    Downloaded::NotModified if known.is_some() => return Ok(Fetched::NotModified),
                    Downloaded::NotModified => {
                        return Err(fetch_error(
                            "the server answered 304 Not Modified to a plain request".into(),
                        ))
                    }
                    Downloaded::Refused { status } => {
                        return Err(fetch_error(refused_text(status)))
                    }
                    Downloaded::Complete {
                        etag,
                        last_modified,
                        ..
                    } => (etag, last_modified),
                }
            }
            RemoteSource::Oci(_) => unreachable!("images are pulled by artifact::oci"),
            RemoteSource::S3 { bucket, key } => {
                let client = self.s3_client(artifact.region.as_deref()).await;
                let mut request = client.get_object().bucket(bucket).key(key);
                if let Some(etag) = known.and_then(|k| k.etag.clone()) {
                    request = request.if_none_match(etag);
                }
                let output = match request.send().await {
                    Ok(output) => output,
                    Err(error) => {
                        let status = error.raw_response().map(|r| r.status().as_u16());
                        if status == Some(304) && known.is_some() {
                            return Ok(Fetched::NotModified);
                        }
                        return Err(fetch_error(s3_error_text(
                            status,
                            &crate::aws::error_text(&error),
                        )));
                    }
                };
                let etag = output.e_tag().map(str::to_string);
                let expected_length = output.content_length();
                let mut body = output.body;
                let mut length = 0i64;
                while let Some(chunk) = tokio::time::timeout(IDLE_TIMEOUT, body.next())
                    .await
                    .map_err(|_| fetch_error(format!("no data for {}s", IDLE_TIMEOUT.as_secs())))?
                {
                    let chunk =
                        chunk.map_err(|e| fetch_error(format!("the download broke: {e}")))?;
                    length += chunk.len() as i64;
                    partial.write(&chunk).map_err(store_error)?;
                }
                if let Some(expected) = expected_length.filter(|&e| e != length) {
                    return Err(fetch_error(format!(
                        "the download ended after {length} of {expected} bytes"
                    )));
                }
                (etag, None)
            }
        };
        let (_, sha256) = partial.finish().map_err(store_error)?;
        let record = SourceRecord {
            sha256,
            etag: validators.0,
            last_modified: validators.1,
        };
        // The record only saves a later download; failing to keep it is not
        // an error.
        let _ = cache.remember_source(&artifact.source, &record);
        Ok(Fetched::Stored(record))
    }

    async fn s3_client(&self, region: Option<&str>) -> aws_sdk_s3::Client {
        let key = region.map(str::to_string);
        let mut clients = self.s3_clients.lock().await;
        if let Some(client) = clients.get(&key) {
            return client.clone();
        }
        let sdk = crate::aws::sdk_config(&crate::aws::Target::new(region, None)).await;
        let mut config = aws_sdk_s3::config::Builder::from(&sdk);
        if ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]
            .iter()
            .any(|name| std::env::var_os(name).is_some_and(|v| !v.is_empty()))
        {
            // S3-compatible stores and local test servers are addressed by
            // path, not by bucket host name.
            config = config.force_path_style(true);
        }
        let client = aws_sdk_s3::Client::from_conf(config.build());
        clients.insert(key, client.clone());
        client
    }
}

/// Pin every remote artifact without a configured `sha256` that a VM
/// deployment of the environments `options` plans sends to hosts: its
/// `sha256` becomes the digest its source holds now, marked as pinned by plan.
/// Each source is fetched once. An error names the artifact and the
/// deployments that use it; nothing else is changed then.
pub async fn pin_remote_artifacts(
    config: &mut crate::config::Config,
    options: &crate::plan::PlanOptions,
    cache_dir: &std::path::Path,
) -> Result<(), Vec<String>> {
    let wanted: Vec<String> = config
        .deployments
        .values()
        .filter(|deployment| {
            let Some(environment) = config.environment_of(deployment) else {
                return false;
            };
            let on_hosts = environment.vm_hosts.is_some() && deployment.service.vm.is_some();
            let unpinned_remote = deployment
                .service
                .artifact
                .as_ref()
                .is_some_and(|artifact| {
                    artifact.sha256.is_none()
                        && matches!(
                            classify(&artifact.base_dir, &artifact.source),
                            Ok(ArtifactSource::Remote(_))
                        )
                });
            options.includes(&environment.name) && on_hosts && unpinned_remote
        })
        .map(|deployment| deployment.address.clone())
        .collect();
    if wanted.is_empty() {
        return Ok(());
    }
    let http = crate::http::Client::for_config(config)
        .map_err(|e| vec![format!("cannot fetch artifacts: {e}")])?;
    let fetcher = Fetcher::new(http, config.ca_file.as_deref());
    let cache = Cache::new(cache_dir);
    // Each source is fetched once, however many deployments send it.
    let mut resolved: BTreeMap<String, Result<Resolved, ArtifactError>> = BTreeMap::new();
    let mut errors = Vec::new();
    for address in &wanted {
        let artifact = config.deployments[address]
            .service
            .artifact
            .clone()
            .expect("selected above");
        if !resolved.contains_key(&artifact.source) {
            let outcome = fetcher.resolve(&artifact, &cache).await;
            resolved.insert(artifact.source.clone(), outcome);
        }
        match &resolved[&artifact.source] {
            Ok(found) => {
                let pinned = config
                    .deployments
                    .get_mut(address)
                    .and_then(|d| d.service.artifact.as_mut())
                    .expect("selected above");
                pinned.sha256 = Some(found.sha256.clone());
                pinned.image_digest = found.image_digest.clone();
                pinned.pinned_by_plan = true;
            }
            Err(error) => errors.push(format!("{address}: {}", config.mask(&error.to_string()))),
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

fn remote_source(artifact: &Artifact) -> Result<RemoteSource, ArtifactError> {
    match classify(&artifact.base_dir, &artifact.source) {
        Ok(ArtifactSource::Remote(source)) => Ok(source),
        Ok(_) => unreachable!("only remote sources are fetched"),
        Err(problem) => Err(ArtifactError::Source {
            source_text: display_source(&artifact.source),
            problem,
        }),
    }
}

/// What an HTTP status other than 2xx and 304 means for an artifact.
fn refused_text(status: u16) -> String {
    match status {
        401 | 403 => format!(
            "the server refused access (HTTP {status}); give credentials with `headers` \
             (for example Authorization) or `username` / `password` in the artifact block"
        ),
        404 | 410 => format!(
            "the server has no such artifact (HTTP {status}); check the URL and the version"
        ),
        _ => format!("the server answered HTTP {status}"),
    }
}

/// An S3 error in words that say what to do.
fn s3_error_text(status: Option<u16>, detail: &str) -> String {
    match status {
        Some(404) if detail.contains("NoSuchBucket") => {
            format!("the bucket does not exist ({detail})")
        }
        Some(404) => {
            format!("the bucket has no such key; check the source and the version ({detail})")
        }
        Some(401 | 403) => format!(
            "access denied ({detail}); slipway takes AWS credentials from the standard chain \
             (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, a profile, SSO, or a role)"
        ),
        _ => detail.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_say_what_to_do() {
        assert!(refused_text(401).contains("headers"));
        assert!(refused_text(404).contains("check the URL"));
        assert_eq!(refused_text(500), "the server answered HTTP 500");
        assert!(s3_error_text(Some(404), "NoSuchKey: x").contains("no such key"));
        assert!(s3_error_text(Some(404), "NoSuchBucket: x").contains("bucket does not exist"));
    }
}
