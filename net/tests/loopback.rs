//! The network edge end to end over 127.0.0.1: a coordinator-like server and
//! clients under each trust policy.

use std::fs;
use std::net::SocketAddr;

use anyhow::{Context, Result};
use starling_net::quinn::{Connection, Endpoint, VarInt};
use starling_net::{
    BlobError, ConnectError, Fingerprint, Limits, ServerIdentity, Trust, accept_request, client_endpoint, connect,
    connect_addr, recv_blob, request, send_blob, send_blob_from, server_config, server_endpoint,
};
use starling_protocol::ContentHash;

fn localhost() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// A tiny server: every connection gets request frames answered with the
/// request reversed, and blob uploads answered (on a request stream) with the
/// blob's content hash. Runs until the endpoint is closed.
fn serve(endpoint: Endpoint) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(incoming) = endpoint.accept().await {
            tokio::spawn(async move {
                let Ok(connection) = incoming.await else { return };
                handle(connection).await;
            });
        }
    })
}

async fn handle(connection: Connection) {
    let uploads = {
        let connection = connection.clone();
        tokio::spawn(async move {
            while let Ok(mut recv) = connection.accept_uni().await {
                let mut sink = Vec::new();
                // A broken upload (reset by its sender) is not acknowledged.
                let Ok((_, hash)) = recv_blob(&mut recv, 1 << 20, None, &mut sink).await else { continue };
                // Tell the uploader what arrived, on a request stream of our own.
                request(&connection, hash.as_bytes(), 0).await.expect("the uploader acknowledges");
            }
        })
    };
    while let Ok(Some(incoming)) = accept_request(&connection, 1024).await {
        let mut reply = incoming.body().to_vec();
        reply.reverse();
        if incoming.respond(&reply).await.is_err() {
            break;
        }
    }
    uploads.abort();
}

#[tokio::test]
async fn pinned_client_exchanges_frames_and_blobs_with_a_persistent_server() -> Result<()> {
    let state = tempfile::tempdir()?;
    let identity = ServerIdentity::load_or_create(state.path())?;
    let server = server_endpoint(localhost(), &identity, &Limits::default())?;
    let addr = server.local_addr()?;
    let serving = serve(server.clone());

    // The fingerprint an operator would hand out survives a restart.
    let pin = ServerIdentity::load_or_create(state.path())?.fingerprint();
    assert_eq!(pin, identity.fingerprint());

    let client = client_endpoint(localhost(), Trust::Pinned(pin), &Limits::default())?;
    let connection = connect(&client, &addr.to_string()).await.context("pinned connect")?;
    assert_eq!(request(&connection, b"starling", 1024).await?, b"gnilrats");

    // Upload a blob; the server answers with the hash of what it received.
    let blob: Vec<u8> = (0..200_000u32).flat_map(|i| i.to_le_bytes()).collect();
    let mut send = connection.open_uni().await?;
    send_blob(&mut send, &blob).await?;
    let acknowledgement = accept_request(&connection, 32).await?.context("the server reports the upload")?;
    assert_eq!(acknowledgement.body(), ContentHash::of(&blob).as_bytes());
    acknowledgement.respond(b"").await?;

    // The same blob sent from a reader as it is read (a stored file, say).
    let mut send = connection.open_uni().await?;
    send_blob_from(&mut send, blob.len() as u64, &blob[..]).await?;
    let acknowledgement = accept_request(&connection, 32).await?.context("the server reports the upload")?;
    assert_eq!(acknowledgement.body(), ContentHash::of(&blob).as_bytes());
    acknowledgement.respond(b"").await?;
    // A source shorter than its announced length resets the stream: the
    // receiver never takes a short blob for a whole one.
    let mut send = connection.open_uni().await?;
    let short = send_blob_from(&mut send, blob.len() as u64 + 10, &blob[..]).await.unwrap_err();
    assert!(
        matches!(short, BlobError::Truncated { announced, received } if announced == blob.len() as u64 + 10 && received == blob.len() as u64),
        "{short}"
    );

    connection.close(VarInt::from_u32(0), b"bye");
    server.close(VarInt::from_u32(0), b"shutdown");
    serving.await?;
    Ok(())
}

#[tokio::test]
async fn a_wrong_pin_is_refused_at_the_handshake() -> Result<()> {
    let identity = ServerIdentity::ephemeral()?;
    let server = server_endpoint(localhost(), &identity, &Limits::default())?;
    let addr = server.local_addr()?;
    let serving = serve(server.clone());

    let pinned = Fingerprint::of(b"some other certificate");
    let client = client_endpoint(localhost(), Trust::Pinned(pinned), &Limits::default())?;
    let err = connect_addr(&client, addr, "localhost").await.unwrap_err();
    let ConnectError::PinMismatch { expected, presented, .. } = &err else { panic!("expected a pin mismatch: {err}") };
    assert_eq!((*expected, *presented), (pinned, identity.fingerprint()));
    assert!(err.to_string().contains(&identity.fingerprint().to_string()), "{err}");

    server.close(VarInt::from_u32(0), b"shutdown");
    serving.await?;
    Ok(())
}

#[tokio::test]
async fn trust_on_first_use_remembers_and_then_refuses_a_changed_certificate() -> Result<()> {
    let home = tempfile::tempdir()?;
    let known_hosts = home.path().join("known_hosts");
    let first = ServerIdentity::ephemeral()?;
    let server = server_endpoint(localhost(), &first, &Limits::default())?;
    let addr = server.local_addr()?;
    let serving = serve(server.clone());
    let target = addr.to_string();

    let trust = Trust::TrustOnFirstUse { known_hosts: known_hosts.clone() };
    let client = client_endpoint(localhost(), trust.clone(), &Limits::default())?;

    // First use: accepted and recorded, like SSH.
    let connection = connect(&client, &target).await.context("first use")?;
    assert_eq!(request(&connection, b"ab", 16).await?, b"ba");
    let recorded = fs::read_to_string(&known_hosts)?;
    assert_eq!(recorded, format!("{target} {}\n", first.fingerprint()));

    // Same certificate again, from a fresh client process: accepted, nothing appended.
    let later_client = client_endpoint(localhost(), trust.clone(), &Limits::default())?;
    let again = connect(&later_client, &target).await.context("second use")?;
    assert_eq!(request(&again, b"xyz", 16).await?, b"zyx");
    assert_eq!(fs::read_to_string(&known_hosts)?, recorded);

    // The server at the same host:port now presents a different certificate.
    let second = ServerIdentity::ephemeral()?;
    server.set_server_config(Some(server_config(&second, &Limits::default())?));
    let err = connect(&later_client, &target).await.unwrap_err();
    let ConnectError::CertificateChanged { host, expected, presented, known_hosts: file } = &err else {
        panic!("expected a changed-certificate error: {err}")
    };
    assert_eq!(host, &target);
    assert_eq!((*expected, *presented), (first.fingerprint(), second.fingerprint()));
    assert_eq!(file, &known_hosts);
    let message = err.to_string();
    assert!(message.contains("HAS CHANGED") && message.contains(&known_hosts.display().to_string()), "{message}");
    assert_eq!(fs::read_to_string(&known_hosts)?, recorded, "the recorded fingerprint is kept");

    server.close(VarInt::from_u32(0), b"shutdown");
    serving.await?;
    Ok(())
}

#[tokio::test]
async fn concurrent_first_connections_record_the_server_once() -> Result<()> {
    let home = tempfile::tempdir()?;
    let known_hosts = home.path().join("known_hosts");
    let identity = ServerIdentity::ephemeral()?;
    let server = server_endpoint(localhost(), &identity, &Limits::default())?;
    let addr = server.local_addr()?;
    let serving = serve(server.clone());

    let client = std::sync::Arc::new(client_endpoint(
        localhost(),
        Trust::TrustOnFirstUse { known_hosts: known_hosts.clone() },
        &Limits::default(),
    )?);
    let attempts: Vec<_> = (0..6)
        .map(|_| {
            let client = std::sync::Arc::clone(&client);
            tokio::spawn(async move { connect_addr(&client, addr, "coordinator.test").await.map(|_| ()) })
        })
        .collect();
    for attempt in attempts {
        attempt.await?.context("every concurrent first use succeeds")?;
    }
    let recorded = fs::read_to_string(&known_hosts)?;
    assert_eq!(recorded, format!("coordinator.test:{} {}\n", addr.port(), identity.fingerprint()));

    server.close(VarInt::from_u32(0), b"shutdown");
    serving.await?;
    Ok(())
}

#[tokio::test]
async fn a_ca_issued_certificate_is_checked_against_roots_and_name() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, rcgen::KeyPair::generate()?)?;
    let leaf_key = rcgen::KeyPair::generate()?;
    let leaf = rcgen::CertificateParams::new(vec!["localhost".to_owned()])?.signed_by(&leaf_key, &ca)?;
    let (cert_path, key_path, ca_path) =
        (dir.path().join("chain.pem"), dir.path().join("key.pem"), dir.path().join("ca.pem"));
    fs::write(&cert_path, leaf.pem() + &ca.pem())?;
    fs::write(&key_path, leaf_key.serialize_pem())?;
    fs::write(&ca_path, ca.pem())?;

    let identity = ServerIdentity::from_pem_files(&cert_path, &key_path)?;
    assert_eq!(identity.certificate_chain().len(), 2);
    let server = server_endpoint(localhost(), &identity, &Limits::default())?;
    let addr = server.local_addr()?;
    let serving = serve(server.clone());

    let client = client_endpoint(localhost(), Trust::ca_pem_file(&ca_path)?, &Limits::default())?;
    let connection = connect(&client, &format!("localhost:{}", addr.port())).await.context("CA connect")?;
    assert_eq!(request(&connection, b"ca", 16).await?, b"ac");

    // The certificate does not name this host: refused.
    let err = connect_addr(&client, addr, "elsewhere.test").await.unwrap_err();
    assert!(matches!(err, ConnectError::Handshake { .. }), "{err}");

    // A different CA is not trusted at all.
    let stranger = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])?;
    let client = client_endpoint(localhost(), Trust::CaRoots(vec![stranger.cert.der().clone()]), &Limits::default())?;
    let err = connect_addr(&client, addr, "localhost").await.unwrap_err();
    assert!(matches!(err, ConnectError::Handshake { .. }), "{err}");

    server.close(VarInt::from_u32(0), b"shutdown");
    serving.await?;
    Ok(())
}

#[tokio::test]
async fn a_coordinator_lets_no_peer_park_unidirectional_streams() -> Result<()> {
    let identity = ServerIdentity::ephemeral()?;
    let server = server_endpoint(localhost(), &identity, &Limits::coordinator())?;
    let addr = server.local_addr()?;
    let serving = serve(server.clone());
    let client = client_endpoint(localhost(), Trust::Pinned(identity.fingerprint()), &Limits::default())?;
    let connection = connect_addr(&client, addr, "localhost").await?;

    // No credit for a unidirectional stream is ever given...
    let opened = tokio::time::timeout(std::time::Duration::from_millis(300), connection.open_uni()).await;
    assert!(opened.is_err(), "a unidirectional stream was granted");
    // ...while requests on bidirectional streams are served as usual.
    assert_eq!(request(&connection, b"abc", 16).await?, b"cba");

    server.close(VarInt::from_u32(0), b"shutdown");
    serving.await?;
    Ok(())
}
