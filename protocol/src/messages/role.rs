//! The role a key plays in a task or a stake: trainer or validator.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// What a key does for a task, and what a stake is bonded for. A key may be
/// both; its stakes (and the delegations to it) count per role.
///
/// Postcard encodes the role by position (`Trainer` = 0, `Validator` = 1), so
/// the order is part of the wire format; the text form is what storage and
/// the JSON API use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Trains locally and submits updates.
    Trainer,
    /// Scores other keys' submissions on held-out data.
    Validator,
}

impl Role {
    /// Both roles, in wire order.
    pub const ALL: [Role; 2] = [Role::Trainer, Role::Validator];

    /// The role's name: `"trainer"` or `"validator"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Trainer => "trainer",
            Self::Validator => "validator",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = ParseRoleError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|role| role.as_str() == text)
            .ok_or_else(|| ParseRoleError { text: text.chars().take(32).collect() })
    }
}

/// A string that names no [`Role`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unknown role `{text}` (expected `trainer` or `validator`)")]
pub struct ParseRoleError {
    /// The text (its first 32 characters).
    pub text: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_wire_forms_are_stable() {
        for role in Role::ALL {
            assert_eq!(role.to_string().parse::<Role>(), Ok(role));
            assert_eq!(serde_json::to_string(&role).unwrap(), format!("\"{role}\""));
        }
        assert_eq!(postcard::to_allocvec(&Role::Trainer).unwrap(), [0]);
        assert_eq!(postcard::to_allocvec(&Role::Validator).unwrap(), [1]);
        assert!("admin".parse::<Role>().is_err());
    }
}
