//! `GET /api/accounts/{key}`: one identity's balances, bonds and a page of
//! its reward and slash history.

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};

use crate::error::ApiError;
use crate::params::{PageQuery, page_request, public_key};
use crate::state::AppState;
use crate::views::AccountView;

/// The account, with the history page named by `?cursor=&limit=`.
pub(crate) async fn get(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Json<AccountView>, ApiError> {
    let key = public_key(path)?;
    let page = page_request(query, &state.config)?;
    Ok(Json(state.account(key, page).await?))
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;
    use serde_json::json;

    use crate::testing::{MemoryModel, get, send_json};

    #[tokio::test]
    async fn account_has_the_documented_shape() {
        let model = MemoryModel::fixture();
        let key = MemoryModel::alice();
        let (status, body) = send_json(&model, get(&format!("/api/accounts/{key}?limit=2"))).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            body,
            json!({
                "key": key.to_string(),
                "balances": {"free": 5_000_000u64, "staked": 2_000_000u64, "delegated": 1_000_000u64},
                "stakes": [{
                    "id": 11,
                    "node": key.to_string(),
                    "role": "trainer",
                    "amount": 2_000_000u64,
                    "effective": 4_000_000u64,
                    "lock_days": 197,
                    "unlock_at": 1_767_225_600u64,
                }],
                "delegations": [{
                    "id": 12,
                    "node": MemoryModel::bob().to_string(),
                    "role": "validator",
                    "amount": 1_000_000u64,
                    "effective": 1_000_000u64,
                    "lock_days": 0,
                    "unlock_at": 1_750_000_000u64,
                }],
                "history": {
                    "items": [
                        {"task": 1, "round": 4, "kind": "reward", "amount": 104, "bond": null, "at": 1_750_000_104u64},
                        {"task": 1, "round": 3, "kind": "slash_to_pool", "amount": 103, "bond": 11, "at": 1_750_000_103u64},
                    ],
                    "next_cursor": "3",
                },
            })
        );
    }

    #[tokio::test]
    async fn history_cursor_walks_every_entry_once() {
        let model = MemoryModel::fixture();
        let key = MemoryModel::alice();
        let mut uri = format!("/api/accounts/{key}?limit=2");
        let mut rounds = Vec::new();
        loop {
            let (status, body) = send_json(&model, get(&uri)).await;
            assert_eq!(status, StatusCode::OK);
            rounds.extend(body["history"]["items"].as_array().unwrap().iter().map(|e| e["round"].as_u64().unwrap()));
            match body["history"]["next_cursor"].as_str() {
                Some(cursor) => uri = format!("/api/accounts/{key}?limit=2&cursor={cursor}"),
                None => break,
            }
        }
        assert_eq!(rounds, [4, 3, 2, 1, 0]);
    }

    #[tokio::test]
    async fn unknown_account_is_404_and_bad_key_is_400() {
        let model = MemoryModel::fixture();
        let stranger = "ab".repeat(32);
        let (status, body) = send_json(&model, get(&format!("/api/accounts/{stranger}"))).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body, json!({"error": {"code": "not_found", "message": format!("no account for key {stranger}")}}));

        let (status, body) = send_json(&model, get("/api/accounts/abc")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(
            body,
            json!({"error": {"code": "invalid_public_key", "message": "public key must be hex: expected 64 hex digits, found 3"}})
        );
        let (status, body) = send_json(&model, get(&format!("/api/accounts/{}", "zz".repeat(32)))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"]["code"], "invalid_public_key");

        let key = MemoryModel::alice();
        let (status, body) = send_json(&model, get(&format!("/api/accounts/{key}?cursor=x"))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"]["code"], "invalid_cursor");
    }
}
