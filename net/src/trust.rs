//! How a client decides to trust a server: a pinned fingerprint, trust on
//! first use, or a certificate authority.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use crate::fingerprint::Fingerprint;
use crate::known_hosts::KnownHosts;
use crate::tls::{ALPN, TlsError, crypto_provider, read_certificates};

/// Which servers a client accepts.
#[derive(Debug, Clone)]
pub enum Trust {
    /// Accept exactly the server whose leaf certificate has this fingerprint
    /// (printed by the coordinator at start-up). The name in the certificate
    /// and its validity dates are not checked: the pin is the identity.
    Pinned(Fingerprint),
    /// Like SSH: the first time a `host:port` is reached, remember the
    /// fingerprint it presents in `known_hosts`; from then on accept only that
    /// fingerprint, and fail loudly if it changes.
    TrustOnFirstUse {
        /// The known-hosts file (created on first use).
        known_hosts: PathBuf,
    },
    /// Accept servers whose certificate chains to one of these roots and
    /// names the host being connected to (ordinary web PKI rules).
    CaRoots(Vec<CertificateDer<'static>>),
}

impl Trust {
    /// Trust the CA certificates in the PEM file at `path`.
    pub fn ca_pem_file(path: impl AsRef<Path>) -> Result<Self, TlsError> {
        Ok(Self::CaRoots(read_certificates(path.as_ref())?))
    }
}

/// [`Trust`] turned into what a connection attempt needs.
#[derive(Debug)]
pub(crate) enum PreparedTrust {
    Pinned(Fingerprint),
    TrustOnFirstUse(KnownHosts),
    Ca(Arc<rustls::ClientConfig>),
}

impl PreparedTrust {
    pub(crate) fn new(trust: Trust) -> Result<Self, TlsError> {
        Ok(match trust {
            Trust::Pinned(fingerprint) => Self::Pinned(fingerprint),
            Trust::TrustOnFirstUse { known_hosts } => Self::TrustOnFirstUse(KnownHosts::new(known_hosts)),
            Trust::CaRoots(roots) => {
                if roots.is_empty() {
                    return Err(TlsError::NoCaRoots);
                }
                let mut store = rustls::RootCertStore::empty();
                for root in roots {
                    store.add(root)?;
                }
                let mut config = rustls::ClientConfig::builder_with_provider(crypto_provider())
                    .with_protocol_versions(&[&rustls::version::TLS13])?
                    .with_root_certificates(store)
                    .with_no_client_auth();
                config.alpn_protocols = vec![ALPN.to_vec()];
                Self::Ca(Arc::new(config))
            }
        })
    }
}

/// Accepts a server by the fingerprint of its leaf certificate (or, with no
/// expectation, any well-formed certificate: trust on first use), while still
/// checking that the server proves possession of that certificate's key.
///
/// One verifier serves one connection attempt, so it can report which
/// fingerprint that server presented.
#[derive(Debug)]
pub(crate) struct FingerprintVerifier {
    expected: Option<Fingerprint>,
    presented: Mutex<Option<Fingerprint>>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl FingerprintVerifier {
    pub(crate) fn new(expected: Option<Fingerprint>) -> Arc<Self> {
        Arc::new(Self {
            expected,
            presented: Mutex::new(None),
            algorithms: crypto_provider().signature_verification_algorithms,
        })
    }

    /// The fingerprint the server presented, once the handshake got that far.
    pub(crate) fn presented(&self) -> Option<Fingerprint> {
        *self.presented.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A TLS 1.3 client configuration (ALPN [`ALPN`]) that trusts through this verifier.
    pub(crate) fn client_config(self: &Arc<Self>) -> Result<rustls::ClientConfig, TlsError> {
        let verifier: Arc<dyn ServerCertVerifier> = Arc::clone(self) as _;
        let mut config = rustls::ClientConfig::builder_with_provider(crypto_provider())
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        config.alpn_protocols = vec![ALPN.to_vec()];
        Ok(config)
    }
}

impl ServerCertVerifier for FingerprintVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let fingerprint = Fingerprint::of(end_entity.as_ref());
        *self.presented.lock().unwrap_or_else(PoisonError::into_inner) = Some(fingerprint);
        // Parse it anyway: the signature checks below need its public key, and
        // a certificate that does not parse must not be remembered on first use.
        rustls::server::ParsedCertificate::try_from(end_entity)?;
        match self.expected {
            Some(expected) if expected != fingerprint => {
                Err(rustls::Error::InvalidCertificate(rustls::CertificateError::ApplicationVerificationFailure))
            }
            _ => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_ca_list_is_refused() {
        let err = PreparedTrust::new(Trust::CaRoots(Vec::new())).unwrap_err();
        assert!(matches!(err, TlsError::NoCaRoots), "{err}");
    }

    #[test]
    fn the_verifier_records_what_it_was_shown_and_compares_it() {
        let identity = crate::server::ServerIdentity::ephemeral().unwrap();
        let leaf = &identity.certificate_chain()[0];
        let name = ServerName::try_from("localhost").unwrap();
        let now = UnixTime::now();

        let pinned = FingerprintVerifier::new(Some(identity.fingerprint()));
        assert!(pinned.verify_server_cert(leaf, &[], &name, &[], now).is_ok());
        assert_eq!(pinned.presented(), Some(identity.fingerprint()));

        let wrong = FingerprintVerifier::new(Some(Fingerprint::of(b"another certificate")));
        assert!(wrong.verify_server_cert(leaf, &[], &name, &[], now).is_err());
        assert_eq!(wrong.presented(), Some(identity.fingerprint()));

        let garbage = CertificateDer::from(vec![0u8; 16]);
        let first_use = FingerprintVerifier::new(None);
        assert!(first_use.verify_server_cert(&garbage, &[], &name, &[], now).is_err(), "unparsable leaf");
        assert!(first_use.verify_server_cert(leaf, &[], &name, &[], now).is_ok());
    }
}
