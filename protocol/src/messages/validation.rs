//! The checks a request passes before anything stateful looks at it, and the
//! error that names the field it refuses.

use thiserror::Error;

use crate::messages::error_code::ErrorCode;
use crate::task::TaskSpecError;

/// The longest lock-up a stake or delegation may ask for, in days (one year).
/// Mirrors the ledger's own bound, so a request the ledger would refuse never
/// leaves the client.
pub const MAX_LOCK_DAYS: u16 = 365;

/// The highest commission a node may charge, in parts per million (σ ≤ 0.5).
pub const MAX_COMMISSION_PPM: u32 = 500_000;

/// Why a request was refused before any state was consulted. Every variant
/// names the offending field, so a client is told exactly what to fix.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ValidationError {
    /// The task specification of a `CreateTask` is invalid.
    #[error("spec: {0}")]
    Spec(#[from] TaskSpecError),
    /// A field that must be positive is zero (an amount, a length, a sample count).
    #[error("`{field}` must be greater than zero")]
    Zero {
        /// The field.
        field: &'static str,
    },
    /// A lock-up is longer than [`MAX_LOCK_DAYS`].
    #[error("`lock_days` is {days}, at most {max} are allowed")]
    LockDaysOutOfRange {
        /// The requested lock-up.
        days: u16,
        /// [`MAX_LOCK_DAYS`].
        max: u16,
    },
    /// A commission is above [`MAX_COMMISSION_PPM`].
    #[error("`ppm` is {ppm}, at most {max} (σ = 0.5) is allowed")]
    CommissionOutOfRange {
        /// The requested commission, in parts per million.
        ppm: u32,
        /// [`MAX_COMMISSION_PPM`].
        max: u32,
    },
    /// A float is NaN or infinite.
    #[error("`{field}` must be a finite number, got {value}")]
    NonFinite {
        /// The field.
        field: &'static str,
        /// Its value.
        value: f64,
    },
    /// A finite float is outside its range.
    #[error("`{field}` must lie in [{min}, {max}], got {value}")]
    OutOfRange {
        /// The field.
        field: &'static str,
        /// Its value.
        value: f64,
        /// Smallest value allowed.
        min: f64,
        /// Largest value allowed.
        max: f64,
    },
    /// A blob announced by the request is longer than the task accepts.
    #[error("`{field}` is {len} bytes, the task accepts at most {limit}")]
    TooLarge {
        /// The length field.
        field: &'static str,
        /// The announced length.
        len: u64,
        /// The task's payload limit.
        limit: u64,
    },
    /// A key delegates to itself; own stake is made with `Stake`.
    #[error("a key cannot delegate to itself; stake instead")]
    SelfDelegation,
    /// A key transfers to itself.
    #[error("a key cannot transfer to itself")]
    SelfTransfer,
}

impl From<&ValidationError> for ErrorCode {
    fn from(error: &ValidationError) -> Self {
        match error {
            ValidationError::NonFinite { .. } => Self::NonFinite,
            ValidationError::TooLarge { .. } => Self::PayloadTooLarge,
            ValidationError::Spec(_)
            | ValidationError::Zero { .. }
            | ValidationError::LockDaysOutOfRange { .. }
            | ValidationError::CommissionOutOfRange { .. }
            | ValidationError::OutOfRange { .. }
            | ValidationError::SelfDelegation
            | ValidationError::SelfTransfer => Self::InvalidField,
        }
    }
}

/// `Err(Zero)` unless `value > 0`.
pub(crate) fn positive(field: &'static str, value: u64) -> Result<(), ValidationError> {
    if value == 0 { Err(ValidationError::Zero { field }) } else { Ok(()) }
}

/// `Err` unless `value` is finite and within `[min, max]`; NaN fails.
pub(crate) fn in_range(field: &'static str, value: f64, min: f64, max: f64) -> Result<(), ValidationError> {
    if !value.is_finite() {
        Err(ValidationError::NonFinite { field, value })
    } else if !(min..=max).contains(&value) {
        Err(ValidationError::OutOfRange { field, value, min, max })
    } else {
        Ok(())
    }
}

/// `Err` unless `days ≤ MAX_LOCK_DAYS`.
pub(crate) fn lock_days(days: u16) -> Result<(), ValidationError> {
    if days > MAX_LOCK_DAYS { Err(ValidationError::LockDaysOutOfRange { days, max: MAX_LOCK_DAYS }) } else { Ok(()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers_refuse_what_they_should() {
        assert_eq!(positive("amount", 0), Err(ValidationError::Zero { field: "amount" }));
        assert_eq!(positive("amount", 1), Ok(()));
        assert!(matches!(in_range("x", f64::NAN, 0.0, 1.0), Err(ValidationError::NonFinite { field: "x", .. })));
        assert!(matches!(in_range("x", f64::INFINITY, 0.0, f64::MAX), Err(ValidationError::NonFinite { .. })));
        assert!(matches!(in_range("x", 1.5, 0.0, 1.0), Err(ValidationError::OutOfRange { value: 1.5, .. })));
        assert_eq!(in_range("x", 1.0, 0.0, 1.0), Ok(()));
        assert_eq!(lock_days(365), Ok(()));
        assert_eq!(lock_days(366), Err(ValidationError::LockDaysOutOfRange { days: 366, max: 365 }));
    }

    #[test]
    fn messages_name_the_field() {
        let text = ValidationError::OutOfRange { field: "accuracy", value: 2.0, min: 0.0, max: 1.0 }.to_string();
        assert!(text.contains("`accuracy`") && text.contains('2'), "{text}");
    }

    #[test]
    fn codes() {
        assert_eq!(
            ErrorCode::from(&ValidationError::NonFinite { field: "loss", value: f64::NAN }),
            ErrorCode::NonFinite
        );
        assert_eq!(
            ErrorCode::from(&ValidationError::TooLarge { field: "update_len", len: 2, limit: 1 }),
            ErrorCode::PayloadTooLarge
        );
        assert_eq!(ErrorCode::from(&ValidationError::Zero { field: "amount" }), ErrorCode::InvalidField);
        assert_eq!(ErrorCode::from(&ValidationError::SelfDelegation), ErrorCode::InvalidField);
    }
}
