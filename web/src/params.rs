//! Reading path and query parameters into typed values, refusing bad ones
//! with a 400 that names the parameter.

use axum::extract::Path;
use axum::extract::Query;
use axum::extract::rejection::{PathRejection, QueryRejection};
use serde::Deserialize;
use starling_protocol::{PublicKey, TaskId};

use crate::config::WebConfig;
use crate::error::ApiError;
use crate::page::{Cursor, PageRequest};

/// `?cursor=&limit=` as sent; both optional, an empty value counts as absent.
#[derive(Debug, Deserialize)]
pub(crate) struct PageQuery {
    cursor: Option<String>,
    limit: Option<String>,
}

/// The page a client asked for: the cursor must be one we handed out, the
/// limit a positive integer (capped at the configured maximum).
pub(crate) fn page_request(
    query: Result<Query<PageQuery>, QueryRejection>,
    config: &WebConfig,
) -> Result<PageRequest, ApiError> {
    let Query(query) = query.map_err(|rejection| ApiError::bad_request("invalid_query", rejection.body_text()))?;
    let after = match query.cursor.as_deref() {
        None | Some("") => None,
        Some(text) => {
            Some(text.parse::<Cursor>().map_err(|error| ApiError::bad_request("invalid_cursor", error.to_string()))?)
        }
    };
    let requested = match query.limit.as_deref() {
        None | Some("") => None,
        Some(text) => {
            // Parsed wide so that a huge limit is capped rather than refused.
            let limit = parse_digits(text)
                .filter(|&n| n > 0)
                .ok_or_else(|| ApiError::bad_request("invalid_limit", "limit must be a positive integer"))?;
            Some(u32::try_from(limit).unwrap_or(u32::MAX))
        }
    };
    Ok(PageRequest { after, limit: config.page_limit(requested) })
}

/// The `{id}` path segment as a task id: decimal digits only.
pub(crate) fn task_id(path: Result<Path<String>, PathRejection>) -> Result<TaskId, ApiError> {
    let Path(text) = path.map_err(|rejection| ApiError::bad_request("invalid_task_id", rejection.body_text()))?;
    parse_digits(&text)
        .map(TaskId::new)
        .ok_or_else(|| ApiError::bad_request("invalid_task_id", "task id must be a decimal number below 2^64"))
}

/// The `{id}` path segment as a marketplace model id: decimal digits only.
pub(crate) fn model_id(path: Result<Path<String>, PathRejection>) -> Result<u64, ApiError> {
    let Path(text) = path.map_err(|rejection| ApiError::bad_request("invalid_model_id", rejection.body_text()))?;
    parse_model_id(&text)
}

/// The `{id}` and `{version}` path segments of a model version.
pub(crate) fn model_version(path: Result<Path<(String, String)>, PathRejection>) -> Result<(u64, u32), ApiError> {
    let Path((id, version)) =
        path.map_err(|rejection| ApiError::bad_request("invalid_model_id", rejection.body_text()))?;
    let id = parse_model_id(&id)?;
    let version = parse_digits(&version)
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| ApiError::bad_request("invalid_version", "version must be a decimal number below 2^32"))?;
    Ok((id, version))
}

/// A model id as written in a path.
fn parse_model_id(text: &str) -> Result<u64, ApiError> {
    parse_digits(text)
        .ok_or_else(|| ApiError::bad_request("invalid_model_id", "model id must be a decimal number below 2^64"))
}

/// The `{key}` path segment as an ed25519 public key in hex.
pub(crate) fn public_key(path: Result<Path<String>, PathRejection>) -> Result<PublicKey, ApiError> {
    let Path(text) = path.map_err(|rejection| ApiError::bad_request("invalid_public_key", rejection.body_text()))?;
    text.parse::<PublicKey>()
        .map_err(|error| ApiError::bad_request("invalid_public_key", format!("public key must be hex: {error}")))
}

/// A `u64` written as plain decimal digits (no sign, no spaces).
fn parse_digits(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_only() {
        assert_eq!(parse_digits("0"), Some(0));
        assert_eq!(parse_digits("18446744073709551615"), Some(u64::MAX));
        for bad in ["", "+1", "-1", " 1", "1e3", "18446744073709551616", "0x10"] {
            assert_eq!(parse_digits(bad), None, "{bad:?}");
        }
    }
}
