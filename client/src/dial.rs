//! Reaching a coordinator: which certificate to trust, and the QUIC
//! endpoint and transport built from that. The CLI's commands, the trainer
//! and the validator all dial through here.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use starling_net::{EndpointError, Fingerprint, KnownHosts, KnownHostsError, Limits, TlsError, Trust, client_endpoint};
use thiserror::Error;

use crate::transport::QuicTransport;

/// How to decide that the server at the other end is the coordinator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrustSetting {
    /// Only the certificate with this fingerprint.
    Pinned(Fingerprint),
    /// A CA-issued certificate chaining to a root in this PEM file.
    CaFile(PathBuf),
    /// The certificate first seen for the address, remembered in this
    /// known-hosts file and required from then on (like SSH).
    KnownHosts(PathBuf),
}

/// Why a coordinator could not be dialled.
#[derive(Debug, Error)]
pub enum DialError {
    /// The CA file could not be used.
    #[error("reading CA certificates from {path}: {source}")]
    CaFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: TlsError,
    },
    /// The known-hosts file could not be read.
    #[error(transparent)]
    KnownHosts(#[from] KnownHostsError),
    /// The QUIC endpoint could not be opened.
    #[error("opening a QUIC client endpoint: {0}")]
    Endpoint(#[from] EndpointError),
}

/// A dialled coordinator: the transport (it connects on first use), and
/// the known-hosts record when this is the first connection to the address.
#[derive(Debug)]
pub struct Dialled {
    /// Requests to the coordinator.
    pub transport: QuicTransport,
    /// Set when the certificate will be trusted on first use.
    pub first_use: Option<FirstUse>,
}

/// A first connection to an address under [`TrustSetting::KnownHosts`]:
/// whichever certificate it meets is remembered.
#[derive(Debug)]
pub struct FirstUse {
    known: KnownHosts,
    host: String,
}

impl FirstUse {
    /// The address, as the known-hosts file records it.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The known-hosts file.
    pub fn path(&self) -> &Path {
        self.known.path()
    }

    /// The fingerprint recorded once a connection has been made; `None`
    /// before (or if the record cannot be read).
    pub fn recorded(&self) -> Option<Fingerprint> {
        self.known.lookup(&self.host).ok().flatten()
    }
}

/// Dials the coordinator at `target` (`host:port`, a bracketed IPv6
/// literal, or a name; IPv4 otherwise) trusting it by `trust`. Opens the
/// endpoint only: the connection is made by the first request. Call inside
/// a tokio runtime.
pub fn dial(target: &str, trust: TrustSetting) -> Result<Dialled, DialError> {
    let (trust, first_use) = match trust {
        TrustSetting::Pinned(fingerprint) => (Trust::Pinned(fingerprint), None),
        TrustSetting::CaFile(path) => match Trust::ca_pem_file(&path) {
            Ok(trust) => (trust, None),
            Err(source) => return Err(DialError::CaFile { path, source }),
        },
        TrustSetting::KnownHosts(path) => {
            let known = KnownHosts::new(&path);
            let host = target.to_ascii_lowercase();
            let seen = known.lookup(&host)?;
            (Trust::TrustOnFirstUse { known_hosts: path }, seen.is_none().then_some(FirstUse { known, host }))
        }
    };
    let bind = if target.starts_with('[') {
        SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, 0))
    } else {
        SocketAddr::from((std::net::Ipv4Addr::UNSPECIFIED, 0))
    };
    let endpoint = client_endpoint(bind, trust, &Limits::default())?;
    Ok(Dialled { transport: QuicTransport::new(endpoint, target.to_owned()), first_use })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_first_use_is_flagged_only_for_an_unknown_host() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("known_hosts");
        let dialled = dial("Coordinator.Example:7700", TrustSetting::KnownHosts(path.clone())).unwrap();
        let first = dialled.first_use.expect("nothing is recorded yet");
        assert_eq!(first.host(), "coordinator.example:7700");
        assert_eq!(first.recorded(), None, "nothing connected yet");

        let seen = Fingerprint::of(b"certificate");
        KnownHosts::new(&path).remember("coordinator.example:7700", seen).unwrap();
        assert_eq!(first.recorded(), Some(seen));
        let again = dial("coordinator.example:7700", TrustSetting::KnownHosts(path)).unwrap();
        assert!(again.first_use.is_none(), "a known host is not a first use");

        let pinned = dial("[::1]:7700", TrustSetting::Pinned(seen)).unwrap();
        assert!(pinned.first_use.is_none());
    }

    #[tokio::test]
    async fn an_unreadable_ca_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing.pem");
        let err = dial("127.0.0.1:7700", TrustSetting::CaFile(path.clone())).unwrap_err();
        assert!(matches!(&err, DialError::CaFile { path: p, .. } if *p == path), "{err}");
        assert!(err.to_string().contains("missing.pem"), "{err}");
    }
}
