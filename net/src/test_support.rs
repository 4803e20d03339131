//! Loopback fixtures for the unit tests.

use std::net::SocketAddr;

use quinn::Connection;

use crate::server::{ServerIdentity, server_endpoint};
use crate::{Limits, Trust, client_endpoint, connect_addr};

/// A client and a server connection to each other over 127.0.0.1, the
/// client pinning the server's fresh self-signed certificate.
pub(crate) async fn connected_pair() -> (Connection, Connection) {
    let localhost = SocketAddr::from(([127, 0, 0, 1], 0));
    let identity = ServerIdentity::ephemeral().unwrap();
    let server = server_endpoint(localhost, &identity, &Limits::default()).unwrap();
    let server_addr = server.local_addr().unwrap();
    let accepting = tokio::spawn(async move { server.accept().await.unwrap().await.unwrap() });
    let client = client_endpoint(localhost, Trust::Pinned(identity.fingerprint()), &Limits::default()).unwrap();
    let client_connection = connect_addr(&client, server_addr, "localhost").await.unwrap();
    (client_connection, accepting.await.unwrap())
}
