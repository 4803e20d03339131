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
    /// Retired: the unsigned list of a validator's assignments, which told
    /// anyone every update's hash. Kept so that the reads after it keep
    /// their wire positions and an old client's request decodes; the
    /// coordinator answers it with
    /// [`ErrorCode::UnknownKind`](crate::messages::ErrorCode::UnknownKind).
    /// Use the signed [`GetAssignments`](crate::messages::GetAssignments).
    RetiredGetAssignments {
        /// The task.
        task: TaskId,
        /// The round.
        round: RoundNumber,
        /// The validator.
        validator: PublicKey,
        /// Where the previous page ended.
        after: Option<SubmissionId>,
    },
    /// A public model (a task's initial or global model, or a promoted
    /// version) by its hash. Answered with
    /// [`ResponseBody::Blob`](crate::messages::ResponseBody::Blob); the bytes
    /// follow as a blob on the same connection. Updates are private: they
    /// are read with a signed [`FetchUpdate`](crate::messages::FetchUpdate),
    /// and a `FetchBlob` of one is [`ErrorCode::UnknownBlob`](crate::messages::ErrorCode::UnknownBlob).
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
            Self::RetiredGetAssignments { .. } => "get-assignments (retired)",
            Self::FetchBlob { .. } => "fetch-blob",
            Self::GetBalance { .. } => "get-balance",
        }
    }
}
