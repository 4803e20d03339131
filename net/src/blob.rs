//! Blobs: tensors and models on their own streams, length-prefixed, size
//! limited and hash-checked while they stream.
//!
//! A blob stream is a little-endian `u64` length, exactly that many bytes,
//! and the end of the stream. The receiver refuses an announced length above
//! its limit before reading any of the body, and hashes the body with BLAKE3
//! (the [`ContentHash`] of the protocol) as it passes to the sink, so a
//! model is never held in memory twice nor trusted before it is checked.

use std::io;

use bytes::Bytes;
use quinn::{ClosedStream, ReadError, RecvStream, SendStream};
use starling_protocol::ContentHash;
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::frame::REFUSED;

/// Packets taken from quinn per read call. Each call locks the connection
/// once; QUIC packets are ~1.2 KiB, so reading them one at a time costs more
/// in locking and wake-ups than hashing them.
const CHUNKS_PER_READ: usize = 64;

/// Bytes gathered before hashing and writing them out. QUIC delivers
/// packet-sized pieces (~1.2 KiB); BLAKE3 only uses its SIMD lanes on inputs
/// of several KiB, and a sink (a file) prefers fewer, larger writes, so small
/// pieces are gathered into one buffer of this size first.
const STAGING: usize = 256 * 1024;

/// Why a blob could not be sent or received.
#[derive(Debug, Error)]
pub enum BlobError {
    /// The sender announced a blob longer than this receiver accepts; nothing was read.
    #[error("the peer announced a {announced}-byte blob but at most {limit} bytes are accepted; it was refused unread")]
    TooLarge {
        /// The largest blob accepted.
        limit: u64,
        /// The length the sender announced.
        announced: u64,
    },
    /// The stream ended before the announced length arrived.
    #[error("the blob stream ended after {received} of {announced} bytes; discard what was received and retry")]
    Truncated {
        /// The announced length.
        announced: u64,
        /// Bytes that arrived (including the length prefix while that was incomplete).
        received: u64,
    },
    /// More bytes followed the announced length.
    #[error("the blob stream carried more than the announced {announced} bytes; discard what was received")]
    TrailingBytes {
        /// The announced length.
        announced: u64,
    },
    /// The blob's BLAKE3 hash is not the one expected.
    #[error(
        "the blob's content hash is {actual} but {expected} was expected; it was corrupted or substituted, \
         so discard everything written to the sink"
    )]
    HashMismatch {
        /// The hash the caller expected.
        expected: ContentHash,
        /// The hash of the bytes received.
        actual: ContentHash,
    },
    /// The peer refused the blob (with [`REFUSED`]), for example because it was too large for it.
    #[error("the peer refused the blob (too large or not acceptable to it)")]
    RefusedByPeer,
    /// Reading from the stream failed.
    #[error("receiving the blob failed: {0}")]
    Read(#[from] ReadError),
    /// Writing to the stream failed.
    #[error("sending the blob failed: {0}")]
    Write(#[from] quinn::WriteError),
    /// The stream was already finished or reset locally.
    #[error("the blob stream was already closed: {0}")]
    Closed(#[from] ClosedStream),
    /// The blob did not arrive within the time the receiver allows (a peer
    /// that sends too slowly, or not at all, holds a stream no longer).
    #[error("the blob did not arrive within {limit_ms} ms; send it again faster")]
    TimedOut {
        /// The time allowed, in milliseconds.
        limit_ms: u64,
    },
    /// Reading the blob to send from its source failed.
    #[error("reading the blob to send failed: {0}")]
    Source(#[source] io::Error),
    /// Writing into the sink failed.
    #[error("storing the received blob failed: {0}")]
    Sink(#[source] io::Error),
}

fn read_error(error: ReadError) -> BlobError {
    match error {
        ReadError::Reset(code) if code == REFUSED => BlobError::RefusedByPeer,
        other => BlobError::Read(other),
    }
}

fn write_error(error: quinn::WriteError) -> BlobError {
    match error {
        quinn::WriteError::Stopped(code) if code == REFUSED => BlobError::RefusedByPeer,
        other => BlobError::Write(other),
    }
}

/// Sends `bytes` as the one blob on `send`, then finishes the stream.
///
/// Returns once everything is handed to quinn, not when the peer has it;
/// wait for the peer's acknowledgement (a response frame, or
/// [`SendStream::stopped`]) before closing the connection.
pub async fn send_blob(send: &mut SendStream, bytes: &[u8]) -> Result<(), BlobError> {
    send.write_all(&(bytes.len() as u64).to_le_bytes()).await.map_err(write_error)?;
    send.write_all(bytes).await.map_err(write_error)?;
    send.finish()?;
    Ok(())
}

/// Sends a blob of `len` bytes read from `source` (a stored file, say): the
/// length prefix, the bytes as they are read through one buffer of at most
/// 256 KiB (memory does not grow with the blob), then the end of the stream.
/// A source that ends before `len` bytes resets the stream (the receiver
/// never takes a short blob for a whole one) and is
/// [`BlobError::Truncated`]; bytes after the first `len` are not sent.
pub async fn send_blob_from(send: &mut SendStream, len: u64, source: impl AsyncRead + Unpin) -> Result<(), BlobError> {
    send.write_all(&len.to_le_bytes()).await.map_err(write_error)?;
    let mut source = source.take(len);
    let mut buffer = vec![0u8; usize::try_from(len.min(STAGING as u64)).unwrap_or(STAGING)];
    let mut sent = 0u64;
    while sent < len {
        let read = source.read(&mut buffer).await.map_err(BlobError::Source)?;
        if read == 0 {
            let _ = send.reset(REFUSED);
            return Err(BlobError::Truncated { announced: len, received: sent });
        }
        send.write_all(&buffer[..read]).await.map_err(write_error)?;
        sent += read as u64;
    }
    send.finish()?;
    Ok(())
}

/// Reads a blob's length prefix, refusing (and stopping the stream) above `max_len`.
async fn read_announced(recv: &mut RecvStream, max_len: u64) -> Result<u64, BlobError> {
    let mut prefix = [0u8; 8];
    recv.read_exact(&mut prefix).await.map_err(|error| match error {
        quinn::ReadExactError::FinishedEarly(received) => {
            BlobError::Truncated { announced: 8, received: received as u64 }
        }
        quinn::ReadExactError::ReadError(error) => read_error(error),
    })?;
    let announced = u64::from_le_bytes(prefix);
    if announced > max_len {
        let _ = recv.stop(REFUSED);
        return Err(BlobError::TooLarge { limit: max_len, announced });
    }
    Ok(announced)
}

/// The alignment of the pieces [`recv_blob_pieces`] hands out: a page, what
/// direct I/O (`O_DIRECT`) asks of a buffer's address and length.
pub const PIECE_ALIGN: usize = 4096;

/// A buffer for one piece of `len` bytes whose first byte will sit at a
/// [`PIECE_ALIGN`]-aligned address, and where that is: `PIECE_ALIGN` bytes
/// more are allocated, and the piece is handed out as a slice of them.
fn aligned_buffer(len: usize) -> (Vec<u8>, usize) {
    let mut buffer: Vec<u8> = Vec::with_capacity(len + PIECE_ALIGN);
    let start = buffer.as_ptr().align_offset(PIECE_ALIGN).min(PIECE_ALIGN);
    buffer.resize(start, 0);
    (buffer, start)
}

/// Receives one blob of at most `max_len` bytes from `recv`, handing it to
/// `each` in pieces as they arrive, and returns its length. Every piece but
/// the last is exactly [`STAGING`] bytes (256 KiB) and starts at a
/// [`PIECE_ALIGN`]-aligned address, so a sink may write it with direct I/O.
/// Unlike [`recv_blob`] it does **not** hash: for a caller that hashes where
/// it stores, so the bytes are hashed once. The same refusals as
/// [`recv_blob`] otherwise; an error from `each` stops the stream with
/// [`REFUSED`] and is returned as is.
pub async fn recv_blob_pieces(
    recv: &mut RecvStream,
    max_len: u64,
    mut each: impl FnMut(Bytes) -> Result<(), BlobError>,
) -> Result<u64, BlobError> {
    let announced = read_announced(recv, max_len).await?;
    let piece = STAGING.min(usize::try_from(announced).unwrap_or(usize::MAX));
    let (mut staged, mut start) = aligned_buffer(piece);
    let mut chunks: [Bytes; CHUNKS_PER_READ] = std::array::from_fn(|_| Bytes::new());
    let mut received: u64 = 0;
    let mut hand = |staged: &mut Vec<u8>, start: &mut usize, recv: &mut RecvStream| {
        let (next, next_start) = aligned_buffer(piece);
        let full = Bytes::from(std::mem::replace(staged, next)).slice(*start..);
        *start = next_start;
        each(full).inspect_err(|_| {
            let _ = recv.stop(REFUSED);
        })
    };
    while let Some(count) = recv.read_chunks(&mut chunks).await.map_err(read_error)? {
        for bytes in chunks[..count].iter_mut().map(std::mem::take) {
            received += bytes.len() as u64;
            if received > announced {
                let _ = recv.stop(REFUSED);
                return Err(BlobError::TrailingBytes { announced });
            }
            let mut rest = &bytes[..];
            while !rest.is_empty() {
                let room = piece - (staged.len() - start);
                let (now, later) = rest.split_at(room.min(rest.len()));
                staged.extend_from_slice(now);
                rest = later;
                if staged.len() - start == piece {
                    hand(&mut staged, &mut start, recv)?;
                }
            }
        }
    }
    if received < announced {
        return Err(BlobError::Truncated { announced, received });
    }
    if staged.len() > start {
        hand(&mut staged, &mut start, recv)?;
    }
    Ok(announced)
}

/// Receives one blob of at most `max_len` bytes from `recv` into `sink`,
/// returning its length and BLAKE3 [`ContentHash`].
///
/// Refuses an announced length above `max_len` before reading any of the
/// body (the stream is stopped with [`REFUSED`]). Errors if the stream ends
/// early, carries bytes past the announced length, or, when `expected` is
/// given, if the hash differs. **On any error the sink may already hold part
/// or all of the bytes: the caller must discard them** (write into a
/// temporary file and keep it only on success).
pub async fn recv_blob<W>(
    recv: &mut RecvStream,
    max_len: u64,
    expected: Option<ContentHash>,
    sink: &mut W,
) -> Result<(u64, ContentHash), BlobError>
where
    W: AsyncWrite + Unpin + ?Sized,
{
    let announced = read_announced(recv, max_len).await?;
    let mut hasher = blake3::Hasher::new();
    let mut staged: Vec<u8> = Vec::with_capacity(STAGING.min(announced as usize));
    let mut chunks: [Bytes; CHUNKS_PER_READ] = std::array::from_fn(|_| Bytes::new());
    let mut received: u64 = 0;
    loop {
        // One call takes every packet quinn has buffered (up to the array's
        // size) under a single lock, without copying them.
        let Some(count) = recv.read_chunks(&mut chunks).await.map_err(read_error)? else {
            break;
        };
        for bytes in chunks[..count].iter_mut().map(std::mem::take) {
            received += bytes.len() as u64;
            if received > announced {
                let _ = recv.stop(REFUSED);
                return Err(BlobError::TrailingBytes { announced });
            }
            if staged.is_empty() && bytes.len() >= STAGING {
                // Already large: hash and store it straight from quinn's buffer.
                hasher.update(&bytes);
                sink.write_all(&bytes).await.map_err(BlobError::Sink)?;
            } else {
                staged.extend_from_slice(&bytes);
                if staged.len() >= STAGING {
                    hasher.update(&staged);
                    sink.write_all(&staged).await.map_err(BlobError::Sink)?;
                    staged.clear();
                }
            }
        }
    }
    if received < announced {
        return Err(BlobError::Truncated { announced, received });
    }
    if !staged.is_empty() {
        hasher.update(&staged);
        sink.write_all(&staged).await.map_err(BlobError::Sink)?;
    }
    sink.flush().await.map_err(BlobError::Sink)?;

    let actual = ContentHash::from_bytes(*hasher.finalize().as_bytes());
    match expected {
        Some(expected) if expected != actual => Err(BlobError::HashMismatch { expected, actual }),
        _ => Ok((announced, actual)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::connected_pair;
    use rand::{RngExt, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn payload(len: usize) -> Vec<u8> {
        let mut bytes = vec![0u8; len];
        ChaCha8Rng::seed_from_u64(42).fill(&mut bytes[..]);
        bytes
    }

    /// Sends `data` as one blob from a task, waiting for the receiver to
    /// have it all; the connection comes back when done, to outlive the test.
    fn send_whole(client: quinn::Connection, data: Vec<u8>) -> tokio::task::JoinHandle<quinn::Connection> {
        tokio::spawn(async move {
            let mut send = client.open_uni().await.unwrap();
            send_blob(&mut send, &data).await.unwrap();
            send.stopped().await.unwrap();
            client
        })
    }

    /// Why receiving a blob of at most 1 MiB from `recv` failed, with
    /// [`recv_blob`] or else [`recv_blob_pieces`]: both refuse alike.
    async fn receive_either(recv: &mut RecvStream, pieces: bool) -> BlobError {
        if pieces {
            recv_blob_pieces(recv, 1 << 20, |_| Ok(())).await.unwrap_err()
        } else {
            recv_blob(recv, 1 << 20, None, &mut Vec::new()).await.unwrap_err()
        }
    }

    #[tokio::test]
    async fn a_blob_arrives_whole_with_its_hash() {
        let (client, server) = connected_pair().await;
        // Not a multiple of the staging size, and larger than one stream window's worth of packets.
        let data = payload(3 * STAGING + 12_345);
        let expected = ContentHash::of(&data);
        let sending = send_whole(client, data.clone());
        let mut recv = server.accept_uni().await.unwrap();
        let mut sink = Vec::new();
        let (len, hash) = recv_blob(&mut recv, 1 << 24, Some(expected), &mut sink).await.unwrap();
        assert_eq!(len, data.len() as u64);
        assert_eq!(hash, expected);
        assert!(sink == data, "the sink holds exactly the blob");
        drop(recv);
        sending.await.unwrap();
    }

    #[tokio::test]
    async fn pieces_arrive_whole_in_order_and_staged() {
        let (client, server) = connected_pair().await;
        let data = payload(3 * STAGING + 12_345);
        let sending = send_whole(client, data.clone());
        let mut recv = server.accept_uni().await.unwrap();
        let mut pieces: Vec<Bytes> = Vec::new();
        let len = recv_blob_pieces(&mut recv, 1 << 24, |piece| {
            pieces.push(piece);
            Ok(())
        })
        .await
        .unwrap();
        assert_eq!(len, data.len() as u64);
        assert_eq!(pieces.concat(), data);
        // Pieces are exactly the staging size, but the last, and each starts
        // on a page, as direct I/O wants.
        let (last, full) = pieces.split_last().unwrap();
        assert_eq!(full.len(), 3);
        assert!(full.iter().all(|p| p.len() == STAGING), "{pieces:?}");
        assert_eq!(last.len(), 12_345);
        assert!(pieces.iter().all(|p| p.as_ptr().align_offset(PIECE_ALIGN) == 0));
        drop(recv);
        sending.await.unwrap();
    }

    #[tokio::test]
    async fn a_failing_piece_taker_stops_the_stream() {
        let (client, server) = connected_pair().await;
        let mut send = client.open_uni().await.unwrap();
        send.write_all(&2000u64.to_le_bytes()).await.unwrap();
        let mut recv = server.accept_uni().await.unwrap();
        let err = recv_blob_pieces(&mut recv, 1000, |_| Ok(())).await.unwrap_err();
        assert!(matches!(err, BlobError::TooLarge { limit: 1000, announced: 2000 }), "{err}");

        let data = payload(2 * STAGING);
        let sending = tokio::spawn(async move {
            let mut send = client.open_uni().await.unwrap();
            let result = send_blob(&mut send, &data).await;
            (result, send.stopped().await, client)
        });
        let mut recv = server.accept_uni().await.unwrap();
        let err = recv_blob_pieces(&mut recv, 1 << 24, |_| Err(BlobError::Sink(io::Error::other("disk full"))))
            .await
            .unwrap_err();
        assert!(matches!(err, BlobError::Sink(_)), "{err}");
        let (result, stopped, _client) = sending.await.unwrap();
        assert!(matches!(result, Ok(()) | Err(BlobError::RefusedByPeer)), "{result:?}");
        assert_eq!(stopped.unwrap(), Some(REFUSED), "the sender learns the blob was refused");
    }

    #[tokio::test]
    async fn an_empty_blob_is_a_blob() {
        let (client, server) = connected_pair().await;
        let mut send = client.open_uni().await.unwrap();
        send_blob(&mut send, b"").await.unwrap();
        let mut recv = server.accept_uni().await.unwrap();
        let mut sink = Vec::new();
        let (len, hash) = recv_blob(&mut recv, 0, Some(ContentHash::of(b"")), &mut sink).await.unwrap();
        assert_eq!((len, hash), (0, ContentHash::of(b"")));
        assert!(sink.is_empty());
    }

    #[tokio::test]
    async fn a_hash_mismatch_is_refused_with_both_hashes() {
        let (client, server) = connected_pair().await;
        let data = payload(100_000);
        let mut send = client.open_uni().await.unwrap();
        send_blob(&mut send, &data).await.unwrap();
        let wrong = ContentHash::of(b"what the coordinator announced");
        let mut recv = server.accept_uni().await.unwrap();
        let err = recv_blob(&mut recv, 1 << 20, Some(wrong), &mut Vec::new()).await.unwrap_err();
        let BlobError::HashMismatch { expected, actual } = err else { panic!("expected a hash mismatch, got {err}") };
        assert_eq!((expected, actual), (wrong, ContentHash::of(&data)));
    }

    #[tokio::test]
    async fn a_truncated_blob_is_refused() {
        let (client, server) = connected_pair().await;
        for pieces in [false, true] {
            let mut send = client.open_uni().await.unwrap();
            send.write_all(&1000u64.to_le_bytes()).await.unwrap();
            send.write_all(&payload(600)).await.unwrap();
            send.finish().unwrap();
            let err = receive_either(&mut server.accept_uni().await.unwrap(), pieces).await;
            assert!(matches!(err, BlobError::Truncated { announced: 1000, received: 600 }), "{err}");
        }
    }

    #[tokio::test]
    async fn trailing_bytes_are_refused() {
        let (client, server) = connected_pair().await;
        for pieces in [false, true] {
            let mut send = client.open_uni().await.unwrap();
            send.write_all(&4u64.to_le_bytes()).await.unwrap();
            send.write_all(b"fourfive").await.unwrap();
            send.finish().unwrap();
            let err = receive_either(&mut server.accept_uni().await.unwrap(), pieces).await;
            assert!(matches!(err, BlobError::TrailingBytes { announced: 4 }), "{err}");
        }
    }

    #[tokio::test]
    async fn an_oversized_blob_is_refused_unread_and_the_sender_told() {
        let (client, server) = connected_pair().await;
        let data = payload(64 * 1024);
        let sending = tokio::spawn(async move {
            let mut send = client.open_uni().await.unwrap();
            let result = send_blob(&mut send, &data).await;
            let stopped = send.stopped().await;
            (result, stopped, client)
        });
        let mut recv = server.accept_uni().await.unwrap();
        let mut sink = Vec::new();
        let err = recv_blob(&mut recv, 1024, None, &mut sink).await.unwrap_err();
        assert!(matches!(err, BlobError::TooLarge { limit: 1024, announced: 65536 }), "{err}");
        assert!(sink.is_empty(), "nothing reached the sink");
        let (result, stopped, _client) = sending.await.unwrap();
        // The sender either finished writing before the stop arrived, or was cut off by it.
        assert!(matches!(result, Ok(()) | Err(BlobError::RefusedByPeer)), "{result:?}");
        assert_eq!(stopped.unwrap(), Some(REFUSED));
    }
}
