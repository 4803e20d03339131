//! The one response type on the wire.

use serde::{Deserialize, Serialize};

use crate::ids::{ContentHash, SubmissionId, TaskId};
use crate::messages::codec::{CodecError, decode, encode};
use crate::messages::error_code::WireError;
use crate::messages::views::{AssignmentPage, BalanceInfo, RoundInfo, TaskInfo};

/// What the coordinator answers on a request stream: one of these, postcard
/// encoded. The variant order is part of the wire format.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Response {
    /// The request was carried out (or answered).
    Ok(ResponseBody),
    /// The request was refused; nothing changed.
    Error(WireError),
}

impl Response {
    /// The wire form; refuses a response longer than
    /// [`MAX_CONTROL_MESSAGE`](crate::messages::MAX_CONTROL_MESSAGE).
    pub fn to_bytes(&self) -> Result<Vec<u8>, CodecError> {
        encode(self)
    }

    /// Reads a response from untrusted bytes, refusing input longer than
    /// `max_len` before parsing and trailing bytes. Never panics.
    pub fn from_bytes(bytes: &[u8], max_len: usize) -> Result<Self, CodecError> {
        decode(bytes, max_len)
    }

    /// The body, or the refusal as an error.
    pub fn into_result(self) -> Result<ResponseBody, WireError> {
        match self {
            Self::Ok(body) => Ok(body),
            Self::Error(error) => Err(error),
        }
    }
}

impl From<Result<ResponseBody, WireError>> for Response {
    fn from(result: Result<ResponseBody, WireError>) -> Self {
        match result {
            Ok(body) => Self::Ok(body),
            Err(error) => Self::Error(error),
        }
    }
}

impl From<ResponseBody> for Response {
    fn from(body: ResponseBody) -> Self {
        Self::Ok(body)
    }
}

impl From<WireError> for Response {
    fn from(error: WireError) -> Self {
        Self::Error(error)
    }
}

/// The answer to a request that succeeded. Each request's documentation says
/// which variant answers it. The variant order is part of the wire format:
/// add new ones at the end only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ResponseBody {
    /// Done; nothing more to say (`JoinTask`, `SubmitScore`, `SetCommission`,
    /// `Transfer`, `Issue`).
    Ack,
    /// The task was registered, its pool escrowed and its initial model stored.
    TaskCreated {
        /// The new task's id.
        task: TaskId,
    },
    /// The update passed every check before storage and was recorded.
    UpdateAccepted {
        /// Its id, as [`SubmitUpdate::submission_id`](crate::messages::SubmitUpdate::submission_id) derives it.
        submission: SubmissionId,
    },
    /// A stake or delegation was locked (`Stake`, `Delegate`).
    Bonded {
        /// The new bond's id; name it to unbond.
        bond: u64,
    },
    /// A bond was returned (`Unstake`, `Undelegate`): `returned + fee` is
    /// what it held.
    Unbonded {
        /// The bond.
        bond: u64,
        /// µSTAR credited to the free balance.
        returned: u64,
        /// µSTAR kept as the unstaking fee.
        fee: u64,
    },
    /// Answer to [`ReadRequest::GetTask`](crate::messages::ReadRequest::GetTask).
    /// Boxed: a task spec is large next to every other answer.
    Task(Box<TaskInfo>),
    /// Answer to [`ReadRequest::GetRound`](crate::messages::ReadRequest::GetRound).
    Round(RoundInfo),
    /// Answer to [`GetAssignments`](crate::messages::GetAssignments).
    Assignments(AssignmentPage),
    /// Answer to [`ReadRequest::FetchBlob`](crate::messages::ReadRequest::FetchBlob)
    /// and [`FetchUpdate`](crate::messages::FetchUpdate): the blob follows on the same connection, hash-checked by the receiver.
    Blob {
        /// Its hash.
        hash: ContentHash,
        /// Its length, in bytes.
        len: u64,
    },
    /// Answer to [`ReadRequest::GetBalance`](crate::messages::ReadRequest::GetBalance).
    Balance(BalanceInfo),
}
