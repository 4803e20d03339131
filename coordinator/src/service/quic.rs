//! The coordinator's QUIC front: one bidirectional stream per request.
//!
//! A stream carries one length-prefixed request frame; an upload
//! ([`CreateTask`](starling_protocol::CreateTask),
//! [`SubmitUpdate`](starling_protocol::SubmitUpdate)) follows it with its
//! blob on the same stream. The answer is one response frame, followed by
//! the blob for a download ([`ReadRequest::FetchBlob`](starling_protocol::ReadRequest::FetchBlob),
//! [`FetchUpdate`](starling_protocol::FetchUpdate)). Everything between reading the
//! frame and writing the answer is the [pipeline](super::pipeline)'s; this
//! module only moves bytes.

use std::time::Duration;

use bytes::Bytes;
use starling_net::quinn::{Endpoint, RecvStream, SendStream};
use starling_net::{BlobError, FrameError, REFUSED, read_frame, recv_blob_pieces, send_blob_from, write_frame};
use starling_protocol::{ErrorCode, MAX_CONTROL_MESSAGE, Request, Response, ResponseBody, WireError};
use starling_staking::LedgerStore;

use super::Coordinator;
use super::connections::{Admission, Connections};
use super::reads::unreadable;
use super::upload::Body;
use crate::artifacts::ArtifactStore;
use crate::store::CoordinatorStore;

impl<S, L, A> Coordinator<S, L, A>
where
    S: CoordinatorStore + 'static,
    L: LedgerStore + 'static,
    A: ArtifactStore + 'static,
{
    /// Accepts connections on `endpoint` and serves their requests until
    /// the endpoint closes or the service shuts down.
    ///
    /// Each address may hold [`max_connections_per_address`] connections and
    /// everyone together [`max_connections`]; past half of those, a client
    /// must prove its address (a QUIC retry) before any state is kept for it.
    ///
    /// [`max_connections_per_address`]: super::ServiceConfig::max_connections_per_address
    /// [`max_connections`]: super::ServiceConfig::max_connections
    pub async fn serve_quic(&self, endpoint: Endpoint) {
        let mut shutdown = self.inner.shutdown.subscribe();
        let config = &self.inner.config;
        let connections = Connections::new(config.max_connections_per_address, config.max_connections);
        loop {
            let incoming = tokio::select! {
                incoming = endpoint.accept() => incoming,
                _ = shutdown.wait_for(|stop| *stop) => None,
            };
            let Some(incoming) = incoming else { break };
            let address = incoming.remote_address().ip();
            let guard = match connections.admit(address, incoming.remote_address_validated()) {
                Admission::Accept(guard) => guard,
                Admission::Retry => {
                    // Fails only if the client's address was already validated.
                    if let Err(refused) = incoming.retry() {
                        refused.into_incoming().refuse();
                    }
                    continue;
                }
                Admission::Refuse => {
                    tracing::debug!(%address, "connection refused: too many open");
                    incoming.refuse();
                    continue;
                }
            };
            let this = self.clone();
            tokio::spawn(async move {
                let _guard = guard;
                let connection = match incoming.await {
                    Ok(connection) => connection,
                    Err(error) => {
                        tracing::debug!("QUIC handshake failed: {error}");
                        return;
                    }
                };
                while let Ok((send, recv)) = connection.accept_bi().await {
                    let this = this.clone();
                    tokio::spawn(async move { this.serve_stream(send, recv).await });
                }
            });
        }
        endpoint.close(0u32.into(), b"coordinator shutting down");
    }

    async fn serve_stream(&self, mut send: SendStream, mut recv: RecvStream) {
        let config = &self.inner.config;
        let frame = tokio::time::timeout(config.request_timeout, read_frame(&mut recv, MAX_CONTROL_MESSAGE)).await;
        let request = match frame {
            Ok(Ok(bytes)) => Request::from_bytes(&bytes, MAX_CONTROL_MESSAGE).map_err(|e| WireError::from_error(&e)),
            Ok(Err(error @ FrameError::TooLarge { .. })) => {
                Err(WireError::new(ErrorCode::Oversized, error.to_string()))
            }
            Ok(Err(error)) => {
                // Nothing to answer: the stream broke before a request arrived.
                tracing::debug!("unreadable request frame: {error}");
                return;
            }
            Err(_) => {
                // A stream opened and left silent holds nothing for longer.
                let _ = recv.stop(REFUSED);
                let _ = send.reset(REFUSED);
                return;
            }
        };
        let mut body = QuicBody { recv: &mut recv, config };
        let answer = self.answer(request, &mut body).await;
        match answer {
            // A download (a public model, or an update for its readers): the
            // bytes follow the announcement.
            Ok(ResponseBody::Blob { hash, len }) => self.send_blob(send, hash, len).await,
            answer => reply(send, answer.into(), self.inner.config.request_timeout).await,
        }
    }

    /// Sends the stored blob `hash` of `len` bytes (as the pipeline's answer
    /// announced it): the announcement, then its bytes, streamed from the
    /// store (one buffer per download, whatever the blob's size; the reader
    /// checks the hash).
    async fn send_blob(&self, mut send: SendStream, hash: starling_protocol::ContentHash, len: u64) {
        let reader = match self.inner.artifacts.open(hash).await {
            Ok(reader) => reader,
            Err(error) => {
                return reply(send, unreadable(hash, &error).into(), self.inner.config.request_timeout).await;
            }
        };
        let head = Response::Ok(ResponseBody::Blob { hash, len });
        let head = head.to_bytes().expect("a blob announcement always encodes");
        // A reader that withholds flow control holds the stream no longer
        // than the slowest rate allows.
        let limit = self.inner.config.transfer_limit(len);
        let sent = tokio::time::timeout(limit, async {
            write_frame(&mut send, &head).await.is_ok() && send_blob_from(&mut send, len, reader).await.is_ok()
        })
        .await;
        match sent {
            Ok(true) => {
                let _ = tokio::time::timeout(self.inner.config.request_timeout, send.stopped()).await;
            }
            Ok(false) => {}
            Err(_) => {
                let _ = send.reset(REFUSED);
            }
        }
    }
}

/// An upload's bytes on the stream its request came on. Each piece is
/// copied once out of quinn's packets, page-aligned, so the artifact store
/// can write it with direct I/O. It must arrive within the configured
/// [`transfer_limit`](super::ServiceConfig::transfer_limit).
struct QuicBody<'a> {
    recv: &'a mut RecvStream,
    config: &'a super::ServiceConfig,
}

impl Body for QuicBody<'_> {
    async fn receive(
        &mut self,
        max_len: u64,
        each: impl FnMut(Bytes) -> Result<(), BlobError> + Send,
    ) -> Result<u64, BlobError> {
        let limit = self.config.transfer_limit(max_len);
        match tokio::time::timeout(limit, recv_blob_pieces(self.recv, max_len, each)).await {
            Ok(received) => received,
            Err(_) => {
                let _ = self.recv.stop(REFUSED);
                Err(BlobError::TimedOut { limit_ms: u64::try_from(limit.as_millis()).unwrap_or(u64::MAX) })
            }
        }
    }

    fn refuse(&mut self) {
        let _ = self.recv.stop(REFUSED);
    }
}

/// Sends the answer frame, giving up after `limit` (a peer that does not
/// read its answer holds the stream no longer).
async fn reply(mut send: SendStream, response: Response, limit: Duration) {
    let bytes = match response.to_bytes() {
        Ok(bytes) => bytes,
        Err(error) => {
            tracing::error!("a response did not encode: {error}");
            return;
        }
    };
    let sent = tokio::time::timeout(limit, async {
        if write_frame(&mut send, &bytes).await.is_ok() && send.finish().is_ok() {
            let _ = send.stopped().await;
        }
    })
    .await;
    if sent.is_err() {
        let _ = send.reset(REFUSED);
    }
}
