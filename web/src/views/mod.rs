//! What the API returns: plain serialisable snapshots the read model fills in.
//!
//! They hold no rules; the coordinator computes every number. Amounts are
//! integers in µSTAR (`1 STAR = 1_000_000 µSTAR`), written as JSON numbers
//! (exact for clients that parse them as doubles up to 2⁵³ µSTAR, about
//! nine billion STAR). Times are seconds since the Unix epoch. Keys and
//! hashes are 64 lower-case hex digits.

mod account;
mod market;
mod task;

pub use account::{AccountView, Balances, BondView, HistoryEntry, HistoryKind};
pub use market::{
    Caller, Contributor, ItemPrediction, ModelDetail, ModelSummary, PredictCall, Prediction, Price, VersionDetail,
    VersionSummary,
};
pub use task::{
    IdentityPayout, RoundRecord, SubmissionOutcome, SubmissionView, TaskDetail, TaskSummary, ValidatorStanding,
};
