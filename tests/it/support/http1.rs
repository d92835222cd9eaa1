//! A minimal blocking HTTP/1.0 client for the test harnesses' own requests
//! to plain-HTTP servers on loopback: readiness probes, Prometheus queries,
//! moto's control and EC2 APIs. slipway's own requests go through its client
//! (`slipway::http`); this is only the harnesses' side.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// An answer: status and body.
pub struct Answer {
    pub status: u16,
    pub body: String,
}

/// GET `url` (with `query` parameters added).
pub fn get(url: &str, query: &[(&str, &str)], timeout: Duration) -> Result<Answer, String> {
    let mut url = url::Url::parse(url).map_err(|e| format!("{url}: {e}"))?;
    if !query.is_empty() {
        url.query_pairs_mut().extend_pairs(query);
    }
    request("GET", &url, &[], b"", timeout)
}

/// POST `body` with `headers` to `url`.
pub fn post(
    url: &str,
    headers: &[(&str, &str)],
    body: &str,
    timeout: Duration,
) -> Result<Answer, String> {
    let url = url::Url::parse(url).map_err(|e| format!("{url}: {e}"))?;
    request("POST", &url, headers, body.as_bytes(), timeout)
}

/// POST `form` URL-encoded to `url`.
pub fn post_form(
    url: &str,
    headers: &[(&str, &str)],
    form: &[(&str, &str)],
    timeout: Duration,
) -> Result<Answer, String> {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let mut all = headers.to_vec();
    all.push(("Content-Type", "application/x-www-form-urlencoded"));
    post(url, &all, &body, timeout)
}

fn request(
    method: &str,
    url: &url::Url,
    headers: &[(&str, &str)],
    body: &[u8],
    timeout: Duration,
) -> Result<Answer, String> {
    if url.scheme() != "http" {
        return Err(format!("{url}: only http:// here"));
    }
    let host = url.host_str().ok_or_else(|| format!("{url}: no host"))?;
    let port = url.port_or_known_default().unwrap_or(80);
    let address = std::net::ToSocketAddrs::to_socket_addrs(&(host, port))
        .map_err(|e| format!("{url}: {e}"))?
        .next()
        .ok_or_else(|| format!("{url}: no address"))?;
    let mut stream =
        TcpStream::connect_timeout(&address, timeout).map_err(|e| format!("{url}: {e}"))?;
    stream.set_read_timeout(Some(timeout)).ok();
    stream.set_write_timeout(Some(timeout)).ok();
    let target = match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_string(),
    };
    let mut head = format!(
        "{method} {target} HTTP/1.0\r\nHost: {host}:{port}\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream
        .write_all(head.as_bytes())
        .and_then(|()| stream.write_all(body))
        .map_err(|e| format!("{method} {url}: {e}"))?;
    let mut answer = Vec::new();
    stream
        .read_to_end(&mut answer)
        .map_err(|e| format!("{method} {url}: {e}"))?;
    let text = String::from_utf8_lossy(&answer);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("{method} {url}: no complete answer: {text:?}"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("{method} {url}: no status in {head:?}"))?;
    Ok(Answer {
        status,
        body: body.to_string(),
    })
}
