//! [`Client`]: reqwest on rustls (aws-lc-rs) with slipway's trusted roots.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use super::trust::{read_ca_file, CaFileError};

/// The largest answer read; a larger one is an error (gates and Prometheus
/// answers are small, a webhook's answer is not read beyond its first line).
pub const MAX_BODY: usize = 16 * 1024 * 1024;

/// Redirects a GET follows (a POST follows none).
const MAX_REDIRECTS: usize = 5;

const USER_AGENT: &str = concat!("slipway/", env!("CARGO_PKG_VERSION"));

/// Why a request got no answer, or the client could not be made. The texts
/// never hold the URL.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// `slipway { ca_file }` cannot be used.
    #[error("ca_file: {0}")]
    CaFile(#[from] CaFileError),
    /// A certificate of `ca_file` is not a usable trust anchor.
    #[error("ca_file {}: certificate {index} cannot be trusted: {problem}", path.display())]
    CaCertificate {
        path: PathBuf,
        index: usize,
        problem: String,
    },
    /// `SSL_CERT_FILE` / `SSL_CERT_DIR` name certificates that cannot be read.
    #[error("{0}")]
    SystemRoots(String),
    /// The URL cannot be requested.
    #[error("not a URL slipway can request: {0}")]
    BadUrl(String),
    /// No connection: refused, unreachable, the name does not resolve.
    #[error("could not connect: {0}")]
    Connect(String),
    /// The server's certificate was refused.
    #[error(
        "the server's certificate is not trusted: {0}; if a private certificate authority \
         issued it, give that CA's certificate (PEM) with ca_file in the slipway block or \
         with the SSL_CERT_FILE environment variable"
    )]
    Certificate(String),
    /// The TLS handshake failed for another reason.
    #[error("TLS handshake failed: {0}")]
    Tls(String),
    /// No complete answer within the timeout.
    #[error("no answer within {}", humanize(*.0))]
    Timeout(Duration),
    /// The answer is larger than [`MAX_BODY`].
    #[error("the answer is larger than {} MiB", MAX_BODY / (1024 * 1024))]
    TooLarge,
    /// The connection broke during the exchange.
    #[error("{0}")]
    Transport(String),
}

impl HttpError {
    /// Whether another attempt could get an answer: no connection, a
    /// timeout or a broken connection. A refused certificate, a bad URL or a
    /// configuration problem stays as it is.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            HttpError::Connect(_) | HttpError::Timeout(_) | HttpError::Transport(_)
        )
    }
}

/// An answer: its status and body (lossily UTF-8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub body: String,
}

/// The HTTP client. Cheap to make once the trusted roots are loaded (they
/// are loaded once per process and `ca_file`); make one where requests
/// start, on the tokio runtime that runs them.
#[derive(Clone)]
pub struct Client {
    /// For GETs: follows up to [`MAX_REDIRECTS`] redirects.
    follow: reqwest::Client,
    /// For POSTs: a redirect is the answer.
    exact: reqwest::Client,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Client")
    }
}

impl Client {
    /// A client trusting the system's roots (or `SSL_CERT_FILE` /
    /// `SSL_CERT_DIR`) and the certificates of `ca_file`.
    pub fn new(ca_file: Option<&Path>) -> Result<Client, HttpError> {
        let tls = tls_config(ca_file)?;
        let build = |redirects: reqwest::redirect::Policy| {
            reqwest::Client::builder()
                .tls_backend_preconfigured(rustls::ClientConfig::clone(&tls))
                .user_agent(USER_AGENT)
                .redirect(redirects)
                // As before: no proxy from the environment.
                .no_proxy()
                // No connection outlives its request: requests are rare, and
                // a pooled connection would belong to the runtime that made it.
                .pool_max_idle_per_host(0)
                .build()
                .map_err(|e| HttpError::Tls(chain_text(&e)))
        };
        Ok(Client {
            follow: build(reqwest::redirect::Policy::limited(MAX_REDIRECTS))?,
            exact: build(reqwest::redirect::Policy::none())?,
        })
    }

    /// The client for `config`: trusting its `ca_file` too.
    pub fn for_config(config: &crate::config::Config) -> Result<Client, HttpError> {
        Client::new(config.ca_file.as_deref())
    }

    /// GET `url` with `query` parameters added (encoded here).
    pub async fn get(
        &self,
        url: &str,
        query: &[(&str, &str)],
        timeout: Duration,
    ) -> Result<Response, HttpError> {
        let mut parsed = url::Url::parse(url).map_err(|e| HttpError::BadUrl(e.to_string()))?;
        if !query.is_empty() {
            parsed.query_pairs_mut().extend_pairs(query);
        }
        let request = self.follow.get(parsed).timeout(timeout);
        read(request.send().await, timeout).await
    }

    /// GET `url` and stream its body into `sink`, however large. `idle` bounds
    /// connecting and every wait for the next bytes (a large artifact takes
    /// as long as it takes, a stalled one fails). Up to [`MAX_REDIRECTS`]
    /// redirects are followed here, not by reqwest: the request's headers
    /// and basic auth (credentials) go only to the origin (scheme, host and
    /// port) of `url`, never to another one a redirect leads to. A body
    /// shorter than its `Content-Length` is an error.
    pub async fn download(
        &self,
        url: &str,
        request: &DownloadRequest,
        idle: Duration,
        sink: &mut (dyn FnMut(&[u8]) -> std::io::Result<()> + Send),
    ) -> Result<Downloaded, HttpError> {
        let first = url::Url::parse(url).map_err(|e| HttpError::BadUrl(e.to_string()))?;
        let mut next = first.clone();
        let mut redirects = 0;
        let mut response = loop {
            let mut builder = self.exact.get(next.clone());
            if next.origin() == first.origin() {
                for (name, value) in &request.headers {
                    builder = builder.header(name.as_str(), value.as_str());
                }
                if let Some((user, password)) = &request.basic_auth {
                    builder = builder.basic_auth(user, Some(password));
                }
            }
            if let Some(etag) = &request.if_none_match {
                builder = builder.header("If-None-Match", etag.as_str());
            }
            if let Some(date) = &request.if_modified_since {
                builder = builder.header("If-Modified-Since", date.as_str());
            }
            let sent = tokio::time::timeout(idle, builder.send())
                .await
                .map_err(|_| HttpError::Timeout(idle))?;
            let response = sent.map_err(|e| classify(&e, idle))?;
            let location = response
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .filter(|_| matches!(response.status().as_u16(), 301 | 302 | 303 | 307 | 308));
            let Some(location) = location else {
                break response;
            };
            redirects += 1;
            if redirects > MAX_REDIRECTS {
                return Err(HttpError::BadUrl(format!(
                    "more than {MAX_REDIRECTS} redirects"
                )));
            }
            next = next
                .join(location)
                .map_err(|e| HttpError::BadUrl(format!("a redirect to an invalid URL ({e})")))?;
        };
        let status = response.status().as_u16();
        if status == 304 {
            return Ok(Downloaded::NotModified);
        }
        if !(200..300).contains(&status) {
            return Ok(Downloaded::Refused { status });
        }
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let (etag, last_modified) = (header("etag"), header("last-modified"));
        let expected = response.content_length();
        let mut length = 0u64;
        loop {
            let chunk = tokio::time::timeout(idle, response.chunk())
                .await
                .map_err(|_| HttpError::Timeout(idle))?
                .map_err(|e| match classify(&e, idle) {
                    HttpError::Transport(text) => HttpError::Transport(format!(
                        "the download broke off after {length} bytes: {text}"
                    )),
                    other => other,
                })?;
            let Some(chunk) = chunk else { break };
            length += chunk.len() as u64;
            sink(&chunk)
                .map_err(|e| HttpError::Transport(format!("cannot store the body: {e}")))?;
        }
        if let Some(expected) = expected.filter(|&e| e != length) {
            return Err(HttpError::Transport(format!(
                "the connection closed after {length} of {expected} bytes"
            )));
        }
        Ok(Downloaded::Complete {
            etag,
            last_modified,
            length,
        })
    }

    /// POST `body` as `application/json` to `url`; redirects are not
    /// followed.
    pub async fn post_json(
        &self,
        url: &str,
        body: String,
        timeout: Duration,
    ) -> Result<Response, HttpError> {
        let parsed = url::Url::parse(url).map_err(|e| HttpError::BadUrl(e.to_string()))?;
        let request = self
            .exact
            .post(parsed)
            .header("Content-Type", "application/json")
            .body(body)
            .timeout(timeout);
        read(request.send().await, timeout).await
    }
}

/// What a download sends besides the URL: extra headers (an artifact
/// repository's token), basic auth, and the validators of a copy the caller
/// already has (`If-None-Match` / `If-Modified-Since`).
#[derive(Debug, Clone, Default)]
pub struct DownloadRequest {
    pub headers: Vec<(String, String)>,
    pub basic_auth: Option<(String, String)>,
    pub if_none_match: Option<String>,
    pub if_modified_since: Option<String>,
}

/// How a download ended, when the server answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Downloaded {
    /// 2xx: the whole body went to the sink. The validators let the next
    /// download ask "has it changed?".
    Complete {
        etag: Option<String>,
        last_modified: Option<String>,
        length: u64,
    },
    /// 304: the copy the caller has is current.
    NotModified,
    /// Any other status; nothing went to the sink.
    Refused { status: u16 },
}

/// The status and the body (at most [`MAX_BODY`] bytes) of an answer.
async fn read(
    sent: Result<reqwest::Response, reqwest::Error>,
    timeout: Duration,
) -> Result<Response, HttpError> {
    let mut response = sent.map_err(|e| classify(&e, timeout))?;
    let status = response.status().as_u16();
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| classify(&e, timeout))? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(HttpError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Response {
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// What a reqwest error means, in words without the URL.
fn classify(error: &reqwest::Error, timeout: Duration) -> HttpError {
    if let Some(tls) = rustls_error(error) {
        return match tls {
            rustls::Error::InvalidCertificate(problem) => {
                HttpError::Certificate(certificate_text(problem))
            }
            other => HttpError::Tls(other.to_string()),
        };
    }
    if error.is_timeout() {
        return HttpError::Timeout(timeout);
    }
    if error.is_builder() {
        return HttpError::BadUrl(chain_text(error));
    }
    if error.is_connect() {
        return HttpError::Connect(innermost_text(error));
    }
    HttpError::Transport(chain_text(error))
}

/// The rustls error somewhere in `error`'s causes (hyper-rustls puts it in
/// an `io::Error` inside another).
fn rustls_error(error: &reqwest::Error) -> Option<&rustls::Error> {
    causes(error)
        .into_iter()
        .find_map(|cause| cause.downcast_ref::<rustls::Error>())
}

/// `error` and its causes, outermost first. An `io::Error`'s `source` skips
/// the error it wraps (it returns that error's source); here the wrapped
/// error comes next.
fn causes<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> Vec<&'a (dyn std::error::Error + 'static)> {
    let mut all = vec![error];
    let mut current = error;
    loop {
        let next = match current.downcast_ref::<std::io::Error>() {
            Some(io) => io
                .get_ref()
                .map(|inner| inner as &(dyn std::error::Error + 'static)),
            None => current.source(),
        };
        match next {
            Some(next) if all.len() < 32 => {
                all.push(next);
                current = next;
            }
            _ => return all,
        }
    }
}

fn certificate_text(problem: &rustls::CertificateError) -> String {
    use rustls::CertificateError as E;
    match problem {
        E::UnknownIssuer => "it was issued by an unknown certificate authority".into(),
        E::BadSignature => "its signature does not verify".into(),
        E::Expired | E::ExpiredContext { .. } => format!("it has expired ({problem})"),
        E::NotValidYet | E::NotValidYetContext { .. } => {
            format!("it is not valid yet ({problem})")
        }
        E::NotValidForName | E::NotValidForNameContext { .. } => {
            format!("it is not valid for this host name ({problem})")
        }
        other => other.to_string(),
    }
}

/// The innermost cause's message: for a connection, what the system said
/// ("Connection refused (os error 111)").
fn innermost_text(error: &reqwest::Error) -> String {
    causes(error)
        .last()
        .map(|cause| cause.to_string())
        .unwrap_or_default()
}

/// Every cause's message, outermost first, without reqwest's own (which
/// names the URL) and without repeats.
fn chain_text(error: &reqwest::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in causes(error).into_iter().skip(1) {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
    }
    if parts.is_empty() {
        // Only reqwest's own message; drop its URL.
        let mut text = error.to_string();
        if let Some(at) = text.find(" for url (") {
            text.truncate(at);
        }
        parts.push(text);
    }
    parts.join(": ")
}

fn humanize(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis.is_multiple_of(1000) {
        format!("{}s", millis / 1000)
    } else {
        format!("{millis}ms")
    }
}

/// The rustls configuration trusting the system's roots and `ca_file`'s
/// certificates, made once per process and `ca_file`.
fn tls_config(ca_file: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, HttpError> {
    type Cache = Mutex<Vec<(Option<PathBuf>, Arc<rustls::ClientConfig>)>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(Vec::new()));
    let key = ca_file.map(Path::to_path_buf);
    if let Some((_, config)) = cache
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .find(|(k, _)| *k == key)
    {
        return Ok(config.clone());
    }
    let mut roots = system_roots()?;
    if let Some(path) = ca_file {
        for (index, cert) in read_ca_file(path)?.into_iter().enumerate() {
            roots
                .add(cert)
                .map_err(|problem| HttpError::CaCertificate {
                    path: path.to_path_buf(),
                    index: index + 1,
                    problem: problem.to_string(),
                })?;
        }
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| HttpError::Tls(e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let config = Arc::new(config);
    cache
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((key, config.clone()));
    Ok(config)
}

/// The system's root certificates, or `SSL_CERT_FILE`'s / `SSL_CERT_DIR`'s
/// when set; a set variable whose certificates cannot be read is an error
/// (the system's unreadable files are skipped).
fn system_roots() -> Result<rustls::RootCertStore, HttpError> {
    let loaded = rustls_native_certs::load_native_certs();
    let from_environment: Vec<String> = ["SSL_CERT_FILE", "SSL_CERT_DIR"]
        .into_iter()
        .filter_map(|name| {
            std::env::var_os(name).map(|value| format!("{name}={}", value.to_string_lossy()))
        })
        .collect();
    if !from_environment.is_empty() && !loaded.errors.is_empty() {
        let problems: Vec<String> = loaded.errors.iter().map(|e| e.to_string()).collect();
        return Err(HttpError::SystemRoots(format!(
            "{}: {}",
            from_environment.join(", "),
            problems.join("; ")
        )));
    }
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(loaded.certs);
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server on loopback that answers each of `answers` in turn (one
    /// connection each) and returns the requests it read.
    fn serve(answers: Vec<String>) -> (u16, std::thread::JoinHandle<Vec<String>>) {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let mut requests = Vec::new();
            for answer in answers {
                let (mut stream, _) = listener.accept().unwrap();
                let mut request = [0u8; 8192];
                let n = stream.read(&mut request).unwrap();
                requests.push(String::from_utf8_lossy(&request[..n]).to_string());
                stream.write_all(answer.as_bytes()).unwrap();
            }
            requests
        });
        (port, server)
    }

    #[tokio::test]
    async fn a_download_sends_its_credentials_only_to_its_own_origin() {
        let ok = "HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbody";
        let (elsewhere, other) = serve(vec![ok.to_string()]);
        let redirect = |to: String| {
            format!("HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        };
        let (port, own) = serve(vec![
            redirect("/files/app.tar.gz".into()),
            redirect(format!("http://127.0.0.1:{elsewhere}/blob")),
        ]);
        let request = DownloadRequest {
            headers: vec![("PRIVATE-TOKEN".into(), "tok-3c1f9e".into())],
            basic_auth: Some(("deploy".into(), "pw-3c1f9e".into())),
            if_none_match: Some("\"v1\"".into()),
            if_modified_since: None,
        };
        let mut body = Vec::new();
        let downloaded = Client::new(None)
            .unwrap()
            .download(
                &format!("http://127.0.0.1:{port}/redirect/app.tar.gz"),
                &request,
                Duration::from_secs(10),
                &mut |chunk| {
                    body.extend_from_slice(chunk);
                    Ok(())
                },
            )
            .await
            .unwrap();
        assert!(
            matches!(downloaded, Downloaded::Complete { length: 4, .. }),
            "{downloaded:?}"
        );
        assert_eq!(body, b"body");
        let own = own.join().unwrap();
        assert!(own[1].starts_with("GET /files/app.tar.gz "), "{}", own[1]);
        for request in &own {
            assert!(request.contains("tok-3c1f9e"), "{request}");
            assert!(
                request
                    .to_ascii_lowercase()
                    .contains("authorization: basic"),
                "{request}"
            );
        }
        let other = other.join().unwrap();
        assert!(other[0].starts_with("GET /blob "), "{}", other[0]);
        assert!(!other[0].contains("tok-3c1f9e"), "{}", other[0]);
        assert!(
            !other[0].to_ascii_lowercase().contains("authorization"),
            "{}",
            other[0]
        );
        assert!(other[0].contains("\"v1\""), "{}", other[0]);
    }

    #[tokio::test]
    async fn a_refused_connection_is_transient_and_does_not_name_the_url() {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let client = Client::new(None).unwrap();
        let url = format!("http://127.0.0.1:{port}/hooks/SECRET-TOKEN");
        let error = client
            .post_json(&url, "{}".into(), Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(error.is_transient(), "{error:?}");
        let text = error.to_string();
        assert!(text.starts_with("could not connect: "), "{text}");
        assert!(text.contains("refused"), "{text}");
        assert!(!text.contains("SECRET-TOKEN"), "{text}");
    }

    #[tokio::test]
    async fn a_status_is_an_answer_and_the_query_is_encoded() {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut request = [0u8; 4096];
            let n = stream.read(&mut request).unwrap();
            stream
                .write_all(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbusy")
                .unwrap();
            String::from_utf8_lossy(&request[..n]).to_string()
        });
        let client = Client::new(None).unwrap();
        let answer = client
            .get(
                &format!("http://127.0.0.1:{port}/api/v1/query"),
                &[("query", "sum(x{a=\"b c\"})")],
                Duration::from_secs(5),
            )
            .await
            .unwrap();
        assert_eq!(
            answer,
            Response {
                status: 503,
                body: "busy".into()
            }
        );
        let request = server.join().unwrap();
        assert!(
            request
                .starts_with("GET /api/v1/query?query=sum%28x%7Ba%3D%22b+c%22%7D%29 HTTP/1.1\r\n"),
            "{request}"
        );
        assert!(request.contains(USER_AGENT), "{request}");
    }

    #[tokio::test]
    async fn a_silent_server_times_out() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let client = Client::new(None).unwrap();
        let error = client
            .get(
                &format!("http://127.0.0.1:{port}/"),
                &[],
                Duration::from_millis(300),
            )
            .await
            .unwrap_err();
        drop(listener);
        assert!(matches!(error, HttpError::Timeout(_)), "{error:?}");
        assert_eq!(error.to_string(), "no answer within 300ms");
        assert!(error.is_transient());
    }

    #[test]
    fn a_bad_ca_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("not-a-ca.pem");
        std::fs::write(&path, "hello\n").unwrap();
        let error = Client::new(Some(&path)).unwrap_err().to_string();
        assert!(
            error.contains("not-a-ca.pem holds no certificate"),
            "{error}"
        );
    }
}
