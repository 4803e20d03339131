//! Unsigned reads: questions anyone may ask the coordinator. They change
//! nothing, so they carry no signature, nonce or timestamp; they are still
//! size-bounded like every control message.

use serde::{Deserialize, Serialize};

use crate::ids::{ContentHash, RoundNumber, SubmissionId, TaskId};
use crate::keys::PublicKey;

/// A read request. Postcard encodes the variant by position, so the order is
/// part of the wire format: add new reads at the end only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReadRequest {
    /// A task's spec, creator and current round. Answered with
    /// [`ResponseBody::Task`](crate::messages::ResponseBody::Task).
    GetTask {
        /// The task.
        task: TaskId,
    },
    /// A task's current round. Answered with
    /// [`ResponseBody::Round`](crate::messages::ResponseBody::Round), or
    /// [`ErrorCode::NotStarted`](crate::messages::ErrorCode::NotStarted)
    /// before round 0 opens.
    GetRound {
        /// The task.
        task: TaskId,
    },
    /// The submissions `validator` must score in `round` of `task`, a page at
    /// a time. Answered with
    /// [`ResponseBody::Assignments`](crate::messages::ResponseBody::Assignments):
    /// at most [`MAX_ASSIGNMENTS_PAGE`](crate::messages::MAX_ASSIGNMENTS_PAGE)
    /// in ascending submission id, all after `after` (empty when none, or
    /// none yet); ask again with the page's `next` until it is `None`.
    GetAssignments {
        /// The task.
        task: TaskId,
        /// The round.
        round: RoundNumber,
        /// The validator.
        validator: PublicKey,
        /// Where the previous page ended (its `next`); `None` for the first.
        after: Option<SubmissionId>,
    },
    /// A stored blob (a global model or an update) by its hash. Answered with
    /// [`ResponseBody::Blob`](crate::messages::ResponseBody::Blob); the bytes
    /// follow as a blob on the same connection.
    FetchBlob {
        /// BLAKE3 hash of the blob.
        hash: ContentHash,
    },
    /// A key's balances and bonds. Answered with
    /// [`ResponseBody::Balance`](crate::messages::ResponseBody::Balance); a key
    /// the ledger has never seen has all zeros.
    GetBalance {
        /// The key.
        key: PublicKey,
    },
}

impl ReadRequest {
    /// A short name for logs and metrics, e.g. `"get-round"`.
    pub const fn name(&self) -> &'static str {
        match self {
            Self::GetTask { .. } => "get-task",
            Self::GetRound { .. } => "get-round",
            Self::GetAssignments { .. } => "get-assignments",
            Self::FetchBlob { .. } => "fetch-blob",
            Self::GetBalance { .. } => "get-balance",
        }
    }
}
