//! The coordinator's QUIC front: one bidirectional stream per request.
//!
//! A stream carries one length-prefixed request frame; an upload
//! ([`CreateTask`](starling_protocol::CreateTask),
//! [`SubmitUpdate`](starling_protocol::SubmitUpdate)) follows it with its
//! blob on the same stream. The answer is one response frame, followed by
//! the blob for a [`ReadRequest::FetchBlob`]. An upload is checked (signature,
//! nonce, task, round, phase, sampling, size) **before** its blob is read: a
//! refused one is answered at once and its stream stopped, so a client never
//! sends megabytes into a refusal.

use starling_net::quinn::{Endpoint, RecvStream, SendStream};
use starling_net::{BlobError, FrameError, REFUSED, read_frame, recv_blob, recv_blob_pieces, send_blob, write_frame};
use starling_protocol::messages::SignedRequest;
use starling_protocol::payload::StreamingCheck;
use starling_protocol::{
    ContentHash, ErrorCode, MAX_CONTROL_MESSAGE, ReadRequest, Request, Response, ResponseBody, SubmitUpdate, WireError,
};
use starling_staking::LedgerStore;

use super::Coordinator;
use super::handlers::{Blob, check_streamed_update, internal, upload};
use crate::artifacts::{ArtifactError, ArtifactStore, ArtifactUpload};
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
        let bytes = match read_frame(&mut recv, MAX_CONTROL_MESSAGE).await {
            Ok(bytes) => bytes,
            Err(error @ FrameError::TooLarge { .. }) => {
                return reply(send, WireError::new(ErrorCode::Oversized, error.to_string()).into()).await;
            }
            Err(error) => {
                tracing::debug!("unreadable request frame: {error}");
                return;
            }
        };
        let request = match Request::from_bytes(&bytes, MAX_CONTROL_MESSAGE) {
            Ok(request) => request,
            Err(error) => {
                let _ = recv.stop(REFUSED);
                return reply(send, WireError::from_error(&error).into()).await;
            }
        };
        match request {
            Request::Read(ReadRequest::FetchBlob { hash }) => self.serve_fetch(send, hash).await,
            Request::Read(read) => reply(send, self.read(read).await.into()).await,
            Request::Signed(envelope) => {
                let verified = match self.verify(&envelope) {
                    Ok(verified) => verified,
                    Err(error) => {
                        let _ = recv.stop(REFUSED);
                        return reply(send, error.into()).await;
                    }
                };
                let Some((hash, len)) = upload(&verified.message) else {
                    return reply(send, self.execute(verified, &envelope, None).await.into()).await;
                };
                if let Err(error) = self.precheck(&verified).await {
                    let _ = recv.stop(REFUSED);
                    return reply(send, error.into()).await;
                }
                if let SignedRequest::SubmitUpdate(update) = &verified.message {
                    let checked = match self.receive_update(&mut recv, update).await {
                        Ok(checked) => checked,
                        Err(error) => return reply(send, error.into()).await,
                    };
                    let answer = self.execute(verified, &envelope, Some(Blob::StoredUpdate(checked))).await;
                    return reply(send, answer.into()).await;
                }
                let mut blob = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
                match recv_blob(&mut recv, len, Some(hash), &mut blob).await {
                    Ok((received, _)) if received == len => {}
                    Ok((received, _)) => {
                        let error = WireError::new(
                            ErrorCode::LengthMismatch,
                            format!("the upload announced {len} bytes but carried {received}"),
                        );
                        return reply(send, error.into()).await;
                    }
                    Err(error) => return reply(send, blob_error(&error).into()).await,
                }
                reply(send, self.execute(verified, &envelope, Some(Blob::Bytes(&blob))).await.into()).await;
            }
        }
    }

    /// Receives an update's payload straight into the artifact store: each
    /// 256 KiB piece is copied once out of quinn's packets (page-aligned, so
    /// the store can write it with direct I/O), checked (decode, finiteness,
    /// norm) and hashed here, and handed, uncopied, to the store's writer,
    /// which writes and syncs it on the blocking pool while the rest
    /// arrives. Returns the checks' outcome once the payload is durably
    /// stored under its signed hash; `Err` (nothing stored, nothing
    /// recorded) if it did not arrive whole under that hash, or the store
    /// failed.
    async fn receive_update(
        &self,
        recv: &mut RecvStream,
        update: &SubmitUpdate,
    ) -> Result<Result<(), WireError>, WireError> {
        let slot = self.running(update.task).await?;
        let len = update.update_len;
        let store_failed = |error: &ArtifactError| match error {
            ArtifactError::HashMismatch { .. } => {
                WireError::new(ErrorCode::HashMismatch, "the upload's hash is not the one signed")
            }
            other => internal("artifact store", other),
        };
        let spec = &slot.record.spec;
        let mut upload = self.inner.artifacts.begin(update.update, len).await.map_err(|e| store_failed(&e))?;
        // Each piece is hashed (by the store) and checked here, on this
        // task, as it arrives: the piece was just copied and is still in
        // cache, no whole copy of the payload is ever made, and there is no
        // hand-off to another thread per piece. Both take about 0.1 ms per
        // 256 KiB piece, short enough not to hold up the runtime.
        let mut check = StreamingCheck::new(spec.model.tensors.clone(), spec.payload_limit_bytes());
        let received = recv_blob_pieces(recv, len, |piece| {
            check.feed(&piece);
            upload.feed(piece).map_err(|e| BlobError::Sink(std::io::Error::other(e)))
        })
        .await;
        let error = match received {
            Ok(received) if received == len => None,
            Ok(received) => Some(WireError::new(
                ErrorCode::LengthMismatch,
                format!("the upload announced {len} bytes but carried {received}"),
            )),
            Err(BlobError::Sink(_)) => {
                // The store stopped taking bytes: its writer failed, and
                // committing what it has says why.
                let why = match upload.commit().await {
                    Err(error) => error.to_string(),
                    Ok(_) => "the store refused a piece".to_owned(),
                };
                return Err(internal("artifact store", &why));
            }
            Err(error) => Some(blob_error(&error)),
        };
        if let Some(error) = error {
            upload.abort().await;
            return Err(error);
        }
        let checked = check.finish();
        let stored = upload.commit().await;
        stored.map_err(|e| store_failed(&e))?;
        Ok(check_streamed_update(spec, checked))
    }

    async fn serve_fetch(&self, mut send: SendStream, hash: ContentHash) {
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

/// What a client is told about an upload that did not arrive intact.
fn blob_error(error: &BlobError) -> WireError {
    let code = match error {
        BlobError::TooLarge { .. } | BlobError::TrailingBytes { .. } => ErrorCode::LengthMismatch,
        BlobError::HashMismatch { .. } => ErrorCode::HashMismatch,
        BlobError::Truncated { .. } => ErrorCode::LengthMismatch,
        _ => ErrorCode::Malformed,
    };
    WireError::new(code, error.to_string())
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
