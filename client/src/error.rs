//! Why an exchange with the coordinator failed, for every client.

use std::io;

use starling_protocol::{ContentHash, EnvelopeError, ResponseBody, WireError};
use thiserror::Error;

use crate::disposition::Exchange;
use crate::transport::TransportError;
use crate::update::UpdateError;

/// Why an exchange with the coordinator failed for good.
#[derive(Debug, Error)]
pub enum ClientError {
    /// The connection or framing failed in a way retrying cannot fix.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The coordinator refused the request and retrying cannot change that
    /// (see [`Disposition::Fail`](crate::Disposition::Fail)).
    #[error("the coordinator refused {exchange:?}: {error}")]
    Refused {
        /// What was refused.
        exchange: Exchange,
        /// The coordinator's code and message.
        error: WireError,
    },
    /// Every retry failed; `last` is the last failure.
    #[error("gave up after {attempts} attempts: {last}")]
    RetriesExhausted {
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        last: Box<ClientError>,
    },
    /// Shutdown was asked for while waiting to retry.
    #[error("shut down while waiting to retry")]
    ShutDown,
    /// A request could not be signed.
    #[error("signing the request failed: {0}")]
    Sign(#[from] EnvelopeError),
    /// The coordinator answered with a body this request cannot get.
    #[error("the coordinator answered {request} with an unexpected {answer}")]
    UnexpectedAnswer {
        /// The request.
        request: &'static str,
        /// The kind of body that came back.
        answer: &'static str,
    },
    /// A model fetched from the coordinator is not the task's model (its
    /// hash matched, so the coordinator stored something wrong).
    #[error("the coordinator's model {hash} is not a valid model for the task: {error}")]
    BadModel {
        /// The model's hash.
        hash: ContentHash,
        /// What is wrong with it.
        error: UpdateError,
    },
    /// The local blob cache or state files could not be used.
    #[error("local storage failed: {0}")]
    Storage(#[from] io::Error),
}

fn body_name(body: &ResponseBody) -> &'static str {
    match body {
        ResponseBody::Ack => "ack",
        ResponseBody::TaskCreated { .. } => "task-created",
        ResponseBody::UpdateAccepted { .. } => "update-accepted",
        ResponseBody::Bonded { .. } => "bonded",
        ResponseBody::Unbonded { .. } => "unbonded",
        ResponseBody::Task(_) => "task",
        ResponseBody::Round(_) => "round",
        ResponseBody::Assignments(_) => "assignments",
        ResponseBody::Blob { .. } => "blob",
        ResponseBody::Balance(_) => "balance",
    }
}

/// A [`ClientError::UnexpectedAnswer`] for `body` answering `request`.
pub fn unexpected(request: &'static str, body: &ResponseBody) -> ClientError {
    ClientError::UnexpectedAnswer { request, answer: body_name(body) }
}
