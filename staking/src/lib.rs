//! Starling's staking ledger: accounts, stakes with lock-ups, delegation,
//! round rewards, slashing, fees and the validator consensus math.
//!
//! The core is pure. An [`Operation`] names the rows it reads
//! ([`Operation::accounts_touched`]); a store loads them into a [`Snapshot`]
//! (locking them where the database can); [`plan`] turns operation, snapshot
//! and `now` into a [`Plan`] of balanced journal [`Entry`]s and row changes, or
//! a typed [`LedgerError`]; the store writes the plan in one transaction.
//! [`MemoryLedger`] runs the same planner in memory and is the reference
//! model the database stores are tested against.
//!
//! Amounts are integer micro-units ([`Amount`]); fractions are parts per
//! million ([`Ppm`]); every rounding is a documented floor, and what flooring
//! leaves over stays where it came from. Money only enters through
//! [`Operation::Issue`] and only leaves through [`AccountRef::Burned`].

mod account;
mod amount;
mod arithmetic;
pub mod consensus;
mod error;
mod holdings;
mod journal;
mod memory;
mod operation;
mod params;
mod plan;
mod settlement;
mod snapshot;
mod split;
mod store;
mod views;

pub use account::{AccountRef, BondId};
pub use amount::{Amount, MAX_SUPPLY, MICRO_PER_STAR, Timestamp};
pub use arithmetic::checked_sum;
pub use error::LedgerError;
pub use holdings::{Bond, Node, Role, TaskPool};
pub use journal::{Entry, EntryKind, Outcome, Plan, net_changes};
pub use memory::MemoryLedger;
pub use operation::{Operation, Touched};
pub use params::{Commission, LockDays, MAX_LOCK_DAYS, NEUTRAL_LOCK_DAYS, Params, Ppm};
pub use plan::plan;
pub use settlement::{Accepted, RoundReport, ValidatorAgreement};
pub use snapshot::{Context, Snapshot};
pub use split::pro_rata;
pub use store::migrations;
pub use store::{
    AnyLedgerStore, Audit, Backend, LedgerStore, PostgresStore, SqliteStore, StoreError, UnsupportedScheme, open_any,
    scratch_schema,
};
pub use views::{Balances, Cursor, HistoryEntry, MAX_PAGE, Page, PageRequest, Position};
