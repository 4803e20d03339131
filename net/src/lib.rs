//! Starling's network edge, shared by the coordinator, trainers and validators.
//!
//! Everything that touches a socket or a key file lives here, so the rest of
//! the workspace stays pure:
//!
//! - [`Identity`]: the ed25519 key a node signs envelopes with, kept in a
//!   0600 text file that is refused if others could read it.
//! - `ServerIdentity` (with the `server` feature, the coordinator's): its
//!   TLS certificate, self-signed and persisted on first start (clients pin
//!   its [`Fingerprint`]) or issued by a CA. Clients build without it, so
//!   a trainer never links certificate generation.
//! - [`Trust`]: how a client accepts a server: a pinned fingerprint, trust on
//!   first use with a [`KnownHosts`] file like SSH, or CA roots.
//! - `server_endpoint` (`server` feature), [`client_endpoint`], [`connect`]: QUIC endpoints
//!   (quinn, rustls on *ring*, TLS 1.3, ALPN [`ALPN`]) with [`Limits`] sized
//!   for model transfers.
//! - [`write_frame`] / [`read_frame`] / [`request`] / [`accept_request`]:
//!   length-prefixed control messages, refused before reading when too long.
//! - [`send_blob`] / [`recv_blob`]: tensors and models on their own streams,
//!   streamed into a sink while their BLAKE3 [`ContentHash`](starling_protocol::ContentHash)
//!   is checked.
//!
//! One crypto provider serves the whole build: rustls on *ring*
//! ([`crypto_provider`]); aws-lc-rs is never linked.

mod blob;
mod endpoint;
mod endpoint_error;
mod fingerprint;
mod frame;
mod identity;
mod known_hosts;
mod limits;
mod secret_file;
#[cfg(any(test, feature = "server"))]
#[cfg_attr(not(feature = "server"), allow(dead_code, unreachable_pub))]
mod server;
#[cfg(test)]
mod test_support;
mod tls;
mod trust;

pub use blob::{BlobError, PIECE_ALIGN, recv_blob, recv_blob_pieces, send_blob, send_blob_from};
pub use endpoint::{ClientEndpoint, ConnectError, client_endpoint, connect, connect_addr};
pub use endpoint_error::EndpointError;
pub use fingerprint::{Fingerprint, ParseFingerprintError};
pub use frame::{FrameError, REFUSED, Request, accept_request, read_frame, request, write_frame};
pub use identity::{IDENTITY_FILE_HEADER, Identity, IdentityError};
pub use known_hosts::{KnownHosts, KnownHostsError};
pub use limits::Limits;
pub use secret_file::SecretFileError;
#[cfg(feature = "server")]
pub use server::{ServerIdentity, server_config, server_endpoint};
pub use tls::{ALPN, TlsError, crypto_provider, install_default_provider};
pub use trust::Trust;

/// Certificates as [`Trust::CaRoots`] takes them.
pub use rustls::pki_types::CertificateDer;

/// The QUIC types callers handle directly (connections and streams), so they
/// need not depend on quinn themselves.
pub use quinn;
