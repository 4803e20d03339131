//! Starling's wire protocol: identifiers, task specifications, round phases,
//! signed envelopes, the wire messages ([`messages`]) and the tensor payload
//! format.
//!
//! Everything here is pure: no I/O, no clocks (the current time is always an
//! argument), no knowledge of burn, SQL or QUIC. Every decoder of untrusted
//! bytes ([`SignedEnvelope::from_bytes`], [`Verifier::verify`],
//! [`Request::from_bytes`], [`Response::from_bytes`], [`payload::decode`])
//! refuses oversized input before parsing it and never panics.

mod aggregation_spec;
mod byte_buf;
mod envelope;
mod hex;
mod ids;
mod keys;
pub mod messages;
mod page;
pub mod payload;
mod phase;
mod replay;
mod task;
mod task_builder;
mod tensor;
mod verifier;

pub use aggregation_spec::{AggregationRule, AggregationSpec, AggregationSpecError, ServerOptimizer};
pub use ed25519_dalek::SigningKey;
pub use envelope::{EnvelopeError, MAX_KIND_LEN, Message, PROTOCOL_VERSION, SIGNING_CONTEXT, SignedEnvelope};
pub use hex::ParseHexError;
pub use ids::{ContentHash, Nonce, RoundNumber, SubmissionId, TaskId};
pub use keys::{PublicKey, Signature};
pub use messages::{
    AssignmentInfo, AssignmentPage, BalanceInfo, BondInfo, CreateTask, Delegate, ErrorCode, FetchUpdate,
    GetAssignments, Issue, JoinTask, MAX_ASSIGNMENTS_PAGE, MAX_CONTROL_MESSAGE, MAX_SAMPLED_TRAINERS,
    PREDICT_ENVELOPE_HEADER, PredictRequest, ReadRequest, Request, RequestError, Response, ResponseBody, Role,
    RoundInfo, SetCommission, SignedRequest, Stake, SubmitScore, SubmitUpdate, TaskInfo, Transfer, Undelegate, Unstake,
    ValidationError, WireError,
};
pub use page::{Cursor, InvalidCursor, MAX_PAGE, Page, PageRequest};
pub use payload::{PayloadError, TensorBytes, UpdatePayload};
pub use phase::{PhaseError, RoundPhase};
pub use replay::{ReplayConfig, ReplayError, ReplayGuard};
pub use task::{
    DataSpec, MAX_ROUNDS, MAX_TENSOR_NAME_LEN, MAX_TENSOR_RANK, MAX_TENSORS, MIN_UPDATE_NORM, ModelSpec,
    RESERVED_TENSOR_NAME, RoundDeadlines, TaskSpec, TaskSpecError,
};
pub use task_builder::TaskSpecBuilder;
pub use tensor::{NamedTensor, TensorRef, TensorSpec};
pub use verifier::{Verified, Verifier};
