//! `GET /api/openapi.json`: the OpenAPI 3.1 document of every machine-readable
//! route, written by hand.
//!
//! Hand-written rather than derived so that this crate needs no schema
//! macros on the protocol's types. Its tests keep it honest: it must list
//! exactly the routes of [`crate::router::api_routes`], and the fixture's
//! real responses (tasks, task detail, account, models, predictions,
//! errors) and every aggregation rule's serialisation must validate against
//! its schemas.
//!
//! The document is one frame, written here (what every route shares: the
//! error shape, cursors, keys and hashes, paging parameters, the common
//! error responses, and the operational routes), with the part of each
//! resource merged in: [`tasks`] (tasks and accounts) and [`market`]. The
//! pieces all of them write alike are built by [`schema`].

mod market;
mod schema;
mod tasks;
#[cfg(test)]
mod tests;

use std::sync::LazyLock;

use axum::Json;
use serde_json::{Value, json};

use schema::{hex, json_response, object, schema_ref, with_errors};

/// The document, built once.
static DOCUMENT: LazyLock<Value> = LazyLock::new(document);

/// Serves the document.
pub(crate) async fn get() -> Json<Value> {
    Json(DOCUMENT.clone())
}

/// The whole document: the frame, with every resource's part merged in.
fn document() -> Value {
    let text = |description: &str, media: &str| json!({"description": description, "content": {media: {"schema": {"type": "string"}}}});
    let mut document = json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Starling coordinator API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "JSON over the coordinator's tasks, marketplace models and ledger, and the marketplace's inference calls. Amounts are integers in µSTAR (1 STAR = 1 000 000 µSTAR); times are seconds since the Unix epoch; keys and hashes are 64 lower-case hex digits. Every error has the body `{\"error\": {\"code\", \"message\"}}`. Lists are paged with `?cursor=&limit=`: pass a page's `next_cursor` back to continue.",
        },
        "paths": {
            "/api/openapi.json": {"get": {
                "operationId": "getOpenApi",
                "summary": "This document.",
                "responses": {"200": json_response("The OpenAPI 3.1 document.", json!({"type": "object"}))},
            }},
            "/healthz": {"get": {
                "operationId": "health",
                "summary": "Whether the coordinator can serve; for load balancers. Never cached.",
                "responses": with_errors(json!({"200": text("It can.", "text/plain; charset=utf-8")}), &["503"]),
            }},
            "/metrics": {"get": {
                "operationId": "metrics",
                "summary": "The coordinator's metrics in Prometheus text format 0.0.4.",
                "responses": with_errors(json!({"200": text("The metrics.", "text/plain; version=0.0.4; charset=utf-8")}), &["500", "503"]),
            }},
        },
        "components": {
            "schemas": {
                "Error": object("Every failing response of the JSON API.", json!({
                    "error": object("What went wrong.", json!({
                        "code": {"type": "string", "description": "Stable and machine-readable: `bad_request`, `invalid_query`, `invalid_cursor`, `invalid_limit`, `invalid_task_id`, `invalid_public_key`, `invalid_model_id`, `invalid_version`, `invalid_input`, `envelope_mismatch`, `invalid_signature`, `payment_required`, `not_found`, `method_not_allowed`, `replayed`, `payload_too_large`, `unsupported_media_type`, `too_many_requests`, `internal`, `unavailable`, `busy`, `server_error` or `client_error`."},
                        "message": {"type": "string", "description": "For people. 4xx messages say what the caller did wrong; 5xx messages are fixed texts."},
                    })),
                })),
                "Cursor": {"type": "string", "pattern": "^[0-9]+$", "description": "Opaque position in a list; pass it back as `?cursor=` for the next page. A decimal string, never a number."},
                "PublicKey": hex("An ed25519 public key"),
                "ContentHash": hex("A BLAKE3 hash"),
            },
            "parameters": {
                "cursor": {"name": "cursor", "in": "query", "required": false, "schema": schema_ref("Cursor"), "description": "Continue after this position: a `next_cursor` this list returned. Absent or empty for the first page."},
                "limit": {"name": "limit", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 1}, "description": "Most items wanted; defaults to 50 and is capped at 200 (both configurable). 0 is refused."},
            },
            "responses": {
                "E400": json_response("A parameter is malformed; the message says which and why.", schema_ref("Error")),
                "E404": json_response("No such resource.", schema_ref("Error")),
                "E500": json_response("The server failed; the cause is logged, not sent.", schema_ref("Error")),
                "E503": json_response("The store cannot answer now, or inference is busy; try again later (a busy prediction says when, in `Retry-After`).", schema_ref("Error")),
            },
        },
    });
    for (section, part) in [
        ("/paths", tasks::paths()),
        ("/paths", market::paths()),
        ("/components/schemas", tasks::schemas()),
        ("/components/schemas", market::schemas()),
        ("/components/parameters", tasks::parameters()),
        ("/components/parameters", market::parameters()),
        ("/components/responses", market::responses()),
    ] {
        let target = document.pointer_mut(section).and_then(Value::as_object_mut).expect("the section is an object");
        target.extend(part);
    }
    document
}
