//! The view of one identity's account: balances, bonds, delegations and its
//! reward and slash history.

use serde::Serialize;
use starling_protocol::{PublicKey, Role, RoundNumber, TaskId};

use crate::page::Page;

/// `GET /api/accounts/{key}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AccountView {
    /// The identity.
    pub key: PublicKey,
    /// What it holds, in total.
    pub balances: Balances,
    /// Its own stake positions (bonds where it is the node).
    pub stakes: Vec<BondView>,
    /// Delegations it made to other nodes.
    pub delegations: Vec<BondView>,
    /// Its rewards and slashes, newest first, one page (`?cursor=&limit=`).
    pub history: Page<HistoryEntry>,
}

/// What an identity holds, in µSTAR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Balances {
    /// Free (liquid) balance.
    pub free: u64,
    /// Bonded as its own stake, every role together.
    pub staked: u64,
    /// Bonded behind other nodes (delegations it made).
    pub delegated: u64,
}

/// A bond: an own stake position or a delegation, with its lock-up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BondView {
    /// The ledger's bond id.
    pub id: u64,
    /// The node whose stake it counts towards (the owner itself for own stake).
    pub node: PublicKey,
    /// The role it counts for.
    pub role: Role,
    /// Still bonded (slashes lower it), in µSTAR.
    pub amount: u64,
    /// Effective stake, `amount · m(lock_days)` floored, in µSTAR (at most `3 · amount`).
    pub effective: u128,
    /// Lock-up chosen when bonding, `0 ..= 365` days.
    pub lock_days: u16,
    /// When unstaking becomes possible, seconds since the Unix epoch.
    pub unlock_at: u64,
}

/// What moved money in a history entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HistoryKind {
    /// A round reward paid to the identity.
    Reward,
    /// The half of a slash that went back to the task pool.
    SlashToPool,
    /// The half of a slash that was burned.
    SlashBurn,
}

/// One reward or slash of a settled round.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct HistoryEntry {
    /// The task whose round it was.
    pub task: TaskId,
    /// The round.
    pub round: RoundNumber,
    /// Reward or which half of a slash.
    pub kind: HistoryKind,
    /// Micro-units moved, in µSTAR.
    pub amount: u64,
    /// The slashed bond's id; `null` for rewards.
    pub bond: Option<u64>,
    /// When the settlement was applied, seconds since the Unix epoch.
    pub at: u64,
}
