//! TLS for Starling's QUIC connections: the one crypto provider (rustls on
//! *ring*), the ALPN protocol name, how a certificate file is read, and
//! what goes wrong (the server's certificate is in `server.rs`).
//!
//! The whole build uses *ring* (ureq's rustls already does). Every Starling
//! configuration is built with [`crypto_provider`] explicitly, so linking
//! another provider elsewhere can never change what Starling connections
//! use; [`install_default_provider`] makes *ring* the process default too,
//! for clients that take the default (the S3 artifact store's HTTPS).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use thiserror::Error;

use crate::secret_file::SecretFileError;

/// The ALPN protocol name of Starling's wire protocol, version 1. Both sides
/// refuse a connection that does not negotiate it.
pub const ALPN: &[u8] = b"starling/1";

/// The rustls crypto provider every Starling TLS configuration uses: *ring*.
pub fn crypto_provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    Arc::clone(PROVIDER.get_or_init(|| Arc::new(rustls::crypto::ring::default_provider())))
}

/// Makes [`crypto_provider`] the process-wide default rustls provider, unless
/// one is set already.
pub fn install_default_provider() {
    if CryptoProvider::get_default().is_none() {
        // Losing a race to another thread installing one is fine: either way
        // a default is set.
        let _ = CryptoProvider::install_default(rustls::crypto::ring::default_provider());
    }
}

/// Why a certificate, key or trust setting could not be used.
#[derive(Debug, Error)]
pub enum TlsError {
    /// The private key file could not be created or read, or its permissions are too open.
    #[error(transparent)]
    SecretFile(#[from] SecretFileError),
    /// A certificate file or directory could not be read or written.
    #[error("cannot access {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the operating system reported.
        #[source]
        source: io::Error,
    },
    /// A PEM file holds no usable certificate or key.
    #[error("{path} is not usable: {reason}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Only one of the server's certificate and key files exists.
    #[error(
        "found {present} but not {missing}; restore the missing file from a backup, or delete {present} \
         to generate a new certificate (clients that pinned the old one must then be given the new fingerprint)"
    )]
    IncompleteServerIdentity {
        /// The file that exists.
        present: PathBuf,
        /// The file that does not.
        missing: PathBuf,
    },
    /// Generating the self-signed certificate failed.
    #[cfg(any(test, feature = "server"))]
    #[error("cannot generate a self-signed certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// rustls refused the certificate and key, for example because they do not belong together.
    #[error("the TLS configuration was refused: {0}; check that the private key belongs to the certificate")]
    Rustls(#[from] rustls::Error),
    /// The crypto provider lacks the cipher suite QUIC's initial packets need.
    #[error("the TLS crypto provider lacks TLS13_AES_128_GCM_SHA256, which QUIC requires; this is a build problem")]
    NoQuicCipherSuite,
    /// A CA trust setting holds no certificate.
    #[error("no CA certificate to trust was given; pass at least one root certificate (PEM)")]
    NoCaRoots,
}

/// Every certificate in the PEM file at `path`; at least one.
pub(crate) fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = fs::read(path).map_err(|source| TlsError::Io { path: path.to_owned(), source })?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| TlsError::Pem { path: path.to_owned(), reason: error.to_string() })?;
    if chain.is_empty() {
        return Err(TlsError::Pem {
            path: path.to_owned(),
            reason: "it holds no `BEGIN CERTIFICATE` section; give a PEM certificate file".to_owned(),
        });
    }
    Ok(chain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_pem_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("cert.pem");
        fs::write(&cert, "not a certificate\n").unwrap();
        let err = read_certificates(&cert).unwrap_err();
        assert!(matches!(err, TlsError::Pem { .. }), "{err}");
    }
}
