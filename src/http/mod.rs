//! The one HTTP client of slipway. Gates' `http` checks, Prometheus
//! queries, health `url`s checked from the runner and notification webhooks
//! and artifact downloads all go through [`Client`].
//!
//! - TLS is rustls with the crypto provider the AWS SDK already links
//!   (aws-lc-rs), so no second TLS stack is compiled.
//! - Trusted roots ([`trust`]): the system's root certificates, or those of
//!   `SSL_CERT_FILE` / `SSL_CERT_DIR` when either is set (as OpenSSL and curl
//!   do), plus the certificates of the configuration's `slipway { ca_file }`.
//! - Requests are async on the caller's tokio runtime; one timeout covers a
//!   request from connecting to the last byte of the answer.
//! - A status code is an answer, never an error. An [`HttpError`] says what
//!   went wrong without the URL (callers decide how much of it may be shown:
//!   a webhook's path may hold its token) and whether another attempt could
//!   help ([`HttpError::is_transient`]).
//!
//! Not here: retries and what an answer means (each caller has its own
//! rules), and reading `ca_file` for validation (the configuration loader
//! calls [`trust::read_ca_file`]).

#[cfg(feature = "aws")]
mod client;
pub mod trust;

/// Make aws-lc-rs the process's rustls crypto provider, for libraries that
/// build their own rustls configuration (oci-client); slipway's own client
/// passes its provider explicitly. Idempotent.
#[cfg(feature = "aws")]
pub fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

#[cfg(feature = "aws")]
pub use client::{Client, DownloadRequest, Downloaded, HttpError, Response, MAX_BODY};
