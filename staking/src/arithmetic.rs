//! Amount arithmetic that refuses to overflow instead of wrapping: the half
//! of [`Amount`] that can fail, answering with [`LedgerError`].
//!
//! Kept apart from `amount.rs` because [`LedgerError`] names amounts (what an
//! account holds, what a debit needs): the value type sits below the error,
//! the fallible operations above it.

use crate::amount::{Amount, MICRO_PER_STAR};
use crate::error::LedgerError;

impl Amount {
    /// Whole STAR; fails with [`LedgerError::Overflow`] past `u64::MAX` µSTAR.
    pub fn from_star(star: u64) -> Result<Self, LedgerError> {
        star.checked_mul(MICRO_PER_STAR).map(Self::from_micro).ok_or(LedgerError::Overflow)
    }

    /// `self + other`, or [`LedgerError::Overflow`].
    pub fn checked_add(self, other: Self) -> Result<Self, LedgerError> {
        self.micro().checked_add(other.micro()).map(Self::from_micro).ok_or(LedgerError::Overflow)
    }

    /// `self − other`, or [`LedgerError::Underflow`] when `other` is larger:
    /// callers that debit an account map that to a more specific error.
    pub fn checked_sub(self, other: Self) -> Result<Self, LedgerError> {
        self.micro().checked_sub(other.micro()).map(Self::from_micro).ok_or(LedgerError::Underflow)
    }
}

/// Sums amounts, failing with [`LedgerError::Overflow`] instead of wrapping.
pub fn checked_sum(amounts: impl IntoIterator<Item = Amount>) -> Result<Amount, LedgerError> {
    amounts.into_iter().try_fold(Amount::ZERO, Amount::checked_add)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_refuses_to_wrap() {
        let max = Amount::from_micro(u64::MAX);
        assert_eq!(max.checked_add(Amount::from_micro(1)), Err(LedgerError::Overflow));
        assert_eq!(Amount::ZERO.checked_sub(Amount::from_micro(1)), Err(LedgerError::Underflow));
        assert_eq!(Amount::from_star(u64::MAX), Err(LedgerError::Overflow));
        assert_eq!(checked_sum([max, Amount::from_micro(1)]), Err(LedgerError::Overflow));
        assert_eq!(checked_sum([Amount::from_micro(2), Amount::from_micro(3)]), Ok(Amount::from_micro(5)));
    }
}
