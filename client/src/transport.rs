//! How a client talks to the coordinator: one request per bidirectional
//! QUIC stream, with blobs on the same stream when a request carries or
//! returns one.
//!
//! # Framing
//!
//! A *frame* is a big-endian `u32` length and that many bytes
//! ([`starling_net::write_frame`]); a *blob* is a little-endian `u64`
//! length, that many bytes, then the end of the stream
//! ([`starling_net::send_blob`]). Requests and responses are the
//! postcard-encoded [`Request`] and [`Response`], each at most
//! [`MAX_CONTROL_MESSAGE`] bytes.
//!
//! - **Plain request** (every read but `FetchBlob`, and every signed request
//!   but `SubmitUpdate`, `CreateTask` and `FetchUpdate`): the client sends
//!   `frame(request)` and finishes its side; the server answers
//!   `frame(response)` and finishes. This is [`starling_net::request`].
//! - **Upload** (`SubmitUpdate`, `CreateTask`): the client sends
//!   `frame(request)`, then `blob(bytes)` (whose end finishes its side), and
//!   reads `frame(response)`. The server reads the frame and checks the
//!   envelope, fields and state first; if it refuses, it answers
//!   `frame(Response::Error)` at once and stops its receiving side with
//!   [`starling_net::REFUSED`] without reading the blob. Otherwise it reads
//!   the blob with the message's announced length as the limit and its hash
//!   as the expected hash, checks the payload, and answers. A client whose
//!   blob was cut off by such a refusal still reads the response.
//! - **Download** (`FetchBlob { hash }`, or a signed `FetchUpdate`): the
//!   client sends `frame(request)` and finishes; the server answers `frame(response)`; if the response is
//!   `Ok(Blob { hash, len })`, `blob(bytes)` follows on the same stream
//!   (`len` bytes hashing to `hash`), otherwise the stream ends after the
//!   frame. The client checks the announced hash and length against what it
//!   asked for before reading, and the bytes' hash while they stream.

use std::future::Future;

use starling_net::quinn::{self, Connection};
use starling_net::{
    BlobError, ClientEndpoint, ConnectError, FrameError, REFUSED, read_frame, recv_blob, send_blob, write_frame,
};
use starling_protocol::messages::CodecError;
use starling_protocol::{ContentHash, MAX_CONTROL_MESSAGE, Request, Response, ResponseBody, WireError};
use thiserror::Error;
use tokio::sync::Mutex;

/// Why an exchange with the coordinator failed below the protocol: the
/// connection, the framing, or a response that makes no sense. (A refusal
/// by the coordinator is a [`WireError`], not this.)
#[derive(Debug, Error)]
pub enum TransportError {
    /// No connection could be established.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// A control frame could not be sent or received.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// A blob could not be sent or received, or failed its hash check.
    #[error(transparent)]
    Blob(#[from] BlobError),
    /// A request could not be encoded or a response decoded.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// The coordinator answered with something this request cannot get.
    #[error("the coordinator answered {request} with {answer}")]
    UnexpectedResponse {
        /// The request, by name.
        request: &'static str,
        /// What came back, in short.
        answer: String,
    },
    /// The coordinator announced a blob other than the one asked for.
    #[error("asked for blob {expected} of at most {max_len} bytes, the coordinator announced {announced} of {len}")]
    WrongBlob {
        /// The hash asked for.
        expected: ContentHash,
        /// The largest length accepted.
        max_len: u64,
        /// The hash announced.
        announced: ContentHash,
        /// The length announced.
        len: u64,
    },
}

impl TransportError {
    /// Whether trying again (on a new connection if need be) may succeed:
    /// true for lost connections, timeouts, truncated streams and corrupted
    /// transfers; false for refusals, oversized messages, trust failures
    /// and protocol violations.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Connect(error) => matches!(error, ConnectError::Resolve { .. } | ConnectError::Handshake { .. }),
            Self::Frame(error) => matches!(
                error,
                FrameError::Truncated { .. } | FrameError::Connection(_) | FrameError::Read(_) | FrameError::Write(_)
            ),
            Self::Blob(error) => matches!(
                error,
                BlobError::Truncated { .. } | BlobError::HashMismatch { .. } | BlobError::Read(_) | BlobError::Write(_)
            ),
            Self::Codec(_) | Self::UnexpectedResponse { .. } | Self::WrongBlob { .. } => false,
        }
    }
}

/// The most a fetch reserves before any of the blob has arrived.
const INITIAL_RESERVE: u64 = 1 << 20;

/// A blob fetched by [`Transport::fetch`]: its bytes, or the coordinator's refusal.
pub type Fetched = Result<Vec<u8>, WireError>;

/// The three exchanges a client makes, whatever carries them. The QUIC
/// implementation is [`QuicTransport`]; tests may script their own.
pub trait Transport: Send + Sync {
    /// Sends a plain request and returns the coordinator's response.
    fn call(&self, request: &Request) -> impl Future<Output = Result<Response, TransportError>> + Send;

    /// Sends a request followed by `blob` (an upload) and returns the response.
    fn upload(&self, request: &Request, blob: &[u8]) -> impl Future<Output = Result<Response, TransportError>> + Send;

    /// Sends `request` (an unsigned [`FetchBlob`](starling_protocol::ReadRequest::FetchBlob)
    /// or a signed [`FetchUpdate`](starling_protocol::FetchUpdate)) and
    /// receives the blob `hash` of at most `max_len` bytes it asks for; the
    /// bytes returned hash to `hash`.
    fn fetch(
        &self,
        request: &Request,
        hash: ContentHash,
        max_len: u64,
    ) -> impl Future<Output = Result<Fetched, TransportError>> + Send;
}

/// [`Transport`] over a QUIC connection to the coordinator, reconnecting
/// after the connection is lost when it knows how to (built with
/// [`QuicTransport::new`]).
#[derive(Debug)]
pub struct QuicTransport {
    dial: Option<(ClientEndpoint, String)>,
    connection: Mutex<Option<Connection>>,
}

impl QuicTransport {
    /// A transport that connects to `target` (`host:port`) through
    /// `endpoint` on first use, and again whenever the connection drops.
    pub fn new(endpoint: ClientEndpoint, target: impl Into<String>) -> Self {
        Self { dial: Some((endpoint, target.into())), connection: Mutex::new(None) }
    }

    /// A transport over an established connection; once it is lost, every
    /// exchange fails.
    pub fn from_connection(connection: Connection) -> Self {
        Self { dial: None, connection: Mutex::new(Some(connection)) }
    }

    /// The live connection, dialling a new one if there is none or it closed.
    async fn connection(&self) -> Result<Connection, TransportError> {
        let mut slot = self.connection.lock().await;
        if let Some(connection) = slot.as_ref()
            && (connection.close_reason().is_none() || self.dial.is_none())
        {
            return Ok(connection.clone());
        }
        let (endpoint, target) = self.dial.as_ref().expect("a transport without dial details always has a connection");
        let connection = starling_net::connect(endpoint, target).await?;
        *slot = Some(connection.clone());
        Ok(connection)
    }

    async fn exchange<T>(
        &self,
        work: impl AsyncFnOnce(Connection) -> Result<T, TransportError>,
    ) -> Result<T, TransportError> {
        let connection = self.connection().await?;
        let result = work(connection.clone()).await;
        if result.is_err() && connection.close_reason().is_some() && self.dial.is_some() {
            // Dial afresh next time (unless another exchange already did).
            let mut slot = self.connection.lock().await;
            if slot.as_ref().is_some_and(|c| c.stable_id() == connection.stable_id()) {
                *slot = None;
            }
        }
        result
    }
}

fn decode_response(bytes: &[u8]) -> Result<Response, TransportError> {
    Ok(Response::from_bytes(bytes, MAX_CONTROL_MESSAGE)?)
}

/// Reads the one response frame of a request stream.
async fn read_response(recv: &mut quinn::RecvStream) -> Result<Response, TransportError> {
    decode_response(&read_frame(recv, MAX_CONTROL_MESSAGE).await?)
}

impl Transport for QuicTransport {
    async fn call(&self, request: &Request) -> Result<Response, TransportError> {
        let bytes = request.to_bytes()?;
        self.exchange(async |connection| {
            decode_response(&starling_net::request(&connection, &bytes, MAX_CONTROL_MESSAGE).await?)
        })
        .await
    }

    async fn upload(&self, request: &Request, blob: &[u8]) -> Result<Response, TransportError> {
        let bytes = request.to_bytes()?;
        self.exchange(async |connection| {
            let (mut send, mut recv) = connection.open_bi().await.map_err(FrameError::from)?;
            write_frame(&mut send, &bytes).await?;
            let sent = send_blob(&mut send, blob).await;
            // A refusal stops the blob part-way; the response says why.
            match (sent, read_response(&mut recv).await) {
                (_, Ok(response)) => Ok(response),
                (Err(error), Err(_)) if !matches!(error, BlobError::RefusedByPeer) => Err(error.into()),
                (_, Err(error)) => Err(error),
            }
        })
        .await
    }

    async fn fetch(&self, request: &Request, hash: ContentHash, max_len: u64) -> Result<Fetched, TransportError> {
        let bytes = request.to_bytes()?;
        self.exchange(async |connection| {
            let (mut send, mut recv) = connection.open_bi().await.map_err(FrameError::from)?;
            write_frame(&mut send, &bytes).await?;
            send.finish().map_err(FrameError::from)?;
            let (announced, len) = match read_response(&mut recv).await? {
                Response::Ok(ResponseBody::Blob { hash, len }) => (hash, len),
                Response::Error(error) => return Ok(Err(error)),
                Response::Ok(other) => {
                    return Err(TransportError::UnexpectedResponse {
                        request: "fetch",
                        answer: format!("{other:?}").chars().take(120).collect(),
                    });
                }
            };
            if announced != hash || len > max_len {
                let _ = recv.stop(REFUSED);
                return Err(TransportError::WrongBlob { expected: hash, max_len, announced, len });
            }
            // Memory grows with the bytes that arrive, not with the length
            // the server announced.
            let mut sink = Vec::with_capacity(usize::try_from(len.min(INITIAL_RESERVE)).unwrap_or(0));
            let (received, _) = recv_blob(&mut recv, len, Some(hash), &mut sink).await?;
            if received != len {
                return Err(TransportError::WrongBlob { expected: hash, max_len, announced, len: received });
            }
            Ok(Ok(sink))
        })
        .await
    }
}
