//! Requests to the coordinator with retries, signing and the blob cache:
//! what the trainer and the validator clients share.

use std::sync::atomic::{AtomicU64, Ordering};

use starling_net::Identity;
use starling_protocol::messages::ReadRequest;
use starling_protocol::{
    ContentHash, ErrorCode, FetchUpdate, JoinTask, Message, NamedTensor, PublicKey, Request, ResponseBody, Role,
    RoundInfo, TaskId, TaskInfo, TensorSpec, WireError,
};

use crate::backoff::Backoff;
use crate::cache::BlobCache;
use crate::disposition::{Disposition, Exchange, disposition};
use crate::error::{ClientError, unexpected};
use crate::link::Link;
use crate::shutdown::Shutdown;
use crate::transport::Transport;
use crate::update::decode_tensors;

/// How a client's run in a task (a trainer's, a validator's) ended
/// without error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The task is over.
    TaskFinished,
    /// Shutdown was asked for.
    Shutdown,
}

/// How an exchange ended when it did not fail.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome<T> {
    /// It succeeded with this answer.
    Done(T),
    /// It had already taken effect ([`Disposition::AlreadyDone`]).
    AlreadyDone,
    /// The round moved on or is not ours; the refusal says how
    /// ([`Disposition::SkipRound`]).
    Skip(WireError),
    /// The task is over.
    TaskOver,
}

impl<T> Outcome<T> {
    /// Applies `f` to a [`Outcome::Done`] answer.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Outcome<U> {
        match self {
            Self::Done(value) => Outcome::Done(f(value)),
            Self::AlreadyDone => Outcome::AlreadyDone,
            Self::Skip(error) => Outcome::Skip(error),
            Self::TaskOver => Outcome::TaskOver,
        }
    }
}

/// A node's conversation with the coordinator: signs with its identity,
/// retries what may succeed later (with a fresh signature each time, so a
/// `Stale` envelope is never resent), and classifies every refusal with
/// [`disposition`].
#[derive(Debug)]
pub struct Session<T> {
    link: Link<T>,
    identity: Identity,
    retry: Backoff,
    seed: u64,
    draws: AtomicU64,
}

impl<T: Transport> Session<T> {
    /// A session over `transport` signing as `identity`, retrying by
    /// `retry` with jitter drawn from `seed`.
    pub fn new(transport: T, identity: Identity, retry: Backoff, seed: u64) -> Self {
        Self { link: Link::new(transport), identity, retry, seed, draws: AtomicU64::new(0) }
    }

    /// The key this session signs with.
    pub fn public_key(&self) -> PublicKey {
        self.identity.public_key()
    }

    /// The transport.
    pub fn transport(&self) -> &T {
        self.link.transport()
    }

    /// A seed for the next sequence of jitter, distinct per sequence.
    pub fn next_seed(&self) -> u64 {
        let n = self.draws.fetch_add(1, Ordering::Relaxed);
        self.seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }

    /// Runs `once` until it succeeds or is refused for good, waiting by the
    /// retry policy between retryable failures.
    async fn with_retries<R>(
        &self,
        exchange: Exchange,
        shutdown: &mut Shutdown,
        mut once: impl AsyncFnMut() -> Result<Result<R, WireError>, ClientError>,
    ) -> Result<Outcome<R>, ClientError> {
        let mut backoff = self.retry.start(self.next_seed());
        loop {
            let error = match once().await {
                Ok(Ok(answer)) => return Ok(Outcome::Done(answer)),
                Ok(Err(error)) => match disposition(error.code, exchange) {
                    Disposition::Retry => ClientError::Refused { exchange, error },
                    Disposition::AlreadyDone => return Ok(Outcome::AlreadyDone),
                    Disposition::SkipRound => return Ok(Outcome::Skip(error)),
                    Disposition::TaskOver => return Ok(Outcome::TaskOver),
                    Disposition::Fail => return Err(ClientError::Refused { exchange, error }),
                },
                Err(ClientError::Transport(error)) if error.is_retryable() => ClientError::Transport(error),
                Err(error) => return Err(error),
            };
            let Some(delay) = backoff.next_delay() else {
                return Err(ClientError::RetriesExhausted { attempts: backoff.attempts() + 1, last: Box::new(error) });
            };
            if shutdown.sleep(delay).await {
                return Err(ClientError::ShutDown);
            }
        }
    }

    /// An unsigned read.
    pub async fn read(&self, read: ReadRequest, shutdown: &mut Shutdown) -> Result<Outcome<ResponseBody>, ClientError> {
        let exchange = if matches!(read, ReadRequest::FetchBlob { .. }) { Exchange::Fetch } else { Exchange::Read };
        self.with_retries(exchange, shutdown, async || self.link.read(read).await).await
    }

    /// The task's current round, or `None` before round 0 opens.
    pub async fn round(
        &self,
        task: TaskId,
        shutdown: &mut Shutdown,
    ) -> Result<Outcome<Option<RoundInfo>>, ClientError> {
        self.with_retries(Exchange::Read, shutdown, async || {
            Ok(match self.link.read(ReadRequest::GetRound { task }).await? {
                Ok(ResponseBody::Round(round)) => Ok(Some(round)),
                Ok(other) => return Err(unexpected("get-round", &other)),
                // Not an error to retry for a while but a state to wait out.
                Err(error) if error.code == ErrorCode::NotStarted => Ok(None),
                Err(error) => Err(error),
            })
        })
        .await
    }

    /// Signs `message` afresh for every attempt and sends it, with `blob`
    /// after it when there is one.
    pub async fn signed<M>(
        &self,
        message: &M,
        exchange: Exchange,
        blob: Option<&[u8]>,
        shutdown: &mut Shutdown,
    ) -> Result<Outcome<ResponseBody>, ClientError>
    where
        M: Message + Sync,
    {
        self.with_retries(exchange, shutdown, async || self.link.signed(&self.identity, message, blob).await).await
    }

    /// Joins `task` in `role` (joining twice is fine) and reads its spec.
    /// [`Outcome::TaskOver`] when the task is over.
    pub async fn join(
        &self,
        task: TaskId,
        role: Role,
        shutdown: &mut Shutdown,
    ) -> Result<Outcome<Box<TaskInfo>>, ClientError> {
        let refused = |exchange, error| ClientError::Refused { exchange, error };
        match self.signed(&JoinTask { task, role }, Exchange::Join, None, shutdown).await? {
            Outcome::Done(ResponseBody::Ack) | Outcome::AlreadyDone => {}
            Outcome::Done(other) => return Err(unexpected("join-task", &other)),
            Outcome::TaskOver => return Ok(Outcome::TaskOver),
            // Joining is not about a round: a refusal to skip one is a refusal.
            Outcome::Skip(error) => return Err(refused(Exchange::Join, error)),
        }
        match self.read(ReadRequest::GetTask { task }, shutdown).await? {
            Outcome::Done(ResponseBody::Task(info)) => Ok(Outcome::Done(info)),
            Outcome::Done(other) => Err(unexpected("get-task", &other)),
            Outcome::TaskOver => Ok(Outcome::TaskOver),
            Outcome::AlreadyDone => Err(unexpected("get-task", &ResponseBody::Ack)),
            Outcome::Skip(error) => Err(refused(Exchange::Read, error)),
        }
    }

    /// The public model `hash`, at most `max_len` bytes, hash-checked.
    pub async fn fetch(
        &self,
        hash: ContentHash,
        max_len: u64,
        shutdown: &mut Shutdown,
    ) -> Result<Outcome<Vec<u8>>, ClientError> {
        let request = Request::Read(ReadRequest::FetchBlob { hash });
        self.with_retries(Exchange::Fetch, shutdown, async || {
            Ok(self.link.transport().fetch(&request, hash, max_len).await?)
        })
        .await
    }

    /// The update `hash` of `read.submission`, at most `max_len` bytes,
    /// hash-checked: updates are private, so the request is signed (afresh
    /// for every attempt) and the coordinator answers only the update's
    /// trainer and the validators assigned to score it.
    pub async fn fetch_update(
        &self,
        read: FetchUpdate,
        hash: ContentHash,
        max_len: u64,
        shutdown: &mut Shutdown,
    ) -> Result<Outcome<Vec<u8>>, ClientError> {
        self.with_retries(Exchange::Fetch, shutdown, async || {
            let request = self.link.sign(&self.identity, &read)?;
            Ok(self.link.transport().fetch(&request, hash, max_len).await?)
        })
        .await
    }

    /// The model `hash` as exactly the tensors `specs`, from `cache` when
    /// it holds an intact copy, else fetched (at most `limit` bytes),
    /// checked, and cached.
    pub async fn model(
        &self,
        cache: &BlobCache,
        hash: ContentHash,
        specs: &[TensorSpec],
        limit: u64,
        shutdown: &mut Shutdown,
    ) -> Result<Outcome<Vec<NamedTensor>>, ClientError> {
        if let Some(bytes) = cache.get(&hash)? {
            match decode_tensors(&bytes, specs, limit) {
                Ok(tensors) => return Ok(Outcome::Done(tensors)),
                // Intact but not this model (another task's layout): fetch ours.
                Err(_) => cache.remove(&hash)?,
            }
        }
        let bytes = match self.fetch(hash, limit, shutdown).await? {
            Outcome::Done(bytes) => bytes,
            other => return Ok(other.map(|_| Vec::new())),
        };
        let tensors = decode_tensors(&bytes, specs, limit).map_err(|error| ClientError::BadModel { hash, error })?;
        cache.put(&hash, &bytes)?;
        Ok(Outcome::Done(tensors))
    }
}
