//! Control messages: length-prefixed frames on QUIC streams, and one
//! request/response exchange per bidirectional stream.
//!
//! A frame is a big-endian `u32` length followed by that many bytes (a
//! postcard-encoded signed envelope, in practice). The receiver names the
//! largest frame it accepts and refuses a longer announced length before
//! reading or allocating the body.

use quinn::{ClosedStream, Connection, ConnectionError, ReadError, ReadExactError, RecvStream, SendStream, VarInt};
use thiserror::Error;

/// Application error code with which a receiver stops (or a responder
/// resets) a stream it refuses, for example because the announced length
/// exceeds its limit. The peer sees it as [`FrameError::RefusedByPeer`] or
/// [`crate::BlobError::RefusedByPeer`].
pub const REFUSED: VarInt = VarInt::from_u32(1);

/// Why a frame could not be sent or received.
#[derive(Debug, Error)]
pub enum FrameError {
    /// The peer announced a frame longer than this side accepts; the body was not read.
    #[error(
        "the peer announced a {announced}-byte message but at most {limit} bytes are accepted; the message was refused unread"
    )]
    TooLarge {
        /// The largest frame accepted.
        limit: usize,
        /// The length the peer announced.
        announced: u64,
    },
    /// A frame longer than the `u32` length prefix can describe was to be sent.
    #[error("a {len}-byte control message cannot be framed (at most 4 GiB); send large data as a blob instead")]
    TooLargeToSend {
        /// The message length.
        len: usize,
    },
    /// The stream ended before the whole frame arrived.
    #[error("the stream ended after {received} of {expected} bytes of a message; the peer gave up or crashed")]
    Truncated {
        /// Bytes the frame needed (prefix or body).
        expected: u64,
        /// Bytes that arrived.
        received: u64,
    },
    /// More bytes followed the one frame a request or response stream may carry.
    #[error("the peer sent more than one message on a request stream; it is not speaking this protocol correctly")]
    TrailingBytes,
    /// The peer refused the stream (with [`REFUSED`]), for example because the frame was too large for it.
    #[error("the peer refused the message (too large or not acceptable to it)")]
    RefusedByPeer,
    /// The connection failed while opening or accepting a stream.
    #[error("the connection failed: {0}")]
    Connection(#[from] ConnectionError),
    /// Reading from the stream failed.
    #[error("reading the message failed: {0}")]
    Read(#[from] ReadError),
    /// Writing to the stream failed.
    #[error("sending the message failed: {0}")]
    Write(#[from] quinn::WriteError),
    /// The stream was already finished or reset locally.
    #[error("the stream was already closed: {0}")]
    Closed(#[from] ClosedStream),
}

/// Maps a failed `read_exact` of `expected` bytes.
fn read_exact_error(error: ReadExactError, expected: u64) -> FrameError {
    match error {
        ReadExactError::FinishedEarly(received) => FrameError::Truncated { expected, received: received as u64 },
        ReadExactError::ReadError(error) => read_error(error),
    }
}

fn read_error(error: ReadError) -> FrameError {
    match error {
        ReadError::Reset(code) if code == REFUSED => FrameError::RefusedByPeer,
        other => FrameError::Read(other),
    }
}

fn write_error(error: quinn::WriteError) -> FrameError {
    match error {
        quinn::WriteError::Stopped(code) if code == REFUSED => FrameError::RefusedByPeer,
        other => FrameError::Write(other),
    }
}

/// Writes `bytes` as one frame. Does not finish the stream.
pub async fn write_frame(send: &mut SendStream, bytes: &[u8]) -> Result<(), FrameError> {
    let len = u32::try_from(bytes.len()).map_err(|_| FrameError::TooLargeToSend { len: bytes.len() })?;
    send.write_all(&len.to_be_bytes()).await.map_err(write_error)?;
    send.write_all(bytes).await.map_err(write_error)
}

/// Reads one frame of at most `max_len` bytes.
///
/// A longer announced length is refused before any of the body is read or
/// memory allocated for it: the stream is stopped with [`REFUSED`] and
/// [`FrameError::TooLarge`] returned.
pub async fn read_frame(recv: &mut RecvStream, max_len: usize) -> Result<Vec<u8>, FrameError> {
    let mut prefix = [0u8; 4];
    recv.read_exact(&mut prefix).await.map_err(|error| read_exact_error(error, 4))?;
    let announced = u32::from_be_bytes(prefix);
    if u64::from(announced) > max_len as u64 {
        // Already finished or reset streams need no stop; nothing to report.
        let _ = recv.stop(REFUSED);
        return Err(FrameError::TooLarge { limit: max_len, announced: u64::from(announced) });
    }
    let mut body = vec![0u8; announced as usize];
    recv.read_exact(&mut body).await.map_err(|error| read_exact_error(error, u64::from(announced)))?;
    Ok(body)
}

/// Reads what must be the end of a one-frame stream.
async fn read_end(recv: &mut RecvStream) -> Result<(), FrameError> {
    match recv.read_chunk(1, true).await.map_err(read_error)? {
        None => Ok(()),
        Some(_) => {
            let _ = recv.stop(REFUSED);
            Err(FrameError::TrailingBytes)
        }
    }
}

/// Sends `request` on a fresh bidirectional stream and returns the response
/// frame (at most `max_response` bytes; the response stream must end after it).
pub async fn request(connection: &Connection, request: &[u8], max_response: usize) -> Result<Vec<u8>, FrameError> {
    let (mut send, mut recv) = connection.open_bi().await?;
    write_frame(&mut send, request).await?;
    send.finish()?;
    let response = read_frame(&mut recv, max_response).await?;
    read_end(&mut recv).await?;
    Ok(response)
}

/// A request received by [`accept_request`], waiting for its response.
#[derive(Debug)]
pub struct Request {
    body: Vec<u8>,
    reply: SendStream,
}

impl Request {
    /// The request frame.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// Takes the request frame, for decoding without a copy.
    pub fn take_body(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.body)
    }

    /// Sends `response` as the one frame of the reply, finishes the stream
    /// and waits until the requester has read all of it.
    ///
    /// Waiting matters: dropping the last handle to a connection closes it
    /// at once and discards replies still in flight, so a handler may drop
    /// its connection as soon as this returns.
    pub async fn respond(mut self, response: &[u8]) -> Result<(), FrameError> {
        write_frame(&mut self.reply, response).await?;
        self.reply.finish()?;
        match self.reply.stopped().await {
            Ok(None) => Ok(()),
            Ok(Some(code)) if code == REFUSED => Err(FrameError::RefusedByPeer),
            Ok(Some(code)) => Err(FrameError::Write(quinn::WriteError::Stopped(code))),
            Err(quinn::StoppedError::ConnectionLost(error)) => Err(FrameError::Connection(error)),
            Err(quinn::StoppedError::ZeroRttRejected) => Err(FrameError::Write(quinn::WriteError::ZeroRttRejected)),
        }
    }

    /// Refuses the request without a response: the requester sees
    /// [`FrameError::RefusedByPeer`].
    pub fn refuse(mut self) {
        // Only fails if the stream is already closed, when there is nothing to refuse.
        let _ = self.reply.reset(REFUSED);
    }
}

/// Waits for the peer's next request (of at most `max_request` bytes) on a
/// new bidirectional stream: the server side of [`request`].
///
/// The request stream must carry exactly one frame and then end.
///
/// This waits for the whole request, so a peer that opens a stream and then
/// sends slowly holds up the caller: serve each connection in its own task,
/// and bound the wait with `tokio::time::timeout` where one connection's
/// requests must not stall each other.
/// Returns `Ok(None)` once the connection has been closed by either side
/// in an orderly way. A request that is too large or truncated is refused
/// (the requester sees [`FrameError::RefusedByPeer`]) and reported as an
/// error; the connection stays usable.
pub async fn accept_request(connection: &Connection, max_request: usize) -> Result<Option<Request>, FrameError> {
    let (mut reply, mut recv) = match connection.accept_bi().await {
        Ok(streams) => streams,
        Err(ConnectionError::ApplicationClosed(_) | ConnectionError::LocallyClosed) => return Ok(None),
        Err(error) => return Err(error.into()),
    };
    let body = async {
        let body = read_frame(&mut recv, max_request).await?;
        read_end(&mut recv).await?;
        Ok(body)
    };
    match body.await {
        Ok(body) => Ok(Some(Request { body, reply })),
        Err(error) => {
            let _ = reply.reset(REFUSED);
            Err(error)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::connected_pair;

    #[tokio::test]
    async fn request_and_response_round_trip() {
        let (client, server) = connected_pair().await;
        let serving = tokio::spawn(async move {
            let request = accept_request(&server, 1024).await.unwrap().expect("one request");
            let mut reply = request.body().to_vec();
            reply.reverse();
            request.respond(&reply).await.unwrap();
            server
        });
        let response = request(&client, b"hello", 1024).await.unwrap();
        assert_eq!(response, b"olleh");
        let server = serving.await.unwrap();
        client.close(VarInt::from_u32(0), b"done");
        assert!(accept_request(&server, 1024).await.unwrap().is_none(), "an orderly close ends the loop");
    }

    #[tokio::test]
    async fn empty_frames_are_frames() {
        let (client, server) = connected_pair().await;
        let serving = tokio::spawn(async move {
            let request = accept_request(&server, 0).await.unwrap().unwrap();
            assert!(request.body().is_empty());
            request.respond(b"").await.unwrap();
        });
        assert_eq!(request(&client, b"", 0).await.unwrap(), b"");
        serving.await.unwrap();
    }

    #[tokio::test]
    async fn an_oversized_frame_is_refused_before_its_body_is_read() {
        let (client, server) = connected_pair().await;
        let (mut send, _recv) = client.open_bi().await.unwrap();
        // Announce 1 GiB but send only a few bytes of it and keep the stream
        // open: a receiver that tried to read the body would wait forever.
        send.write_all(&(1u32 << 30).to_be_bytes()).await.unwrap();
        send.write_all(b"the start of a huge body").await.unwrap();

        let (_reply, mut recv) = server.accept_bi().await.unwrap();
        let err = read_frame(&mut recv, 64 * 1024).await.unwrap_err();
        assert!(matches!(err, FrameError::TooLarge { limit: 65536, announced: 1_073_741_824 }), "{err}");
        assert!(err.to_string().contains("65536") && err.to_string().contains("1073741824"), "{err}");
        // The sender learns it was refused.
        assert_eq!(send.stopped().await.unwrap(), Some(REFUSED));
    }

    #[tokio::test]
    async fn an_oversized_request_is_refused_and_the_requester_told() {
        let (client, server) = connected_pair().await;
        // The task hands its connection back: dropping the last handle would close it.
        let serving = tokio::spawn(async move { (accept_request(&server, 4).await.map(|_| ()), server) });
        let err = request(&client, b"too long", 1024).await.unwrap_err();
        assert!(matches!(err, FrameError::RefusedByPeer), "{err}");
        let (result, _server) = serving.await.unwrap();
        let server_err = result.unwrap_err();
        assert!(matches!(server_err, FrameError::TooLarge { limit: 4, announced: 8 }), "{server_err}");
    }

    #[tokio::test]
    async fn a_truncated_frame_is_an_error() {
        let (client, server) = connected_pair().await;
        let (mut send, _recv) = client.open_bi().await.unwrap();
        send.write_all(&10u32.to_be_bytes()).await.unwrap();
        send.write_all(b"four").await.unwrap();
        send.finish().unwrap();
        let (_reply, mut recv) = server.accept_bi().await.unwrap();
        let err = read_frame(&mut recv, 1024).await.unwrap_err();
        assert!(matches!(err, FrameError::Truncated { expected: 10, received: 4 }), "{err}");
    }
}
