//! Signed reads: what only some keys may see. A trainer's update is private
//! to its trainer and the validators assigned to score it (an update is a
//! gradient, and gradients leak training data), so both the list of a
//! validator's assignments and the download of an update say who asks.

use serde::{Deserialize, Serialize};

use crate::envelope::Message;
use crate::ids::{RoundNumber, SubmissionId, TaskId};
use crate::messages::validation::ValidationError;

/// The submissions the signer, a validator, must score in `round` of `task`,
/// a page at a time. Answered with
/// [`ResponseBody::Assignments`](crate::messages::ResponseBody::Assignments):
/// at most [`MAX_ASSIGNMENTS_PAGE`](crate::messages::MAX_ASSIGNMENTS_PAGE) in
/// ascending submission id, all after `after` (empty when none, or none
/// yet); ask again with the page's `next` until it is `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetAssignments {
    /// The task.
    pub task: TaskId,
    /// The round.
    pub round: RoundNumber,
    /// Where the previous page ended (its `next`); `None` for the first.
    pub after: Option<SubmissionId>,
}

impl Message for GetAssignments {
    const KIND: &'static str = "starling/round.assignments";
}

impl GetAssignments {
    /// Nothing in the request can be wrong without state; present for uniformity.
    pub fn validate(&self) -> Result<(), ValidationError> {
        Ok(())
    }
}

/// The update of `submission` in the current `round` of `task`, for its
/// trainer or a validator assigned to score it (anyone else is refused with
/// [`ErrorCode::Unauthorized`](crate::messages::ErrorCode::Unauthorized)).
/// Answered with [`ResponseBody::Blob`](crate::messages::ResponseBody::Blob);
/// the bytes follow on the same stream, as for
/// [`ReadRequest::FetchBlob`](crate::messages::ReadRequest::FetchBlob).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchUpdate {
    /// The task.
    pub task: TaskId,
    /// The round the submission belongs to.
    pub round: RoundNumber,
    /// The submission.
    pub submission: SubmissionId,
}

impl Message for FetchUpdate {
    const KIND: &'static str = "starling/round.fetch-update";
}

impl FetchUpdate {
    /// Nothing in the request can be wrong without state; present for uniformity.
    pub fn validate(&self) -> Result<(), ValidationError> {
        Ok(())
    }
}
