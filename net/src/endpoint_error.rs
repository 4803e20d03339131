//! Why an endpoint (a server's or a client's) could not be set up: shared
//! by the endpoints and the transport limits they are built with.

use std::io;
use std::net::SocketAddr;

use thiserror::Error;

use crate::tls::TlsError;

/// Why an endpoint could not be set up.
#[derive(Debug, Error)]
pub enum EndpointError {
    /// The UDP socket could not be bound.
    #[error("cannot listen on {addr}: {source}; pick a free port or an address of this machine")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// What the operating system reported.
        #[source]
        source: io::Error,
    },
    /// The TLS configuration could not be built.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// A [`Limits`] field is out of range.
    #[error("invalid network limits: {reason}")]
    InvalidLimits {
        /// Which field, and why.
        reason: &'static str,
    },
}
