//! The server's side of a QUIC endpoint: the certificate it presents
//! ([`ServerIdentity`], self-signed and kept on disk, or CA-issued) and the
//! endpoint and configuration built from it.
//!
//! Built with the `server` feature (the coordinator's), so that a client's
//! build never links certificate generation (rcgen).

use std::fmt;
use std::fs;
use std::net::SocketAddr;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use quinn::Endpoint;
use quinn::crypto::rustls::QuicServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::endpoint_error::EndpointError;
use crate::fingerprint::Fingerprint;
use crate::limits::Limits;
use crate::secret_file;
use crate::tls::{ALPN, TlsError, crypto_provider, read_certificates};

/// The certificate chain and private key a Starling server presents, with the
/// leaf certificate's [`Fingerprint`] that clients pin.
///
/// `Debug` shows the fingerprint only; the key never reaches logs.
#[derive(Clone)]
pub struct ServerIdentity {
    chain: Vec<CertificateDer<'static>>,
    fingerprint: Fingerprint,
    config: Arc<rustls::ServerConfig>,
}

impl ServerIdentity {
    /// File name of the certificate inside the directory given to [`ServerIdentity::load_or_create`].
    pub const CERT_FILE: &'static str = "server-cert.pem";
    /// File name of the private key (mode 0600) inside that directory.
    pub const KEY_FILE: &'static str = "server-key.pem";

    /// The self-signed identity kept in `dir`, created on first use.
    ///
    /// The first call generates an ECDSA P-256 key and a self-signed
    /// certificate and stores them as [`Self::CERT_FILE`] and
    /// [`Self::KEY_FILE`] (the key with mode 0600; `dir` is created with
    /// mode 0700 if missing). Every later call loads the same files, so the
    /// fingerprint clients pinned stays valid across restarts. A key file
    /// that group or others may read is refused.
    pub fn load_or_create(dir: impl AsRef<Path>) -> Result<Self, TlsError> {
        let dir = dir.as_ref();
        let cert_path = dir.join(Self::CERT_FILE);
        let key_path = dir.join(Self::KEY_FILE);
        match (cert_path.exists(), key_path.exists()) {
            (true, true) => {
                let chain = read_certificates(&cert_path)?;
                let key = parse_key(&key_path, &secret_file::read(&key_path)?)?;
                Self::new(chain, key)
            }
            (false, false) => {
                fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)
                    .map_err(|source| TlsError::Io { path: dir.to_owned(), source })?;
                let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])?;
                // The key goes first: a crash in between leaves a key without
                // a certificate, which the next start reports instead of
                // silently issuing a certificate with a new fingerprint.
                secret_file::create(&key_path, generated.signing_key.serialize_pem().as_bytes())?;
                fs::write(&cert_path, generated.cert.pem())
                    .map_err(|source| TlsError::Io { path: cert_path.clone(), source })?;
                let key = PrivateKeyDer::try_from(generated.signing_key.serialize_der())
                    .map_err(|reason| TlsError::Pem { path: key_path, reason: reason.to_owned() })?;
                Self::new(vec![generated.cert.der().clone()], key)
            }
            (true, false) => Err(TlsError::IncompleteServerIdentity { present: cert_path, missing: key_path }),
            (false, true) => Err(TlsError::IncompleteServerIdentity { present: key_path, missing: cert_path }),
        }
    }

    /// A CA-issued identity: `cert_chain` is a PEM file with the leaf
    /// certificate first and its intermediates after it, `key` a PEM private
    /// key (PKCS#8, PKCS#1 or SEC1).
    ///
    /// The key file's permissions are not checked here: CA tooling often
    /// shares keys with a group (for example `ssl-cert`) on purpose.
    pub fn from_pem_files(cert_chain: impl AsRef<Path>, key: impl AsRef<Path>) -> Result<Self, TlsError> {
        let chain = read_certificates(cert_chain.as_ref())?;
        let key_path = key.as_ref();
        let key_pem = fs::read(key_path).map_err(|source| TlsError::Io { path: key_path.to_owned(), source })?;
        Self::new(chain, parse_key(key_path, &key_pem)?)
    }

    /// A fresh self-signed identity held in memory only (for tests and
    /// throw-away servers): every call gives a new fingerprint.
    pub fn ephemeral() -> Result<Self, TlsError> {
        let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])?;
        let key = PrivateKeyDer::try_from(generated.signing_key.serialize_der())
            .map_err(|reason| TlsError::Pem { path: PathBuf::new(), reason: reason.to_owned() })?;
        Self::new(vec![generated.cert.der().clone()], key)
    }

    fn new(chain: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>) -> Result<Self, TlsError> {
        let fingerprint = Fingerprint::of(chain.first().map_or(&[][..], |leaf| leaf.as_ref()));
        // Building the configuration now checks that key and certificate
        // belong together, so a bad pair fails at start-up, not per connection.
        let mut config = rustls::ServerConfig::builder_with_provider(crypto_provider())
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_no_client_auth()
            .with_single_cert(chain.clone(), key)?;
        config.alpn_protocols = vec![ALPN.to_vec()];
        Ok(Self { chain, fingerprint, config: Arc::new(config) })
    }

    /// The SHA-256 fingerprint of the leaf certificate: what clients pin, and
    /// what the coordinator prints at start-up for operators to hand out.
    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }

    /// The certificate chain, leaf first.
    pub fn certificate_chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }

    /// The rustls server configuration (TLS 1.3 only, ALPN [`ALPN`]).
    pub(crate) fn rustls_config(&self) -> Arc<rustls::ServerConfig> {
        Arc::clone(&self.config)
    }
}

impl fmt::Debug for ServerIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerIdentity")
            .field("fingerprint", &self.fingerprint)
            .field("chain_len", &self.chain.len())
            .finish_non_exhaustive()
    }
}

fn parse_key(path: &Path, pem: &[u8]) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|error| TlsError::Pem {
        path: path.to_owned(),
        reason: format!("{error}; give a PEM private key (PKCS#8, PKCS#1 or SEC1)"),
    })
}

/// A QUIC server endpoint on `addr` (port 0 picks a free port; read it back
/// with [`Endpoint::local_addr`]) presenting `identity`, TLS 1.3 with ALPN
/// [`ALPN`] only. Must be called inside a tokio runtime.
pub fn server_endpoint(
    addr: SocketAddr,
    identity: &ServerIdentity,
    limits: &Limits,
) -> Result<Endpoint, EndpointError> {
    let config = server_config(identity, limits)?;
    Endpoint::server(config, addr).map_err(|source| EndpointError::Bind { addr, source })
}

/// The quinn server configuration [`server_endpoint`] uses. Pass it to
/// [`Endpoint::set_server_config`] to switch a running server to a renewed
/// certificate; connections already open keep the old one.
pub fn server_config(identity: &ServerIdentity, limits: &Limits) -> Result<quinn::ServerConfig, EndpointError> {
    let crypto = QuicServerConfig::try_from(identity.rustls_config()).map_err(|_| TlsError::NoQuicCipherSuite)?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    config.transport_config(limits.transport_config()?);
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    use crate::secret_file::SecretFileError;

    #[test]
    fn server_certificate_persists_across_starts() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("tls");
        let first = ServerIdentity::load_or_create(&state).unwrap();
        let key_mode = fs::metadata(state.join(ServerIdentity::KEY_FILE)).unwrap().permissions().mode();
        assert_eq!(key_mode & 0o777, 0o600);
        assert_eq!(fs::metadata(&state).unwrap().permissions().mode() & 0o777, 0o700);
        let second = ServerIdentity::load_or_create(&state).unwrap();
        assert_eq!(first.fingerprint(), second.fingerprint());
        assert_eq!(first.fingerprint(), Fingerprint::of(first.certificate_chain()[0].as_ref()));
        assert_ne!(first.fingerprint(), ServerIdentity::ephemeral().unwrap().fingerprint());
    }

    #[test]
    fn pem_files_load_like_a_ca_issued_pair() {
        let dir = tempfile::tempdir().unwrap();
        let created = ServerIdentity::load_or_create(dir.path()).unwrap();
        let loaded = ServerIdentity::from_pem_files(
            dir.path().join(ServerIdentity::CERT_FILE),
            dir.path().join(ServerIdentity::KEY_FILE),
        )
        .unwrap();
        assert_eq!(created.fingerprint(), loaded.fingerprint());
    }

    #[test]
    fn a_key_that_does_not_match_the_certificate_is_refused() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        ServerIdentity::load_or_create(a.path()).unwrap();
        ServerIdentity::load_or_create(b.path()).unwrap();
        let err = ServerIdentity::from_pem_files(
            a.path().join(ServerIdentity::CERT_FILE),
            b.path().join(ServerIdentity::KEY_FILE),
        )
        .unwrap_err();
        assert!(matches!(err, TlsError::Rustls(_)), "{err}");
    }

    #[test]
    fn half_an_identity_and_an_open_key_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        ServerIdentity::load_or_create(dir.path()).unwrap();
        let key = dir.path().join(ServerIdentity::KEY_FILE);
        fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).unwrap();
        let err = ServerIdentity::load_or_create(dir.path()).unwrap_err();
        assert!(matches!(err, TlsError::SecretFile(SecretFileError::TooOpen { .. })), "{err}");

        fs::remove_file(dir.path().join(ServerIdentity::CERT_FILE)).unwrap();
        let err = ServerIdentity::load_or_create(dir.path()).unwrap_err();
        assert!(matches!(err, TlsError::IncompleteServerIdentity { .. }), "{err}");
    }
}
