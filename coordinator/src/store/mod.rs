//! The coordinator's durable state: tasks, each task's persisted round
//! machine, submissions, scores, settled rounds and their verdicts, task
//! leases and the marketplace, behind the
//! [`CoordinatorStore`] trait with SQLite (embedded default) and PostgreSQL
//! (production) implementations over one schema.
//!
//! Model files are not here: they go to the [`crate::artifacts`] store, and
//! rows only name them by [`ContentHash`](starling_protocol::ContentHash).

mod any;
mod coordinator_store;
mod error;
mod market;
mod migrations;
mod postgres;
mod queries;
mod records;
mod rows;
mod sqlite;
mod verdicts;

pub use any::{AnyCoordinatorStore, open_any};
pub use coordinator_store::CoordinatorStore;
pub use error::{Duplicate, StoreError};
pub use market::{MarketModel, MarketStore, MarketVersion, Promotion};
pub use postgres::PostgresCoordinatorStore;
pub use records::{Join, Lease, NewTask, Recorded, RoundRecord, ScoreRecord, SubmissionRecord, TaskRecord, TaskState};
pub use sqlite::SqliteCoordinatorStore;
pub use starling_protocol::{Cursor, MAX_PAGE, Page, PageRequest};
pub use verdicts::VerdictStore;
