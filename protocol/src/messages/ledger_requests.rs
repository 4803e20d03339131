//! Signed requests to the ledger: stake, unstake, delegate, undelegate, set a
//! commission, transfer, and (admin only) issue.
//!
//! Amounts are integers in µSTAR (`1 STAR = 1_000_000 µSTAR`). The signer of
//! the envelope is the account acted for (owner, delegator, node, payer);
//! whether it may do so, and whether it can afford it, is the ledger's call.

use serde::{Deserialize, Serialize};

use crate::envelope::Message;
use crate::keys::PublicKey;
use crate::messages::role::Role;
use crate::messages::validation::{MAX_COMMISSION_PPM, ValidationError, lock_days, positive};

/// Locks `amount` of the signer's free balance as its own stake in `role`
/// for `lock_days`. Longer lock-ups weigh more: effective stake is
/// `amount · m(lock_days)`, `m = 1` up to 30 days, rising to 3 at 365.
/// Answered with [`ResponseBody::Bonded`](crate::messages::ResponseBody::Bonded).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stake {
    /// The role the stake counts for.
    pub role: Role,
    /// µSTAR to lock, `> 0`.
    pub amount: u64,
    /// Lock-up in days, `0 ..= 365`.
    pub lock_days: u16,
}

impl Message for Stake {
    const KIND: &'static str = "starling/ledger.stake";
}

impl Stake {
    /// Checks the amount and the lock-up.
    pub fn validate(&self) -> Result<(), ValidationError> {
        positive("amount", self.amount)?;
        lock_days(self.lock_days)
    }
}

/// Returns one of the signer's own stake bonds once its lock has ended, less
/// the unstaking fee. Answered with
/// [`ResponseBody::Unbonded`](crate::messages::ResponseBody::Unbonded).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unstake {
    /// The bond, as [`ResponseBody::Bonded`](crate::messages::ResponseBody::Bonded)
    /// or [`BalanceInfo::bonds`](crate::messages::BalanceInfo::bonds) named it.
    pub bond: u64,
}

impl Message for Unstake {
    const KIND: &'static str = "starling/ledger.unstake";
}

impl Unstake {
    /// Any bond id may exist; present for uniformity.
    pub fn validate(&self) -> Result<(), ValidationError> {
        Ok(())
    }
}

/// Locks `amount` of the signer's free balance behind `node` in `role`: the
/// node's effective stake grows, and the delegator shares its rewards (less
/// its commission) and its slashes. Answered with
/// [`ResponseBody::Bonded`](crate::messages::ResponseBody::Bonded).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delegate {
    /// A key that has staked in `role`; never the signer itself.
    pub node: PublicKey,
    /// The node's role the delegation counts for.
    pub role: Role,
    /// µSTAR to lock, `> 0`.
    pub amount: u64,
    /// Lock-up in days, `0 ..= 365`.
    pub lock_days: u16,
}

impl Message for Delegate {
    const KIND: &'static str = "starling/ledger.delegate";
}

impl Delegate {
    /// Checks the amount and the lock-up.
    pub fn validate(&self) -> Result<(), ValidationError> {
        positive("amount", self.amount)?;
        lock_days(self.lock_days)
    }

    /// [`Delegate::validate`], and that `signer` is not delegating to itself.
    pub fn validate_from(&self, signer: &PublicKey) -> Result<(), ValidationError> {
        self.validate()?;
        if &self.node == signer { Err(ValidationError::SelfDelegation) } else { Ok(()) }
    }
}

/// Returns one of the signer's delegations once its lock has ended, less the
/// unstaking fee. Answered with
/// [`ResponseBody::Unbonded`](crate::messages::ResponseBody::Unbonded).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Undelegate {
    /// The delegation bond.
    pub bond: u64,
}

impl Message for Undelegate {
    const KIND: &'static str = "starling/ledger.undelegate";
}

impl Undelegate {
    /// Any bond id may exist; present for uniformity.
    pub fn validate(&self) -> Result<(), ValidationError> {
        Ok(())
    }
}

/// Sets the commission σ the signer, as a node in `role`, keeps of its
/// rewards before sharing the rest with its delegators. Takes effect for
/// rounds opened after it is recorded. Answered with
/// [`ResponseBody::Ack`](crate::messages::ResponseBody::Ack).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetCommission {
    /// The role whose commission is set.
    ///
    /// Carried so the wire can express per-role commissions; today's ledger
    /// keeps one commission per node, and applies it to both roles.
    pub role: Role,
    /// σ in parts per million, `0 ..= 500_000` (at most one half).
    pub ppm: u32,
}

impl Message for SetCommission {
    const KIND: &'static str = "starling/ledger.set-commission";
}

impl SetCommission {
    /// Checks that σ ≤ 0.5.
    pub fn validate(&self) -> Result<(), ValidationError> {
        if self.ppm > MAX_COMMISSION_PPM {
            Err(ValidationError::CommissionOutOfRange { ppm: self.ppm, max: MAX_COMMISSION_PPM })
        } else {
            Ok(())
        }
    }
}

/// Moves `amount` of the signer's free balance to `to`. Answered with
/// [`ResponseBody::Ack`](crate::messages::ResponseBody::Ack).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transfer {
    /// The payee; never the signer itself.
    pub to: PublicKey,
    /// µSTAR to move, `> 0`.
    pub amount: u64,
}

impl Message for Transfer {
    const KIND: &'static str = "starling/ledger.transfer";
}

impl Transfer {
    /// Checks the amount.
    pub fn validate(&self) -> Result<(), ValidationError> {
        positive("amount", self.amount)
    }

    /// [`Transfer::validate`], and that `signer` is not paying itself.
    pub fn validate_from(&self, signer: &PublicKey) -> Result<(), ValidationError> {
        self.validate()?;
        if &self.to == signer { Err(ValidationError::SelfTransfer) } else { Ok(()) }
    }
}

/// Creates `amount` new µSTAR in `to`'s free balance. Only the network's
/// admin key may sign this; anyone else is refused with
/// [`ErrorCode::Unauthorized`](crate::messages::ErrorCode::Unauthorized).
/// Answered with [`ResponseBody::Ack`](crate::messages::ResponseBody::Ack).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Issue {
    /// Who receives the new money.
    pub to: PublicKey,
    /// µSTAR to create, `> 0`.
    pub amount: u64,
}

impl Message for Issue {
    const KIND: &'static str = "starling/ledger.issue";
}

impl Issue {
    /// Checks the amount.
    pub fn validate(&self) -> Result<(), ValidationError> {
        positive("amount", self.amount)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> PublicKey {
        PublicKey::from_bytes([b; 32])
    }

    #[test]
    fn sensible_requests_pass() {
        for lock_days in [0, 30, 365] {
            assert_eq!(Stake { role: Role::Trainer, amount: 1, lock_days }.validate(), Ok(()));
            assert_eq!(Delegate { node: key(2), role: Role::Validator, amount: 1, lock_days }.validate(), Ok(()));
        }
        assert_eq!(Unstake { bond: 0 }.validate(), Ok(()));
        assert_eq!(Undelegate { bond: u64::MAX }.validate(), Ok(()));
        for ppm in [0, 250_000, 500_000] {
            assert_eq!(SetCommission { role: Role::Trainer, ppm }.validate(), Ok(()));
        }
        assert_eq!(Transfer { to: key(2), amount: 5 }.validate_from(&key(1)), Ok(()));
        assert_eq!(Issue { to: key(2), amount: u64::MAX }.validate(), Ok(()));
        assert_eq!(
            Delegate { node: key(2), role: Role::Trainer, amount: 1, lock_days: 0 }.validate_from(&key(1)),
            Ok(())
        );
    }

    #[test]
    fn zero_amounts_are_refused() {
        let zero = Err(ValidationError::Zero { field: "amount" });
        assert_eq!(Stake { role: Role::Trainer, amount: 0, lock_days: 0 }.validate(), zero);
        assert_eq!(Delegate { node: key(2), role: Role::Trainer, amount: 0, lock_days: 0 }.validate(), zero);
        assert_eq!(Transfer { to: key(2), amount: 0 }.validate(), zero);
        assert_eq!(Issue { to: key(2), amount: 0 }.validate(), zero);
    }

    #[test]
    fn long_lock_ups_are_refused() {
        let refused = Err(ValidationError::LockDaysOutOfRange { days: 366, max: 365 });
        assert_eq!(Stake { role: Role::Trainer, amount: 1, lock_days: 366 }.validate(), refused);
        assert_eq!(Delegate { node: key(2), role: Role::Trainer, amount: 1, lock_days: 366 }.validate(), refused);
        assert!(Stake { role: Role::Validator, amount: 1, lock_days: u16::MAX }.validate().is_err());
    }

    #[test]
    fn commission_above_one_half_is_refused() {
        assert_eq!(
            SetCommission { role: Role::Validator, ppm: 500_001 }.validate(),
            Err(ValidationError::CommissionOutOfRange { ppm: 500_001, max: 500_000 })
        );
        assert!(SetCommission { role: Role::Validator, ppm: u32::MAX }.validate().is_err());
    }

    #[test]
    fn paying_or_delegating_to_oneself_is_refused() {
        assert_eq!(
            Delegate { node: key(1), role: Role::Trainer, amount: 1, lock_days: 0 }.validate_from(&key(1)),
            Err(ValidationError::SelfDelegation)
        );
        assert_eq!(Transfer { to: key(1), amount: 1 }.validate_from(&key(1)), Err(ValidationError::SelfTransfer));
        // The field checks come first.
        assert_eq!(
            Transfer { to: key(1), amount: 0 }.validate_from(&key(1)),
            Err(ValidationError::Zero { field: "amount" })
        );
    }
}
