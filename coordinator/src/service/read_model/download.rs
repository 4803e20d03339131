//! Model downloads for the HTTP side: a stored model streamed in chunks and
//! hashed on the way, so bytes that no longer match their name end the
//! download with an error instead of completing it under a false `ETag`.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_core::Stream;
use starling_protocol::ContentHash;
use starling_staking::LedgerStore;
use starling_web::{BoxError, ByteStream, ModelBlob, ModelBody, ReadError};
use tokio::io::{AsyncRead, ReadBuf};

use super::artifact_failed;
use crate::artifacts::{ArtifactError, ArtifactStore};
use crate::service::Coordinator;
use crate::store::CoordinatorStore;

/// Bytes per chunk of a model download.
const CHUNK: usize = 64 * 1024;

impl<S, L, A> Coordinator<S, L, A>
where
    S: CoordinatorStore + 'static,
    L: LedgerStore + 'static,
    A: ArtifactStore + 'static,
{
    /// The stored model `hash` as a download that checks its hash on the way.
    pub(super) async fn stream_model(&self, hash: ContentHash, owner: &str) -> Result<ModelBlob, ReadError> {
        // A model a task or version names must be stored: its absence is ours.
        if self.inner.artifacts.len(hash).await.map_err(artifact_failed)?.is_none() {
            return Err(ReadError::internal(format!("{owner}: model {hash} is not in the artifact store")));
        }
        let this = self.clone();
        let open = Box::pin(async move { this.inner.artifacts.open(hash).await });
        let body = ModelStream {
            state: Download::Opening(open),
            hasher: blake3::Hasher::new(),
            hash,
            buf: vec![0; CHUNK].into_boxed_slice(),
        };
        Ok(ModelBlob { hash, body: ModelBody::Stream(Box::pin(body) as ByteStream) })
    }
}

/// Opens the artifact on first poll.
type Opening<R> = Pin<Box<dyn Future<Output = Result<R, ArtifactError>> + Send>>;

enum Download<R> {
    Opening(Opening<R>),
    Reading(R),
    Done,
}

/// A stored model, streamed in chunks and hashed on the way: the store's
/// reader is unchecked, so bytes that no longer hash to the name (disk
/// corruption) end the stream with an error, which cuts the download short
/// rather than completing it under a false `ETag`.
struct ModelStream<R> {
    state: Download<R>,
    hasher: blake3::Hasher,
    hash: ContentHash,
    /// Read into, then copied out: one allocation per download, not per poll.
    buf: Box<[u8]>,
}

impl<R: AsyncRead + Unpin + Send> Stream for ModelStream<R> {
    type Item = Result<Bytes, BoxError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            match &mut this.state {
                Download::Opening(open) => match open.as_mut().poll(cx) {
                    Poll::Ready(Ok(reader)) => this.state = Download::Reading(reader),
                    Poll::Ready(Err(error)) => {
                        this.state = Download::Done;
                        return Poll::Ready(Some(Err(error.into())));
                    }
                    Poll::Pending => return Poll::Pending,
                },
                Download::Reading(reader) => {
                    let mut buf = ReadBuf::new(&mut this.buf);
                    match Pin::new(reader).poll_read(cx, &mut buf) {
                        Poll::Ready(Ok(())) if buf.filled().is_empty() => {
                            this.state = Download::Done;
                            let actual = ContentHash::from_bytes(*this.hasher.finalize().as_bytes());
                            if actual != this.hash {
                                let error = ArtifactError::Corrupt { hash: this.hash, actual };
                                return Poll::Ready(Some(Err(error.into())));
                            }
                            return Poll::Ready(None);
                        }
                        Poll::Ready(Ok(())) => {
                            this.hasher.update(buf.filled());
                            return Poll::Ready(Some(Ok(Bytes::copy_from_slice(buf.filled()))));
                        }
                        Poll::Ready(Err(error)) => {
                            this.state = Download::Done;
                            return Poll::Ready(Some(Err(error.into())));
                        }
                        Poll::Pending => return Poll::Pending,
                    }
                }
                Download::Done => return Poll::Ready(None),
            }
        }
    }
}
