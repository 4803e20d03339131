//! What a client does with each refusal the coordinator can send.

use starling_protocol::ErrorCode;

/// Which exchange a refusal answered; the same code means different things
/// for different requests (`Duplicate` to a submission means it is already in).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exchange {
    /// `JoinTask`.
    Join,
    /// An unsigned read (`GetTask`, `GetRound`, `GetAssignments`).
    Read,
    /// `FetchBlob`.
    Fetch,
    /// `SubmitUpdate`.
    SubmitUpdate,
    /// `SubmitScore`.
    SubmitScore,
}

/// What to do about a refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Send it again (signed afresh) after a backoff delay: the server is
    /// busy, restarting, or the envelope went stale in a queue.
    Retry,
    /// Treat it as success: the request already took effect (a resent
    /// submission after a lost response, a second join).
    AlreadyDone,
    /// The round moved on or this client has no part in it: give up on this
    /// round (or this assignment) and go back to polling. Nothing is wrong.
    SkipRound,
    /// The task is over: stop cleanly.
    TaskOver,
    /// Something is wrong with this client, its key, stake or clock, or the
    /// server: stop and report it.
    Fail,
}

/// How a client reacts to `code` answering `exchange`.
///
/// Codes the protocol marks retryable ([`ErrorCode::is_retryable`]) are
/// retried everywhere. Round-timing codes skip the round. A payload refusal
/// of our own update fails loudly: it would fail the same way every round.
pub fn disposition(code: ErrorCode, exchange: Exchange) -> Disposition {
    use Disposition::*;
    use ErrorCode as E;
    if code.is_retryable() {
        return Retry;
    }
    match code {
        E::Duplicate if matches!(exchange, Exchange::Join | Exchange::SubmitUpdate | Exchange::SubmitScore) => {
            AlreadyDone
        }
        E::TaskFinished => TaskOver,
        E::WrongRound | E::WrongPhase | E::AfterDeadline | E::NotSampled | E::WrongBaseModel => SkipRound,
        E::NotAssigned | E::UnknownSubmission if exchange == Exchange::SubmitScore => SkipRound,
        // A model from a round that was replaced meanwhile; poll again.
        E::UnknownBlob if exchange == Exchange::Fetch => SkipRound,
        _ => Fail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXCHANGES: [Exchange; 5] =
        [Exchange::Join, Exchange::Read, Exchange::Fetch, Exchange::SubmitUpdate, Exchange::SubmitScore];

    #[test]
    fn every_code_has_a_decision_for_every_exchange() {
        use Disposition::*;
        use ErrorCode as E;
        for &code in E::ALL {
            for exchange in EXCHANGES {
                let got = disposition(code, exchange);
                let expected = match code {
                    E::Stale | E::RateLimited | E::NotStarted | E::Unavailable => Retry,
                    E::Duplicate if exchange != Exchange::Read && exchange != Exchange::Fetch => AlreadyDone,
                    E::TaskFinished => TaskOver,
                    E::WrongRound | E::WrongPhase | E::AfterDeadline | E::NotSampled | E::WrongBaseModel => SkipRound,
                    E::NotAssigned | E::UnknownSubmission if exchange == Exchange::SubmitScore => SkipRound,
                    E::UnknownBlob if exchange == Exchange::Fetch => SkipRound,
                    E::Unknown
                    | E::Malformed
                    | E::Oversized
                    | E::UnsupportedVersion
                    | E::UnknownKind
                    | E::BadSignature
                    | E::ClockSkew
                    | E::Replay
                    | E::InvalidField
                    | E::NonFinite
                    | E::Unauthorized
                    | E::UnknownTask
                    | E::Duplicate
                    | E::NotAssigned
                    | E::UnknownSubmission
                    | E::PayloadTooLarge
                    | E::HashMismatch
                    | E::LengthMismatch
                    | E::ShapeMismatch
                    | E::NormTooLarge
                    | E::EmptyUpdate
                    | E::MalformedPayload
                    | E::UnknownBlob
                    | E::InsufficientStake
                    | E::InsufficientBalance
                    | E::Locked
                    | E::UnknownBond
                    | E::UnknownNode
                    | E::Internal => Fail,
                };
                assert_eq!(got, expected, "{code} answering {exchange:?}");
            }
        }
    }

    #[test]
    fn retryable_codes_are_exactly_the_protocols() {
        for &code in ErrorCode::ALL {
            assert_eq!(disposition(code, Exchange::Read) == Disposition::Retry, code.is_retryable(), "{code}");
        }
    }
}
