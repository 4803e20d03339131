//! Why the ledger refused an operation. A refused operation changes nothing.

use starling_protocol::{PublicKey, RoundNumber, TaskId};

use crate::account::{AccountRef, BondId};
use crate::amount::{Amount, Timestamp};

/// A ledger rule refused the operation; nothing was written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    /// An amount of zero µSTAR was given where something must move.
    #[error("the amount must be greater than zero")]
    ZeroAmount,
    /// A sum would exceed `u64::MAX` µSTAR.
    #[error("amount overflow: the result exceeds u64::MAX micro-units")]
    Overflow,
    /// A difference would be negative (an internal guard; debits report
    /// [`LedgerError::InsufficientFunds`] instead).
    #[error("amount underflow: the result would be negative")]
    Underflow,
    /// The account holds less than the operation takes from it.
    #[error("{account} holds {available}, less than the {needed} required")]
    InsufficientFunds {
        /// The account debited.
        account: AccountRef,
        /// What the operation needs.
        needed: Amount,
        /// What the account holds.
        available: Amount,
    },
    /// The key has never held a balance, so there is nothing to debit.
    #[error("unknown account {key}")]
    UnknownAccount {
        /// The key named by the operation.
        key: PublicKey,
    },
    /// A transfer names the same key on both sides.
    #[error("cannot transfer from an account to itself")]
    SelfTransfer,
    /// Issuance was requested by a key other than the network's admin key.
    #[error("only the network's admin key may issue; {by} is not it")]
    NotAdmin {
        /// The key that asked.
        by: PublicKey,
    },
    /// No bond has this id (never made, or already unstaked).
    #[error("unknown bond {bond}")]
    UnknownBond {
        /// The id named by the operation.
        bond: BondId,
    },
    /// The bond belongs to someone else.
    #[error("bond {bond} does not belong to {key}")]
    NotBondOwner {
        /// The bond.
        bond: BondId,
        /// The key that tried to unstake it.
        key: PublicKey,
    },
    /// `Unstake` named a delegation, or `Undelegate` an own stake.
    #[error("bond {bond} is {actual}, not {expected}")]
    WrongBondKind {
        /// The bond.
        bond: BondId,
        /// What the operation expected ("own stake" or "a delegation").
        expected: &'static str,
        /// What the bond is.
        actual: &'static str,
    },
    /// The bond is still locked.
    #[error("bond {bond} is locked until {} (unix seconds)", unlock_at.0)]
    LockNotEnded {
        /// The bond.
        bond: BondId,
        /// When the lock ends.
        unlock_at: Timestamp,
    },
    /// A lock-up longer than 365 days.
    #[error("lock-up of {days} days is out of range 0..=365")]
    LockDaysOutOfRange {
        /// The requested days.
        days: u16,
    },
    /// A commission above 0.5.
    #[error("commission of {ppm} ppm is out of range 0..=500000")]
    CommissionOutOfRange {
        /// The requested commission in parts per million.
        ppm: u32,
    },
    /// A fraction above one.
    #[error("fraction of {ppm} ppm is above one")]
    FractionOutOfRange {
        /// The requested fraction in parts per million.
        ppm: u32,
    },
    /// Delegation or commission named a key that has never staked.
    #[error("{key} is not a node: it has never staked")]
    UnknownNode {
        /// The key.
        key: PublicKey,
    },
    /// A node may not delegate to itself (it stakes instead).
    #[error("a key cannot delegate to itself; stake instead")]
    SelfDelegation,
    /// A fee names the same recipient twice.
    #[error("a fee names {key} as a recipient twice")]
    DuplicateShare {
        /// The key.
        key: PublicKey,
    },
    /// No pool was ever funded for this task.
    #[error("task {task} has no reward pool")]
    UnknownTask {
        /// The task.
        task: TaskId,
    },
    /// A pool must pay for at least one round.
    #[error("a task pool must cover at least one round")]
    ZeroRounds,
    /// Funding an existing pool named a different number of rounds.
    #[error("task {task} pays for {existing} rounds, not {requested}")]
    TaskRoundsMismatch {
        /// The task.
        task: TaskId,
        /// Rounds recorded when the pool was opened.
        existing: u32,
        /// Rounds named now.
        requested: u32,
    },
    /// The round was settled before; settling twice is impossible.
    #[error("round {round} of task {task} is already settled")]
    RoundAlreadySettled {
        /// The task.
        task: TaskId,
        /// The round.
        round: RoundNumber,
    },
    /// Rounds settle in order; an earlier one is still open.
    #[error("task {task} settles round {expected} next, not {round}")]
    RoundOutOfOrder {
        /// The task.
        task: TaskId,
        /// The round named.
        round: RoundNumber,
        /// The next round to settle.
        expected: RoundNumber,
    },
    /// Every round the pool pays for is settled.
    #[error("task {task} has settled all its rounds")]
    TaskFinished {
        /// The task.
        task: TaskId,
    },
    /// A key appears twice in one round's report (twice in one list, or both
    /// accepted and rejected).
    #[error("{key} appears more than once in the round report")]
    DuplicateParticipant {
        /// The repeated key.
        key: PublicKey,
    },
    /// A consensus score is NaN or infinite, so submissions cannot be ranked.
    #[error("consensus score of {key} is not a finite number")]
    InvalidScore {
        /// The trainer.
        key: PublicKey,
    },
}
