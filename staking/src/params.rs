//! The economic parameters of ARCHITECTURE.md ("Economics"), as exact
//! integers: fractions are parts per million, lock-ups are whole days.

use crate::amount::Amount;
use crate::error::LedgerError;

/// A fraction in parts per million: `Ppm(1_000_000)` is one, `Ppm(200_000)`
/// is 0.2. Every economic ratio is one of these, so no float ever touches an
/// amount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, serde::Serialize)]
pub struct Ppm(u32);

impl Ppm {
    /// Zero.
    pub const ZERO: Self = Self(0);
    /// One (100%).
    pub const ONE: Self = Self(1_000_000);

    /// A fraction of `ppm` millionths; fails with
    /// [`LedgerError::FractionOutOfRange`] above one.
    pub const fn new(ppm: u32) -> Result<Self, LedgerError> {
        if ppm > Self::ONE.0 { Err(LedgerError::FractionOutOfRange { ppm }) } else { Ok(Self(ppm)) }
    }

    /// The raw millionths, `0 ..= 1_000_000`.
    pub const fn get(self) -> u32 {
        self.0
    }

    /// `floor(amount · self)`.
    pub fn of(self, amount: Amount) -> Amount {
        amount.fraction_floor(u64::from(self.0), u64::from(Self::ONE.0))
    }

    /// `1 − self`.
    pub const fn complement(self) -> Self {
        Self(Self::ONE.0 - self.0)
    }
}

/// The largest lock-up, in days (one year).
pub const MAX_LOCK_DAYS: u16 = 365;
/// Lock-ups up to this many days earn no bonus (multiplier one).
pub const NEUTRAL_LOCK_DAYS: u16 = 30;

/// A lock-up of `0 ..= 365` whole days.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct LockDays(u16);

impl LockDays {
    /// `days`, or [`LedgerError::LockDaysOutOfRange`] above [`MAX_LOCK_DAYS`].
    pub const fn new(days: u16) -> Result<Self, LedgerError> {
        if days > MAX_LOCK_DAYS { Err(LedgerError::LockDaysOutOfRange { days }) } else { Ok(Self(days)) }
    }

    /// The number of days.
    pub const fn get(self) -> u16 {
        self.0
    }

    /// Effective stake of `amount` locked this long: `amount · m(t)` with
    /// `m(t) = 1` for `t ≤ 30` and `m(t) = 1 + 2·(t − 30)/335` above (three at
    /// a full year).
    ///
    /// Exact in 128-bit integers and rounded **down** (floor) once, at the end:
    /// `amount + floor(2·amount·(t − 30) / 335)`. It never exceeds `3·amount`,
    /// so it always fits in a `u128`.
    pub fn effective(self, amount: Amount) -> u128 {
        let amount = u128::from(amount.micro());
        let bonus_days = u128::from(self.0.saturating_sub(NEUTRAL_LOCK_DAYS));
        let span = u128::from(MAX_LOCK_DAYS - NEUTRAL_LOCK_DAYS);
        amount + 2 * amount * bonus_days / span
    }
}

/// A node's commission σ, `0 ≤ σ ≤ 0.5`: the share of its reward it keeps
/// before the rest is split with its delegators by stake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Commission(Ppm);

impl Commission {
    /// The highest commission a node may charge: one half.
    pub const MAX: Self = Self(Ppm(500_000));

    /// σ = `ppm` millionths, or [`LedgerError::CommissionOutOfRange`] above 0.5.
    pub const fn from_ppm(ppm: u32) -> Result<Self, LedgerError> {
        if ppm > Self::MAX.0.0 { Err(LedgerError::CommissionOutOfRange { ppm }) } else { Ok(Self(Ppm(ppm))) }
    }

    /// σ as a fraction.
    pub const fn fraction(self) -> Ppm {
        self.0
    }
}

/// The network's economic parameters. [`Params::default`] holds the defaults
/// of ARCHITECTURE.md; a task or network may override any of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    /// Share `v` of a round's budget paid to validators (0.2); trainers get `1 − v`.
    pub validator_share: Ppm,
    /// Rank decay `ρ` of trainer weights `ρ^rank · s` (0.85).
    pub rank_decay: Ppm,
    /// Share of a rejected trainer's stake slashed (0.10).
    pub trainer_slash: Ppm,
    /// Share of a disagreeing validator's stake slashed (0.05).
    pub validator_slash: Ppm,
    /// A validator whose agreement is strictly below this is slashed (0.5).
    pub agreement_threshold: Ppm,
    /// Fee on unstaking and undelegating, paid to the treasury (0.05).
    pub unstake_fee: Ppm,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            validator_share: Ppm(200_000),
            rank_decay: Ppm(850_000),
            trainer_slash: Ppm(100_000),
            validator_slash: Ppm(50_000),
            agreement_threshold: Ppm(500_000),
            unstake_fee: Ppm(50_000),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_multiplier_matches_the_formula() {
        let star = Amount::from_micro(1_000_000);
        let eff = |days| LockDays::new(days).unwrap().effective(star);
        assert_eq!(eff(0), 1_000_000);
        assert_eq!(eff(30), 1_000_000);
        assert_eq!(eff(365), 3_000_000);
        // 1 + 2·1/335 = 1.005970149…, floored to the micro-unit.
        assert_eq!(eff(31), 1_005_970);
        // 1 + 2·167/335 = 1.997014925…
        assert_eq!(eff(197), 1_997_014);
        assert_eq!(LockDays::new(365).unwrap().effective(Amount::from_micro(u64::MAX)), 3 * u128::from(u64::MAX));
    }

    #[test]
    fn ranges_are_enforced() {
        assert_eq!(LockDays::new(366), Err(LedgerError::LockDaysOutOfRange { days: 366 }));
        assert_eq!(Commission::from_ppm(500_001), Err(LedgerError::CommissionOutOfRange { ppm: 500_001 }));
        assert!(Commission::from_ppm(500_000).is_ok());
        assert_eq!(Ppm::new(1_000_001), Err(LedgerError::FractionOutOfRange { ppm: 1_000_001 }));
    }

    #[test]
    fn fractions_floor() {
        assert_eq!(Ppm(50_000).of(Amount::from_micro(39)), Amount::from_micro(1));
        assert_eq!(Ppm::ONE.of(Amount::from_micro(u64::MAX)), Amount::from_micro(u64::MAX));
        assert_eq!(Ppm(200_000).complement(), Ppm(800_000));
    }
}
