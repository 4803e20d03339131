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

use bytes::Bytes;
use starling_net::quinn::{Endpoint, RecvStream, SendStream};
use starling_net::{BlobError, FrameError, REFUSED, read_frame, recv_blob_pieces, send_blob, write_frame};
use starling_protocol::{ErrorCode, MAX_CONTROL_MESSAGE, Request, Response, ResponseBody, WireError};
use starling_staking::LedgerStore;

use super::Coordinator;
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
    pub async fn serve_quic(&self, endpoint: Endpoint) {
        let mut shutdown = self.inner.shutdown.subscribe();
        loop {
            let incoming = tokio::select! {
                incoming = endpoint.accept() => incoming,
                _ = shutdown.wait_for(|stop| *stop) => None,
            };
            let Some(incoming) = incoming else { break };
            let this = self.clone();
            tokio::spawn(async move {
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

    async fn serve_stream(&self, send: SendStream, mut recv: RecvStream) {
        let request = match read_frame(&mut recv, MAX_CONTROL_MESSAGE).await {
            Ok(bytes) => Request::from_bytes(&bytes, MAX_CONTROL_MESSAGE).map_err(|e| WireError::from_error(&e)),
            Err(error @ FrameError::TooLarge { .. }) => Err(WireError::new(ErrorCode::Oversized, error.to_string())),
            Err(error) => {
                // Nothing to answer: the stream broke before a request arrived.
                tracing::debug!("unreadable request frame: {error}");
                return;
            }
        };
        let answer = self.answer(request, &mut QuicBody(&mut recv)).await;
        match answer {
            // A download (a public model, or an update for its readers): the
            // bytes follow the announcement.
            Ok(ResponseBody::Blob { hash, .. }) => self.send_blob(send, hash).await,
            answer => reply(send, answer.into()).await,
        }
    }

    /// Sends a stored blob: its announcement, then its bytes.
    async fn send_blob(&self, mut send: SendStream, hash: starling_protocol::ContentHash) {
        let bytes = match self.blob(hash).await {
            Ok(bytes) => bytes,
            Err(error) => return reply(send, error.into()).await,
        };
        let head = Response::Ok(ResponseBody::Blob { hash, len: bytes.len() as u64 });
        let head = head.to_bytes().expect("a blob announcement always encodes");
        if write_frame(&mut send, &head).await.is_ok() && send_blob(&mut send, &bytes).await.is_ok() {
            let _ = send.stopped().await;
        }
    }
}

/// An upload's bytes on the stream its request came on. Each piece is
/// copied once out of quinn's packets, page-aligned, so the artifact store
/// can write it with direct I/O.
struct QuicBody<'a>(&'a mut RecvStream);

impl Body for QuicBody<'_> {
    async fn receive(
        &mut self,
        max_len: u64,
        each: impl FnMut(Bytes) -> Result<(), BlobError> + Send,
    ) -> Result<u64, BlobError> {
        recv_blob_pieces(self.0, max_len, each).await
    }

    fn refuse(&mut self) {
        let _ = self.0.stop(REFUSED);
    }
}

async fn reply(mut send: SendStream, response: Response) {
    let bytes = match response.to_bytes() {
        Ok(bytes) => bytes,
        Err(error) => {
            tracing::error!("a response did not encode: {error}");
            return;
        }
    };
    if write_frame(&mut send, &bytes).await.is_ok() && send.finish().is_ok() {
        let _ = send.stopped().await;
    }
}
