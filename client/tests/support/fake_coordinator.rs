//! A scripted coordinator for loopback tests: answers the client requests
//! from fixed data over real QUIC, speaking the blob-on-stream framing of
//! `starling_client::transport`, verifies every signature with the
//! protocol's `Verifier`, records what it received, and injects faults.
//! Shared by the trainer's and the validator's tests (`#[path]`-included).

#![allow(dead_code, unreachable_pub, missing_docs)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use starling_client::{QuicTransport, TrustSetting, dial};
use starling_net::quinn::{Connection, Endpoint, RecvStream, SendStream, VarInt};
use starling_net::{
    Fingerprint, Limits, REFUSED, ServerIdentity, read_frame, recv_blob, send_blob, server_endpoint, write_frame,
};
use starling_protocol::messages::{ReadRequest, SignedRequest};
use starling_protocol::payload;
use starling_protocol::{
    AssignmentInfo, AssignmentPage, ContentHash, ErrorCode, GetAssignments, JoinTask, MAX_CONTROL_MESSAGE, NamedTensor,
    PublicKey, ReplayConfig, Request, Response, ResponseBody, RoundInfo, RoundPhase, SubmitScore, SubmitUpdate,
    TaskInfo, Verifier, WireError,
};

/// An update as the coordinator received and checked it.
#[derive(Debug, Clone)]
pub struct ReceivedUpdate {
    pub signer: PublicKey,
    pub message: SubmitUpdate,
    pub tensors: Vec<NamedTensor>,
}

/// Everything the fake coordinator knows and has seen.
pub struct State {
    pub task: TaskInfo,
    pub round: Option<RoundInfo>,
    pub blobs: HashMap<ContentHash, Vec<u8>>,
    pub assignments: Vec<(PublicKey, AssignmentInfo)>,
    pub joins: Vec<(PublicKey, JoinTask)>,
    pub updates: Vec<ReceivedUpdate>,
    pub scores: Vec<(PublicKey, SubmitScore)>,
    /// Every refusal sent, for the test to inspect.
    pub refusals: Vec<WireError>,
    /// Requests received, by name, in order.
    pub log: Vec<String>,
    /// Close the connection instead of answering this many `FetchBlob`s.
    pub drop_fetches: u32,
    /// Announce this length for every blob served instead of its own (a
    /// lying server); the real bytes follow.
    pub announce_fetch_len: Option<u64>,
    /// Record this many updates, then close the connection without answering
    /// (the trainer's retry must then be told `Duplicate`).
    pub drop_after_update: u32,
    /// End the task once this many updates are in.
    pub finish_after_updates: Option<usize>,
    /// End the task once this many scores are in.
    pub finish_after_scores: Option<usize>,
    verifier: Verifier,
}

impl State {
    pub fn new(task: TaskInfo, round: Option<RoundInfo>) -> Self {
        Self {
            task,
            round,
            blobs: HashMap::new(),
            assignments: Vec::new(),
            joins: Vec::new(),
            updates: Vec::new(),
            scores: Vec::new(),
            refusals: Vec::new(),
            log: Vec::new(),
            drop_fetches: 0,
            announce_fetch_len: None,
            drop_after_update: 0,
            finish_after_updates: None,
            finish_after_scores: None,
            verifier: Verifier::new(MAX_CONTROL_MESSAGE, ReplayConfig::default()),
        }
    }

    pub fn add_blob(&mut self, bytes: Vec<u8>) -> ContentHash {
        let hash = ContentHash::of(&bytes);
        self.blobs.insert(hash, bytes);
        hash
    }

    fn finish_task(&mut self) {
        if let Some(round) = self.round.as_mut() {
            round.phase = RoundPhase::Finished;
            round.task_finished = true;
        }
    }
}

pub type Shared = Arc<Mutex<State>>;

/// A running fake coordinator.
pub struct FakeCoordinator {
    pub state: Shared,
    pub addr: SocketAddr,
    identity: ServerIdentity,
    endpoint: Endpoint,
}

fn localhost() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

impl FakeCoordinator {
    pub fn start(state: State) -> Self {
        let identity = ServerIdentity::ephemeral().unwrap();
        let endpoint = server_endpoint(localhost(), &identity, &Limits::default()).unwrap();
        let addr = endpoint.local_addr().unwrap();
        let state = Arc::new(Mutex::new(state));
        let serving = endpoint.clone();
        let shared = state.clone();
        tokio::spawn(async move {
            while let Some(incoming) = serving.accept().await {
                let state = shared.clone();
                tokio::spawn(async move {
                    let Ok(connection) = incoming.await else { return };
                    while let Ok((send, recv)) = connection.accept_bi().await {
                        tokio::spawn(serve_stream(state.clone(), connection.clone(), send, recv));
                    }
                });
            }
        });
        Self { state, addr, identity, endpoint }
    }

    /// A transport to this server (pinning its certificate) that
    /// reconnects after drops.
    pub fn transport(&self) -> QuicTransport {
        dial(&self.addr.to_string(), TrustSetting::Pinned(self.fingerprint())).unwrap().transport
    }

    /// The fingerprint of the server's certificate.
    pub fn fingerprint(&self) -> Fingerprint {
        self.identity.fingerprint()
    }

    pub fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }
}

impl Drop for FakeCoordinator {
    fn drop(&mut self) {
        self.endpoint.close(VarInt::from_u32(0), b"test over");
    }
}

fn now_ms() -> u64 {
    starling_client::now_ms()
}

fn refuse(state: &Shared, code: ErrorCode, message: &str) -> Response {
    let error = WireError::new(code, message);
    state.lock().unwrap().refusals.push(error.clone());
    Response::Error(error)
}

async fn reply(mut send: SendStream, response: Response) {
    let _ = write_frame(&mut send, &response.to_bytes().unwrap()).await;
    let _ = send.finish();
    let _ = send.stopped().await;
}

async fn serve_stream(state: Shared, connection: Connection, send: SendStream, mut recv: RecvStream) {
    let Ok(bytes) = read_frame(&mut recv, MAX_CONTROL_MESSAGE).await else { return };
    let request = match Request::from_bytes(&bytes, MAX_CONTROL_MESSAGE) {
        Ok(request) => request,
        Err(error) => return reply(send, refuse(&state, ErrorCode::Malformed, &error.to_string())).await,
    };
    let response = match request {
        Request::Read(read) => {
            state.lock().unwrap().log.push(read.name().to_owned());
            match read {
                ReadRequest::FetchBlob { hash } => return serve_fetch(state, connection, send, hash).await,
                other => answer_read(&state, other),
            }
        }
        Request::Signed(envelope) => {
            let verified = {
                let mut guard = state.lock().unwrap();
                guard.log.push(envelope.kind().to_owned());
                SignedRequest::verify(&mut guard.verifier, &envelope, now_ms())
            };
            let verified = match verified {
                Ok(verified) => verified,
                Err(error) => return reply(send, Response::Error(WireError::from_error(&error))).await,
            };
            if let Err(error) = verified.message.validate(&verified.signer) {
                return reply(send, refuse(&state, ErrorCode::InvalidField, &error.to_string())).await;
            }
            let signer = verified.signer;
            match verified.message {
                SignedRequest::JoinTask(join) => {
                    state.lock().unwrap().joins.push((signer, join));
                    Response::Ok(ResponseBody::Ack)
                }
                SignedRequest::SubmitUpdate(update) => {
                    return serve_update(state, connection, send, recv, signer, update).await;
                }
                SignedRequest::SubmitScore(score) => answer_score(&state, signer, score),
                SignedRequest::GetAssignments(read) => answer_assignments(&state, signer, read),
                SignedRequest::FetchUpdate(read) => {
                    // Updates are private: only to a validator assigned to score it.
                    let update = {
                        let guard = state.lock().unwrap();
                        guard
                            .assignments
                            .iter()
                            .find(|(v, a)| *v == signer && a.submission == read.submission)
                            .map(|(_, a)| a.update)
                    };
                    match update {
                        Some(hash) => return serve_fetch(state, connection, send, hash).await,
                        None => refuse(&state, ErrorCode::Unauthorized, "not assigned to this submission"),
                    }
                }
                other => refuse(&state, ErrorCode::UnknownKind, other.kind()),
            }
        }
    };
    reply(send, response).await
}

fn answer_read(state: &Shared, read: ReadRequest) -> Response {
    let guard = state.lock().unwrap();
    match read {
        ReadRequest::GetTask { .. } => Response::Ok(ResponseBody::Task(Box::new(guard.task.clone()))),
        ReadRequest::GetRound { .. } => match &guard.round {
            Some(round) => Response::Ok(ResponseBody::Round(round.clone())),
            None => Response::Error(WireError::new(ErrorCode::NotStarted, "no round yet")),
        },
        other => Response::Error(WireError::new(ErrorCode::UnknownKind, other.name())),
    }
}

/// A page of `validator`'s assignments (pages of two, so the clients'
/// paging is exercised).
fn answer_assignments(state: &Shared, validator: PublicKey, read: GetAssignments) -> Response {
    let guard = state.lock().unwrap();
    let mut mine = guard
        .assignments
        .iter()
        .filter(|(v, _)| *v == validator)
        .filter(|_| guard.round.as_ref().is_some_and(|r| r.round == read.round))
        .map(|(_, a)| *a)
        .filter(|a| read.after.is_none_or(|after| a.submission > after))
        .collect::<Vec<_>>();
    mine.sort_unstable_by_key(|a| a.submission);
    let more = mine.len() > 2;
    mine.truncate(2);
    let next = if more { mine.last().map(|a| a.submission) } else { None };
    Response::Ok(ResponseBody::Assignments(AssignmentPage { items: mine, next }))
}

async fn serve_fetch(state: Shared, connection: Connection, mut send: SendStream, hash: ContentHash) {
    let blob = {
        let mut guard = state.lock().unwrap();
        if guard.drop_fetches > 0 {
            guard.drop_fetches -= 1;
            drop(guard);
            connection.close(VarInt::from_u32(7), b"injected fault: dropped during fetch");
            return;
        }
        guard.blobs.get(&hash).cloned().map(|blob| (blob, guard.announce_fetch_len))
    };
    let Some((blob, announced)) = blob else {
        return reply(send, refuse(&state, ErrorCode::UnknownBlob, "no such blob")).await;
    };
    let head = Response::Ok(ResponseBody::Blob { hash, len: announced.unwrap_or(blob.len() as u64) });
    if write_frame(&mut send, &head.to_bytes().unwrap()).await.is_ok() && send_blob(&mut send, &blob).await.is_ok() {
        let _ = send.stopped().await;
    }
}

/// Checks an upload's announcement against the round before reading its blob.
fn check_update(state: &State, signer: &PublicKey, update: &SubmitUpdate) -> Result<(), WireError> {
    let Some(round) = state.round.as_ref() else { return Err(WireError::new(ErrorCode::NotStarted, "no round")) };
    let refuse = |code, message: &str| Err(WireError::new(code, message));
    // Duplicates first: a trainer whose answer was lost learns that its
    // update is in, even once the round has moved on.
    if state.updates.iter().any(|u| u.signer == *signer && u.message.round == update.round) {
        return refuse(ErrorCode::Duplicate, "already submitted this round");
    }
    if update.round != round.round {
        return refuse(ErrorCode::WrongRound, "not the current round");
    }
    if round.phase != RoundPhase::Training {
        return refuse(ErrorCode::WrongPhase, "not training");
    }
    if !round.is_sampled(signer) {
        return refuse(ErrorCode::NotSampled, "not sampled");
    }
    if update.base_model != round.global_model {
        return refuse(ErrorCode::WrongBaseModel, "stale base model");
    }
    if update.validate_for(&state.task.spec).is_err() {
        return refuse(ErrorCode::PayloadTooLarge, "too long");
    }
    Ok(())
}

async fn serve_update(
    state: Shared,
    connection: Connection,
    send: SendStream,
    mut recv: RecvStream,
    signer: PublicKey,
    update: SubmitUpdate,
) {
    let (checked, spec) = {
        let guard = state.lock().unwrap();
        (check_update(&guard, &signer, &update), guard.task.spec.clone())
    };
    if let Err(error) = checked {
        state.lock().unwrap().refusals.push(error.clone());
        let _ = recv.stop(REFUSED);
        return reply(send, Response::Error(error)).await;
    }
    let mut bytes = Vec::new();
    if let Err(error) = recv_blob(&mut recv, update.update_len, Some(update.update), &mut bytes).await {
        return reply(send, refuse(&state, ErrorCode::HashMismatch, &error.to_string())).await;
    }
    if bytes.len() as u64 != update.update_len {
        return reply(send, refuse(&state, ErrorCode::LengthMismatch, "length")).await;
    }
    let tensors = match payload::decode(&bytes, &spec.model.tensors, spec.payload_limit_bytes()) {
        Ok(tensors) => tensors,
        Err(error) => return reply(send, Response::Error(WireError::from_error(&error))).await,
    };
    let drop_now = {
        let mut guard = state.lock().unwrap();
        guard.blobs.insert(update.update, bytes);
        guard.updates.push(ReceivedUpdate { signer, message: update, tensors });
        if guard.finish_after_updates == Some(guard.updates.len()) {
            guard.finish_task();
        }
        if guard.drop_after_update > 0 {
            guard.drop_after_update -= 1;
            true
        } else {
            false
        }
    };
    if drop_now {
        connection.close(VarInt::from_u32(7), b"injected fault: dropped before answering an upload");
        return;
    }
    reply(send, Response::Ok(ResponseBody::UpdateAccepted { submission: update.submission_id(&signer) })).await
}

fn answer_score(state: &Shared, signer: PublicKey, score: SubmitScore) -> Response {
    let mut guard = state.lock().unwrap();
    let assigned = guard.assignments.iter().any(|(v, a)| *v == signer && a.submission == score.submission);
    if !assigned {
        drop(guard);
        return refuse(state, ErrorCode::NotAssigned, "not assigned");
    }
    if guard.scores.iter().any(|(v, s)| *v == signer && s.submission == score.submission) {
        drop(guard);
        return refuse(state, ErrorCode::Duplicate, "already scored");
    }
    guard.scores.push((signer, score));
    if guard.finish_after_scores == Some(guard.scores.len()) {
        guard.finish_task();
    }
    Response::Ok(ResponseBody::Ack)
}
