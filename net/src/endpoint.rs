//! QUIC client endpoints that connect under a [`Trust`] policy, and the
//! errors endpoints share (the server's side is in `server.rs`).

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use quinn::crypto::rustls::{HandshakeData, QuicClientConfig};
use quinn::{Connection, ConnectionError, Endpoint, TransportConfig, TransportErrorCode, VarInt};
use thiserror::Error;

use crate::endpoint_error::EndpointError;
use crate::fingerprint::Fingerprint;
use crate::known_hosts::KnownHostsError;
use crate::limits::Limits;
use crate::tls::{ALPN, TlsError};
use crate::trust::{FingerprintVerifier, PreparedTrust, Trust};

/// TLS alert 120, `no_application_protocol`, as a QUIC error code (RFC 9001 § 8.1).
const NO_APPLICATION_PROTOCOL: u8 = 120;

/// Application error code with which a client closes a connection it refuses
/// after the handshake (wrong ALPN, or a first-use race lost to another
/// certificate).
const CLOSE_REFUSED: VarInt = VarInt::from_u32(1);

/// Why a connection could not be established.
#[derive(Debug, Error)]
pub enum ConnectError {
    /// The target is not `host:port`.
    #[error("`{target}` is not a server address; write it as host:port, for example coordinator.example.org:4433")]
    InvalidTarget {
        /// The text given.
        target: String,
    },
    /// The host name could not be resolved to an address this endpoint can reach.
    #[error("cannot resolve `{target}`: {source}; check the host name and your network")]
    Resolve {
        /// The target.
        target: String,
        /// What the resolver reported.
        #[source]
        source: io::Error,
    },
    /// The pinned fingerprint does not match the certificate the server presented.
    #[error(
        "{server} presented a certificate with fingerprint {presented}, but {expected} is pinned; \
         if the coordinator's certificate was replaced on purpose, ask its operator for the new fingerprint, \
         otherwise someone may be impersonating it"
    )]
    PinMismatch {
        /// The server connected to.
        server: String,
        /// The pinned fingerprint.
        expected: Fingerprint,
        /// The fingerprint of the certificate the server presented.
        presented: Fingerprint,
    },
    /// Trust on first use: the server's certificate differs from the one recorded on first connect.
    #[error(
        "WARNING: THE CERTIFICATE OF {host} HAS CHANGED. It presented fingerprint {presented}, \
         but {known_hosts} records {expected}. Someone may be intercepting this connection. \
         If the coordinator's certificate was replaced on purpose, confirm the new fingerprint with its \
         operator, then delete the line for {host} from {known_hosts} and connect again"
    )]
    CertificateChanged {
        /// The `host:port` key.
        host: String,
        /// The fingerprint on file.
        expected: Fingerprint,
        /// The fingerprint the server presented now.
        presented: Fingerprint,
        /// The known-hosts file holding the old entry.
        known_hosts: PathBuf,
    },
    /// The server does not speak this protocol version (no common ALPN).
    #[error(
        "{server} does not speak the Starling protocol `starling/1` (no common ALPN); \
         check the address and that client and server versions match"
    )]
    AlpnRefused {
        /// The server connected to.
        server: String,
    },
    /// The known-hosts file could not be read or extended.
    #[error(transparent)]
    KnownHosts(#[from] KnownHostsError),
    /// The client's TLS configuration could not be built.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// quinn refused to start the connection (for example, an invalid server name).
    #[error("cannot connect to {server}: {source}")]
    Start {
        /// The server.
        server: String,
        /// quinn's reason.
        #[source]
        source: quinn::ConnectError,
    },
    /// The handshake failed for another reason: unreachable server, timeout,
    /// certificate not valid under the CA roots, …
    #[error("connecting to {server} failed: {source}")]
    Handshake {
        /// The server.
        server: String,
        /// quinn's reason.
        #[source]
        source: ConnectionError,
    },
}

/// A QUIC client endpoint with its trust policy and transport limits.
#[derive(Debug)]
pub struct ClientEndpoint {
    endpoint: Endpoint,
    trust: PreparedTrust,
    transport: Arc<TransportConfig>,
}

/// A client endpoint bound to `bind` (`0.0.0.0:0` for IPv4, `[::]:0` for
/// dual-stack) that accepts servers according to `trust`. Must be called
/// inside a tokio runtime.
pub fn client_endpoint(bind: SocketAddr, trust: Trust, limits: &Limits) -> Result<ClientEndpoint, EndpointError> {
    let trust = PreparedTrust::new(trust)?;
    let transport = limits.transport_config()?;
    let endpoint = Endpoint::client(bind).map_err(|source| EndpointError::Bind { addr: bind, source })?;
    Ok(ClientEndpoint { endpoint, trust, transport })
}

impl ClientEndpoint {
    /// The underlying quinn endpoint (to close it, or wait for it to go idle).
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }
}

/// Connects to `target`, written `host:port` (`[v6addr]:port` for an IPv6
/// literal). The host is resolved, checked against the certificate under
/// [`Trust::CaRoots`], and is the known-hosts key (`host:port`) under
/// [`Trust::TrustOnFirstUse`].
pub async fn connect(client: &ClientEndpoint, target: &str) -> Result<Connection, ConnectError> {
    let invalid = || ConnectError::InvalidTarget { target: target.to_owned() };
    let (host, port) = target.rsplit_once(':').ok_or_else(invalid)?;
    let port: u16 = port.parse().map_err(|_| invalid())?;
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    if host.is_empty() {
        return Err(invalid());
    }
    let resolve_error = |source| ConnectError::Resolve { target: target.to_owned(), source };
    let local_is_v4 = client.endpoint.local_addr().map_err(resolve_error)?.is_ipv4();
    let addr = tokio::net::lookup_host((host, port))
        .await
        .map_err(resolve_error)?
        // An IPv4 socket cannot reach IPv6 addresses; a dual-stack one reaches both.
        .find(|addr| addr.is_ipv4() || !local_is_v4)
        .ok_or_else(|| resolve_error(io::Error::new(io::ErrorKind::NotFound, "no address this endpoint can reach")))?;
    connect_addr(client, addr, host).await
}

/// Connects to `addr`, calling the server `server_name` (checked against the
/// certificate under [`Trust::CaRoots`]; `server_name:port` is the
/// known-hosts key under [`Trust::TrustOnFirstUse`]).
pub async fn connect_addr(
    client: &ClientEndpoint,
    addr: SocketAddr,
    server_name: &str,
) -> Result<Connection, ConnectError> {
    let attempt = Attempt::new(&client.trust, host_key(server_name, addr.port()))?;
    attempt.dial(client, addr, server_name).await
}

/// `host:port`, bracketing IPv6 literals, lower-case: the known-hosts key.
fn host_key(server_name: &str, port: u16) -> String {
    let host = server_name.to_ascii_lowercase();
    if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") }
}

/// One connection attempt: the TLS configuration to use and, for fingerprint
/// trust, the verifier that reports what the server presented.
struct Attempt<'a> {
    trust: &'a PreparedTrust,
    key: String,
    tls: Arc<rustls::ClientConfig>,
    verifier: Option<Arc<FingerprintVerifier>>,
    expected: Option<Fingerprint>,
}

impl<'a> Attempt<'a> {
    fn new(trust: &'a PreparedTrust, key: String) -> Result<Self, ConnectError> {
        let expected = match trust {
            PreparedTrust::Pinned(fingerprint) => Some(*fingerprint),
            PreparedTrust::TrustOnFirstUse(known_hosts) => known_hosts.lookup(&key)?,
            PreparedTrust::Ca(config) => {
                return Ok(Self { trust, key, tls: Arc::clone(config), verifier: None, expected: None });
            }
        };
        let verifier = FingerprintVerifier::new(expected);
        let tls = Arc::new(verifier.client_config()?);
        Ok(Self { trust, key, tls, verifier: Some(verifier), expected })
    }

    async fn dial(
        self,
        client: &ClientEndpoint,
        addr: SocketAddr,
        server_name: &str,
    ) -> Result<Connection, ConnectError> {
        let server = format!("{server_name} ({addr})");
        let crypto = QuicClientConfig::try_from(Arc::clone(&self.tls)).map_err(|_| TlsError::NoQuicCipherSuite)?;
        let mut config = quinn::ClientConfig::new(Arc::new(crypto));
        config.transport_config(Arc::clone(&client.transport));
        let connecting = client
            .endpoint
            .connect_with(config, addr, server_name)
            .map_err(|source| ConnectError::Start { server: server.clone(), source })?;
        let connection = match connecting.await {
            Ok(connection) => connection,
            Err(source) => return Err(self.classify(server, source)),
        };
        // rustls already insists on ALPN for QUIC; this guards against a
        // configuration that ever stops doing so.
        let negotiated = connection
            .handshake_data()
            .and_then(|data| data.downcast::<HandshakeData>().ok())
            .and_then(|data| data.protocol);
        if negotiated.as_deref() != Some(ALPN) {
            connection.close(CLOSE_REFUSED, b"ALPN starling/1 required");
            return Err(ConnectError::AlpnRefused { server });
        }
        if let (PreparedTrust::TrustOnFirstUse(known_hosts), None, Some(verifier)) =
            (self.trust, self.expected, &self.verifier)
        {
            // The handshake proved the server holds the certificate's key;
            // only now is its fingerprint worth remembering.
            let presented = verifier.presented().expect("a completed handshake presented a certificate");
            let recorded = known_hosts.remember(&self.key, presented)?;
            if recorded != presented {
                connection.close(CLOSE_REFUSED, b"certificate changed");
                return Err(ConnectError::CertificateChanged {
                    host: self.key,
                    expected: recorded,
                    presented,
                    known_hosts: known_hosts.path().to_owned(),
                });
            }
        }
        Ok(connection)
    }

    /// Turns a failed handshake into the most useful error.
    fn classify(self, server: String, source: ConnectionError) -> ConnectError {
        let presented = self.verifier.as_ref().and_then(|verifier| verifier.presented());
        if let (Some(expected), Some(presented)) = (self.expected, presented)
            && expected != presented
        {
            return match self.trust {
                PreparedTrust::TrustOnFirstUse(known_hosts) => ConnectError::CertificateChanged {
                    host: self.key,
                    expected,
                    presented,
                    known_hosts: known_hosts.path().to_owned(),
                },
                _ => ConnectError::PinMismatch { server, expected, presented },
            };
        }
        let alpn_failure = TransportErrorCode::crypto(NO_APPLICATION_PROTOCOL);
        let is_alpn = match &source {
            ConnectionError::TransportError(error) => error.code == alpn_failure,
            ConnectionError::ConnectionClosed(close) => close.error_code == alpn_failure,
            _ => false,
        };
        if is_alpn { ConnectError::AlpnRefused { server } } else { ConnectError::Handshake { server, source } }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::{ServerIdentity, server_endpoint};

    fn localhost() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 0))
    }

    #[test]
    fn host_keys_are_normalised() {
        assert_eq!(host_key("Coordinator.Example.org", 4433), "coordinator.example.org:4433");
        assert_eq!(host_key("::1", 4433), "[::1]:4433");
    }

    #[tokio::test]
    async fn malformed_targets_are_refused_before_any_traffic() {
        let client = client_endpoint(localhost(), Trust::Pinned(Fingerprint::of(b"x")), &Limits::default()).unwrap();
        for target in ["no-port", "host:", "host:99999", ":4433", "[]:4433"] {
            let err = connect(&client, target).await.unwrap_err();
            assert!(matches!(err, ConnectError::InvalidTarget { .. }), "{target}: {err}");
        }
    }

    #[tokio::test]
    async fn a_client_speaking_another_alpn_is_refused() {
        let identity = ServerIdentity::ephemeral().unwrap();
        let server = server_endpoint(localhost(), &identity, &Limits::default()).unwrap();
        let server_addr = server.local_addr().unwrap();
        let accepting = tokio::spawn(async move {
            let incoming = server.accept().await.expect("a connection attempt arrives");
            incoming.await.map(|_| ())
        });

        let client = client_endpoint(localhost(), Trust::Pinned(identity.fingerprint()), &Limits::default()).unwrap();
        let mut attempt = Attempt::new(&client.trust, host_key("localhost", server_addr.port())).unwrap();
        let mut tls = (*attempt.tls).clone();
        tls.alpn_protocols = vec![b"starling/0".to_vec()];
        attempt.tls = Arc::new(tls);
        let err = attempt.dial(&client, server_addr, "localhost").await.unwrap_err();
        assert!(matches!(err, ConnectError::AlpnRefused { .. }), "{err}");
        assert!(accepting.await.unwrap().is_err(), "the server refuses the handshake too");
    }
}
