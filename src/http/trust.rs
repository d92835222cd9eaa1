//! Certificate authorities for HTTPS: reading a `ca_file` (PEM). Pure file
//! reading and PEM decoding, so that `validate` can check the file without
//! the TLS stack; the client turns the certificates into trust anchors.

use std::path::{Path, PathBuf};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

/// Why a `ca_file` cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CaFileError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is not a PEM file: {problem}", path.display())]
    Pem { path: PathBuf, problem: String },
    #[error("{} holds no certificate (a PEM block \"-----BEGIN CERTIFICATE-----\")", path.display())]
    Empty { path: PathBuf },
}

/// The certificates of the PEM file at `path`, in order; at least one.
/// Other PEM blocks (keys, CRLs) are ignored.
pub fn read_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, CaFileError> {
    let bytes = std::fs::read(path).map_err(|source| CaFileError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| CaFileError::Pem {
            path: path.to_path_buf(),
            problem: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(CaFileError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed certificate (any DER will do for PEM decoding).
    const PEM: &str =
        "-----BEGIN CERTIFICATE-----\nMIIBhTCCASugAwIBAgIUQ2l0ZXN0\n-----END CERTIFICATE-----\n";

    #[test]
    fn a_pem_file_gives_its_certificates_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, format!("# two CAs\n{PEM}\n{PEM}")).unwrap();
        assert_eq!(read_ca_file(&path).unwrap().len(), 2);
    }

    #[test]
    fn a_missing_empty_or_broken_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let error = read_ca_file(&missing).unwrap_err().to_string();
        assert!(
            error.starts_with("cannot read ") && error.contains("missing.pem"),
            "{error}"
        );

        let empty = dir.path().join("key.pem");
        std::fs::write(&empty, "just text\n").unwrap();
        let error = read_ca_file(&empty).unwrap_err().to_string();
        assert!(error.contains("key.pem holds no certificate"), "{error}");

        let broken = dir.path().join("broken.pem");
        std::fs::write(
            &broken,
            "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let error = read_ca_file(&broken).unwrap_err().to_string();
        assert!(error.contains("broken.pem is not a PEM file"), "{error}");
    }
}
