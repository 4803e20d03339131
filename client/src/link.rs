//! A request sent once: the one place a client signs an envelope and puts
//! it on the wire. [`Session`](crate::Session) retries through it; the CLI,
//! whose commands are sent once and reported, uses it directly.

use std::time::{SystemTime, UNIX_EPOCH};

use starling_net::Identity;
use starling_protocol::messages::ReadRequest;
use starling_protocol::{BalanceInfo, Message, Nonce, PublicKey, Request, ResponseBody, TaskId, TaskInfo, WireError};

use crate::disposition::Exchange;
use crate::error::{ClientError, unexpected};
use crate::transport::Transport;

/// The current time in Unix milliseconds, for envelopes and deadlines.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The coordinator's answer to one request, or its refusal.
pub type Answer = Result<ResponseBody, WireError>;

/// A coordinator reached through a [`Transport`], each request sent once.
///
/// A lost answer is reported, never resent: resending a signed request
/// needs a fresh signature (the coordinator takes a replayed nonce as a
/// second request), which is the [`Session`](crate::Session)'s job.
#[derive(Debug)]
pub struct Link<T> {
    transport: T,
}

impl<T: Transport> Link<T> {
    /// Requests over `transport`.
    pub fn new(transport: T) -> Self {
        Self { transport }
    }

    /// The transport.
    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// The transport, for a client that goes on with it.
    pub fn into_transport(self) -> T {
        self.transport
    }

    /// Signs `message` as `identity` (a fresh nonce, the current time) and
    /// sends it, with `blob` after it for uploads.
    pub async fn signed<M: Message + Sync>(
        &self,
        identity: &Identity,
        message: &M,
        blob: Option<&[u8]>,
    ) -> Result<Answer, ClientError> {
        let request = self.sign(identity, message)?;
        let response = match blob {
            Some(blob) => self.transport.upload(&request, blob).await?,
            None => self.transport.call(&request).await?,
        };
        Ok(response.into_result())
    }

    /// `message` signed as `identity`, with a fresh nonce and the current time.
    pub fn sign<M: Message>(&self, identity: &Identity, message: &M) -> Result<Request, ClientError> {
        let nonce = Nonce::generate(&mut rand::rng());
        Ok(Request::sign(identity.signing_key(), message, nonce, now_ms())?)
    }

    /// An unsigned read.
    pub async fn read(&self, read: ReadRequest) -> Result<Answer, ClientError> {
        Ok(self.transport.call(&Request::Read(read)).await?.into_result())
    }

    /// `key`'s balances and bonds.
    pub async fn balance(&self, key: PublicKey) -> Result<BalanceInfo, ClientError> {
        match self.read(ReadRequest::GetBalance { key }).await? {
            Ok(ResponseBody::Balance(info)) => Ok(info),
            Ok(other) => Err(unexpected("get-balance", &other)),
            Err(error) => Err(ClientError::Refused { exchange: Exchange::Read, error }),
        }
    }

    /// A task's spec and current round.
    pub async fn task(&self, task: TaskId) -> Result<TaskInfo, ClientError> {
        match self.read(ReadRequest::GetTask { task }).await? {
            Ok(ResponseBody::Task(info)) => Ok(*info),
            Ok(other) => Err(unexpected("get-task", &other)),
            Err(error) => Err(ClientError::Refused { exchange: Exchange::Read, error }),
        }
    }
}
