//! The one path every request takes, whatever carried it.
//!
//! A request goes **verify → precheck → receive → execute**, and its answer
//! is counted once, here:
//!
//! 1. *verify*: a signed request's envelope (signature, version,
//!    freshness), the message's own field rules, the signer's admission (the
//!    admin, or a key holding STAR or stake), and only then its nonce (a
//!    replay is refused);
//! 2. *precheck*: for an upload, whether it may be sent at all (the task,
//!    round, phase, sampling and base model of an update; for a new task,
//!    the coordinator's largest model, the creator's balance and open
//!    tasks), before a byte of its blob is read, so a client never sends
//!    megabytes into a refusal and an unfunded key stores nothing;
//! 3. *receive*: the blob, from the request's [`Body`] (see
//!    [`upload`](super::upload));
//! 4. *execute*: the request's effect ([`task_requests`](super::task_requests),
//!    [`ledger_requests`](super::ledger_requests), [`reads`](super::reads)).
//!
//! The QUIC front ([`quic`](super::quic)) and in-process callers
//! ([`Coordinator::handle`]) both enter through here. A request refused at
//! any step changes nothing and costs nothing; the only refusals that cost are
//! those of a correctly signed update whose payload is invalid (see
//! [`update_check`](super::update_check)).

use starling_protocol::messages::SignedRequest;
use starling_protocol::{
    ContentHash, ErrorCode, PublicKey, Request, RequestError, Response, ResponseBody, SignedEnvelope, Verified,
    WireError,
};
use starling_staking::LedgerStore;

use super::Coordinator;
use super::update_check::precheck_update;
use super::upload::{Body, InMemory, Received, receive_model, receive_update};
use super::wire_error::{ledger_error, refuse, store_error};
use crate::artifacts::ArtifactStore;
use crate::store::CoordinatorStore;

impl<S, L, A> Coordinator<S, L, A>
where
    S: CoordinatorStore + 'static,
    L: LedgerStore + 'static,
    A: ArtifactStore + 'static,
{
    /// Answers one request, with the blob that follows it for an upload (the
    /// initial model of a [`CreateTask`](starling_protocol::CreateTask), the
    /// payload of a [`SubmitUpdate`](starling_protocol::SubmitUpdate)), for
    /// callers that hold the whole request in memory: the same steps, checks
    /// and counting as a request that arrives over QUIC.
    ///
    /// A [`ReadRequest::FetchBlob`] or [`FetchUpdate`](starling_protocol::FetchUpdate)
    /// is answered with the blob's hash and length only; [`Coordinator::blob`]
    /// reads its bytes.
    pub async fn handle(&self, request: Request, blob: Option<&[u8]>) -> Response {
        self.answer(Ok(request), &mut InMemory(blob)).await.into()
    }

    /// The pipeline: answers `request` (or the reason it could not be read)
    /// with its blob arriving on `body`, and counts the answer. A refused
    /// request tells `body` to stop sending.
    pub(crate) async fn answer(
        &self,
        request: Result<Request, WireError>,
        body: &mut impl Body,
    ) -> Result<ResponseBody, WireError> {
        let answer = match request {
            Ok(request) => self.steps(request, body).await,
            Err(error) => Err(error),
        };
        if answer.is_err() {
            body.refuse();
        }
        self.inner.metrics.answered(&answer);
        answer
    }

    async fn steps(&self, request: Request, body: &mut impl Body) -> Result<ResponseBody, WireError> {
        let envelope = match request {
            Request::Read(read) => return self.read(read).await,
            Request::Signed(envelope) => envelope,
        };
        let verified = self.verify(&envelope).await?;
        let received = match upload(&verified.message) {
            None => Received::Nothing,
            Some((hash, len)) => {
                self.precheck(&verified).await?;
                self.receive(&verified.message, hash, len, body).await?
            }
        };
        self.execute(verified, &envelope, received).await
    }

    /// Checks a signed envelope: signature, version and freshness, then the
    /// message's own field rules, then whether the signer may be heard at
    /// all ([`admit`](Self::admit)), and only then spends a nonce slot on it
    /// (a replay is refused). A stranger's junk never fills the replay store
    /// that honest submissions need.
    async fn verify(&self, envelope: &SignedEnvelope) -> Result<Verified<SignedRequest>, WireError> {
        let now = self.now().get();
        let verified = {
            let verifier = self.inner.verifier.read().expect("verifier lock");
            SignedRequest::authenticate(&verifier, envelope, now).map_err(|e| WireError::from_error(&e))?
        };
        verified.message.validate(&verified.signer).map_err(|e| WireError::from_error(&e))?;
        self.admit(&verified.signer).await?;
        let recorded = self.inner.verifier.write().expect("verifier lock").record(&verified, now);
        recorded.map_err(|e| WireError::from_error(&RequestError::from(e)))?;
        Ok(verified)
    }

    /// Whether `signer` may be heard: the network's admin, or a key that
    /// holds something in the ledger (free balance, stake or a delegation).
    /// Every signed request needs one of these to have any effect (creating
    /// or funding needs a balance, joining, training and scoring a stake),
    /// so a key that holds nothing is refused before it costs a nonce slot.
    async fn admit(&self, signer: &PublicKey) -> Result<(), WireError> {
        if *signer == self.inner.config.admin {
            return Ok(());
        }
        let held = self.inner.ledger.balances(signer).await.map_err(|e| ledger_error(&e))?;
        if held.free.is_zero() && held.staked.is_zero() && held.delegated.is_zero() {
            return Err(refuse(
                ErrorCode::Unauthorized,
                format!("{signer} holds no STAR and no stake; signed requests are taken only from keys that do"),
            ));
        }
        Ok(())
    }

    /// Whether an upload may be sent, before its bytes are read.
    async fn precheck(&self, verified: &Verified<SignedRequest>) -> Result<(), WireError> {
        match &verified.message {
            SignedRequest::SubmitUpdate(update) => {
                let slot = self.running(update.task).await?;
                let (checked, current) = {
                    let runtime = slot.runtime.lock().await;
                    let checked = precheck_update(&runtime.machine, &verified.signer, update);
                    (checked, runtime.machine.progress().map(|(round, _)| round))
                };
                match checked {
                    // A retry whose first attempt was recorded (its answer
                    // lost) learns that its update is in, even once the
                    // round has moved on or the task has finished.
                    Err(error)
                        if matches!(error.code, ErrorCode::WrongRound | ErrorCode::TaskFinished)
                            && current.is_some_and(|current| update.round <= current) =>
                    {
                        let store = &self.inner.store;
                        let earlier = store.submission_of(update.task, update.round, &verified.signer).await;
                        if earlier.map_err(|e| store_error(&e))?.is_some() {
                            return Err(refuse(
                                ErrorCode::Duplicate,
                                format!("{} already submitted in round {}", verified.signer, update.round),
                            ));
                        }
                        Err(error)
                    }
                    other => other,
                }
            }
            SignedRequest::CreateTask(create) => {
                // Sizes first: they cost nothing to check.
                // The initial model is within the payload limit (the message's
                // own rules, checked in `verify`), so the limit is what counts.
                let max = self.inner.config.max_model_bytes;
                let largest = create.spec.payload_limit;
                if largest > max {
                    return Err(refuse(
                        ErrorCode::PayloadTooLarge,
                        format!("this coordinator takes models of at most {max} bytes; the task asks for {largest}"),
                    ));
                }
                let free = self.inner.ledger.free_balance(&verified.signer).await.map_err(|e| ledger_error(&e))?;
                if free.micro() < create.spec.reward_pool {
                    return Err(refuse(
                        ErrorCode::InsufficientBalance,
                        format!(
                            "the reward pool is {} µSTAR but the creator's free balance is {}",
                            create.spec.reward_pool,
                            free.micro()
                        ),
                    ));
                }
                let open = self.inner.store.open_tasks_of(&verified.signer).await.map_err(|e| store_error(&e))?;
                let cap = self.inner.config.max_open_tasks_per_creator;
                if open >= cap {
                    return Err(refuse(
                        ErrorCode::RateLimited,
                        format!("the creator has {open} unfinished tasks, the most this coordinator runs for one key"),
                    ));
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Receives an upload's blob of `len` bytes, signed as `hash`.
    async fn receive(
        &self,
        message: &SignedRequest,
        hash: ContentHash,
        len: u64,
        body: &mut impl Body,
    ) -> Result<Received, WireError> {
        match message {
            SignedRequest::SubmitUpdate(update) => {
                let slot = self.running(update.task).await?;
                let checked = receive_update(&self.inner.artifacts, &slot.record.spec, update, body).await?;
                Ok(Received::Update(checked))
            }
            _ => receive_model(body, hash, len).await.map(Received::Model),
        }
    }

    /// Carries out a verified request (prechecked, with its blob received
    /// and hash-checked if it is an upload).
    async fn execute(
        &self,
        verified: Verified<SignedRequest>,
        envelope: &SignedEnvelope,
        received: Received,
    ) -> Result<ResponseBody, WireError> {
        let signer = verified.signer;
        // Kept with submissions and scores: anyone can re-verify them later.
        let signed = || postcard::to_stdvec(envelope).expect("an envelope always encodes");
        match verified.message {
            SignedRequest::CreateTask(create) => {
                let model = match received {
                    Received::Model(model) => model,
                    _ => Vec::new(),
                };
                self.create_task(signer, create, &model).await
            }
            SignedRequest::JoinTask(join) => self.join(signer, join).await,
            SignedRequest::SubmitUpdate(update) => {
                let Received::Update(checked) = received else {
                    return Err(refuse(ErrorCode::LengthMismatch, "the update's payload did not arrive"));
                };
                self.submit(signer, update, checked, signed()).await
            }
            SignedRequest::SubmitScore(score) => self.score(signer, score, signed()).await,
            SignedRequest::GetAssignments(read) => self.assignments(signer, read).await,
            SignedRequest::FetchUpdate(read) => self.fetch_update(signer, read).await,
            ledger => self.ledger_request(signer, verified.nonce, ledger).await,
        }
    }
}

/// The hash and length an upload's signed message announces.
fn upload(message: &SignedRequest) -> Option<(ContentHash, u64)> {
    match message {
        SignedRequest::SubmitUpdate(update) => Some((update.update, update.update_len)),
        SignedRequest::CreateTask(create) => Some((create.initial_model, create.initial_model_len)),
        _ => None,
    }
}
