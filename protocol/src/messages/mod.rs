//! Wire messages: every request and response the coordinator, trainers,
//! validators, delegators and admins exchange on control streams.
//!
//! A client sends one [`Request`] per stream: either a [`SignedEnvelope`](crate::SignedEnvelope)
//! holding one of the [`SignedRequest`] messages (each a [`Message`](crate::Message)
//! with its own stable kind), or an unsigned [`ReadRequest`]. The coordinator
//! answers with one [`Response`]: a [`ResponseBody`] or a [`WireError`] with a
//! stable [`ErrorCode`]. Both are postcard-encoded and at most
//! [`MAX_CONTROL_MESSAGE`] bytes; models and updates travel as blobs on
//! their own streams.
//!
//! A receiver's order of checks: [`Request::from_bytes`] (size, version,
//! layout), [`SignedRequest::verify`] (kind, signature, time, replay),
//! [`SignedRequest::validate`] (stateless field checks), then the state.

mod codec;
mod error_code;
mod ledger_requests;
mod market;
mod reads;
mod request;
mod response;
mod role;
mod signed_reads;
mod task_requests;
mod validation;
mod views;

#[cfg(test)]
mod tests;

pub use codec::{CodecError, MAX_CONTROL_MESSAGE, decode, encode};
pub use error_code::{ErrorCode, MAX_ERROR_MESSAGE_LEN, WireError};
pub use ledger_requests::{Delegate, Issue, SetCommission, Stake, Transfer, Undelegate, Unstake};
pub use market::{PREDICT_ENVELOPE_HEADER, PredictRequest};
pub use reads::ReadRequest;
pub use request::{Request, RequestError, SignedRequest};
pub use response::{Response, ResponseBody};
pub use role::{ParseRoleError, Role};
pub use signed_reads::{FetchUpdate, GetAssignments};
pub use task_requests::{CreateTask, JoinTask, SubmitScore, SubmitUpdate};
pub use validation::{MAX_COMMISSION_PPM, MAX_LOCK_DAYS, ValidationError};
pub use views::{
    AssignmentInfo, AssignmentPage, BalanceInfo, BondInfo, MAX_ASSIGNMENTS_PAGE, MAX_LISTED_BONDS,
    MAX_SAMPLED_TRAINERS, RoundInfo, TaskInfo,
};
