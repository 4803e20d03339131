//! `GET /api/openapi.json`: the OpenAPI 3.1 document of every machine-readable
//! route, written by hand.
//!
//! Hand-written rather than derived so that this crate needs no schema
//! macros on the protocol's types. Its tests keep it honest: it must list
//! exactly the routes of [`crate::router::api_routes`], and the fixture's
//! real responses (tasks, task detail, account, models, predictions,
//! errors) and every aggregation rule's serialisation must validate against
//! its schemas. The marketplace's part lives in
//! [`openapi_market`](crate::routes::openapi_market).

use std::sync::LazyLock;

use axum::Json;
use serde_json::{Map, Value, json};
use starling_protocol::RoundPhase;

use crate::routes::openapi_market as market;

/// The document, built once.
static DOCUMENT: LazyLock<Value> = LazyLock::new(document);

/// Serves the document.
pub(crate) async fn get() -> Json<Value> {
    Json(DOCUMENT.clone())
}

/// `{"$ref": "#/components/schemas/<name>"}`.
pub(crate) fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

/// `schema` or `null`.
pub(crate) fn nullable(schema: Value) -> Value {
    json!({"oneOf": [schema, {"type": "null"}]})
}

/// An amount in µSTAR.
pub(crate) fn micro(description: &str) -> Value {
    json!({"type": "integer", "minimum": 0, "description": format!("{description}, in µSTAR (1 STAR = 1 000 000 µSTAR).")})
}

/// A non-negative integer.
pub(crate) fn count(description: &str) -> Value {
    json!({"type": "integer", "minimum": 0, "description": description})
}

/// An object schema with every listed property required.
pub(crate) fn object(description: &str, properties: Value) -> Value {
    let required: Vec<&String> = properties.as_object().expect("properties are an object").keys().collect();
    json!({"type": "object", "description": description, "required": required, "properties": properties})
}

/// A one-key object `{"<name>": {..parameters}}`: how serde writes an
/// enum variant with fields.
fn tagged(name: &str, parameters: Value) -> Value {
    object(&format!("`{name}` with its parameters."), json!({ name: object(name, parameters) }))
}

/// The JSON response with `schema`.
pub(crate) fn json_response(description: &str, schema: Value) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": schema}}})
}

/// `{"$ref": "#/components/responses/<name>"}`.
pub(crate) fn response_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/responses/{name}")})
}

/// `{"$ref": "#/components/parameters/<name>"}`.
pub(crate) fn parameter_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/parameters/{name}")})
}

/// The fields of a task's list row, shared by `TaskSummary` and `TaskDetail`.
fn summary_properties() -> Map<String, Value> {
    let properties = json!({
        "id": count("The task's id."),
        "model": {"type": "string", "description": "Architecture name from the model zoo, e.g. `mnist-cnn`."},
        "dataset": {"type": "string", "description": "Dataset name, e.g. `mnist`."},
        "phase": schema_ref("RoundPhase"),
        "round": count("The current round, counting from zero (the last one once the task is over)."),
        "rounds": count("Rounds the task runs in total."),
        "participants": count("Trainers sampled into the current round."),
        "pool_left": micro("Reward pool not yet paid out"),
    });
    let Value::Object(map) = properties else { unreachable!("a JSON object literal") };
    map
}

/// The schemas of every view.
fn schemas() -> Value {
    let hex = |what: &str| json!({"type": "string", "pattern": "^[0-9a-f]{64}$", "description": format!("{what}: 64 lower-case hex digits.")});
    let page = |item: &str, description: &str| {
        object(
            description,
            json!({
                "items": {"type": "array", "items": schema_ref(item)},
                "next_cursor": nullable(schema_ref("Cursor")),
            }),
        )
    };
    let mut detail = summary_properties();
    detail.extend(
        json!({
            "spec": schema_ref("TaskSpec"),
            "history": {"type": "array", "items": schema_ref("RoundRecord"), "description": "One record per round opened so far, oldest first."},
            "submissions": {"type": "array", "items": schema_ref("SubmissionView"), "description": "Submissions to the current round, or to the last one once the task is over."},
            "payouts": {"type": "array", "items": schema_ref("IdentityPayout"), "description": "Rewards and slashes over the whole task, one entry per identity."},
            "validators": {"type": "array", "items": schema_ref("ValidatorStanding"), "description": "The validators that scored anything, by mean agreement, highest first."},
        })
        .as_object()
        .expect("object")
        .clone(),
    );
    let finite = |description: &str| json!({"type": "number", "description": description});
    let decay =
        |description: &str| json!({"type": "number", "minimum": 0, "exclusiveMaximum": 1, "description": description});
    let optimizer_common = || {
        json!({
            "server_lr": finite("Server learning rate, > 0."),
            "beta1": decay("First-moment decay."),
            "beta2": decay("Second-moment decay."),
            "tau": finite("Adaptivity τ, > 0."),
        })
    };
    json!({
        "Error": object("Every failing response of the JSON API.", json!({
            "error": object("What went wrong.", json!({
                "code": {"type": "string", "description": "Stable and machine-readable: `bad_request`, `invalid_query`, `invalid_cursor`, `invalid_limit`, `invalid_task_id`, `invalid_public_key`, `invalid_model_id`, `invalid_version`, `invalid_input`, `envelope_mismatch`, `invalid_signature`, `payment_required`, `not_found`, `method_not_allowed`, `replayed`, `payload_too_large`, `unsupported_media_type`, `too_many_requests`, `internal`, `unavailable`, `busy`, `server_error` or `client_error`."},
                "message": {"type": "string", "description": "For people. 4xx messages say what the caller did wrong; 5xx messages are fixed texts."},
            })),
        })),
        "Cursor": {"type": "string", "pattern": "^[0-9]+$", "description": "Opaque position in a list; pass it back as `?cursor=` for the next page. A decimal string, never a number."},
        "PublicKey": hex("An ed25519 public key"),
        "ContentHash": hex("A BLAKE3 hash"),
        "RoundPhase": {
            "type": "string",
            "enum": RoundPhase::ALL.iter().map(|phase| phase.as_str()).collect::<Vec<_>>(),
            "description": "Where the current round stands; `finished` once the task is over.",
        },
        "TaskSummary": {"type": "object", "description": "One row of the task list.", "required": summary_properties().keys().collect::<Vec<_>>(), "properties": summary_properties()},
        "TaskPage": page("TaskSummary", "One page of tasks, in ascending id order."),
        "ValidatorStanding": object("How one validator did over a task.", json!({
            "validator": schema_ref("PublicKey"),
            "scores": {"type": "integer", "minimum": 0, "description": "Scores it returned, every round together."},
            "rounds": {"type": "integer", "minimum": 0, "description": "Rounds it scored in."},
            "agreement": {"type": "number", "minimum": 0, "maximum": 1, "description": "Mean agreement over those rounds: the share of its score mass that survived clipping to the consensus (recomputed with today's validator stakes)."},
            "last_agreement": {"type": "number", "minimum": 0, "maximum": 1, "description": "Agreement in the last round it scored in."},
            "rewarded": {"type": "integer", "minimum": 0, "description": "Rewards received on the task, in µSTAR."},
            "slashed": {"type": "integer", "minimum": 0, "description": "Slashed on the task, in µSTAR."},
        })),
        "TaskDetail": {"type": "object", "description": "A task: the list row's fields, its spec, round history, current submissions and payouts.", "required": detail.keys().collect::<Vec<_>>(), "properties": detail},
        "TaskSpec": object("The task as its creator specified it.", json!({
            "model": object("The model.", json!({
                "name": {"type": "string"},
                "tensors": {"type": "array", "items": object("One tensor.", json!({
                    "name": {"type": "string"},
                    "shape": {"type": "array", "items": count("A dimension."), "description": "Outermost first; `[]` is a scalar."},
                }))},
            })),
            "data": object("The data every trainer and validator must hold.", json!({
                "dataset": {"type": "string"},
                "input_shape": {"type": "array", "items": count("A dimension.")},
                "num_classes": count("Number of classes, ≥ 2."),
            })),
            "rounds": count("Rounds, ≥ 1."),
            "fraction": {"type": "number", "exclusiveMinimum": 0, "maximum": 1, "description": "Fraction C of eligible trainers sampled per round."},
            "local_epochs": count("Local epochs E per round, ≥ 1."),
            "batch_size": count("Local mini-batch size B, ≥ 1."),
            "learning_rate": {"type": "number", "exclusiveMinimum": 0, "description": "Local learning rate."},
            "aggregation": schema_ref("AggregationSpec"),
            "reward_pool": micro("Total reward escrowed from the creator"),
            "min_trainer_stake": micro("Least effective stake a trainer needs to be sampled"),
            "min_validator_stake": micro("Least effective stake a validator needs to be assigned work"),
            "payload_limit": count("Largest update payload accepted, in bytes."),
            "deadlines": object("Phase deadlines.", json!({
                "training_secs": count("Seconds trainers have, from the round's opening, to submit."),
                "validation_secs": count("Seconds validators have, from their assignment, to score."),
            })),
            "max_update_norm": nullable(finite("Updates with a larger L2 norm are rejected.")),
        })),
        "AggregationSpec": object("How accepted updates are combined.", json!({
            "rule": schema_ref("AggregationRule"),
            "norm_clip": nullable(finite("Each update is scaled down to at most this L2 norm.")),
            "server_optimizer": nullable(schema_ref("ServerOptimizer")),
        })),
        "AggregationRule": {"oneOf": [
            {"type": "string", "enum": ["fedavg", "median", "best"]},
            tagged("trimmed-mean", json!({"beta": {"type": "number", "minimum": 0, "exclusiveMaximum": 0.5}})),
            tagged("krum", json!({"byzantine": count("Assumed Byzantine updates f.")})),
            tagged("multi-krum", json!({"byzantine": count("Assumed Byzantine updates f."), "select": count("Updates averaged, ≥ 1.")})),
            tagged("bulyan", json!({"byzantine": count("Assumed Byzantine updates f.")})),
        ]},
        "ServerOptimizer": {"oneOf": [
            tagged("fedavgm", json!({"server_lr": finite("Server learning rate, > 0."), "momentum": decay("Momentum.")})),
            tagged("fedadagrad", json!({"server_lr": finite("Server learning rate, > 0."), "tau": finite("Adaptivity τ, > 0.")})),
            tagged("fedadam", optimizer_common()),
            tagged("fedyogi", optimizer_common()),
        ]},
        "RoundRecord": object("What one round produced.", json!({
            "round": count("The round."),
            "accuracy": nullable(json!({"type": "number", "minimum": 0, "maximum": 1, "description": "Accuracy of the round's global model on held-out data, a fraction; null until measured."})),
            "loss": nullable(finite("Mean loss of the round's global model on the same data; null until measured.")),
            "accepted": count("Submissions accepted into the aggregate."),
            "rejected": count("Submissions rejected."),
            "global_model": nullable(schema_ref("ContentHash")),
        })),
        "SubmissionView": {
            "type": "object",
            "description": "One trainer's submission to a round.",
            "required": ["id", "round", "trainer", "samples", "consensus_score", "status"],
            "properties": {
                "id": hex("The submission's id"),
                "round": count("The round it was made to."),
                "trainer": schema_ref("PublicKey"),
                "samples": count("Training examples the trainer reports (its FedAvg weight)."),
                "consensus_score": nullable(finite("Stake-weighted median of the validators' scores; null until they agree.")),
                "status": {"type": "string", "enum": ["pending", "accepted", "rejected"]},
                "reason": {"type": "string", "description": "Why it was rejected; present only when `status` is `rejected`."},
            },
        },
        "IdentityPayout": object("Everything one identity was paid and lost over a task.", json!({
            "identity": schema_ref("PublicKey"),
            "rewarded": micro("Rewards received"),
            "slashed": micro("Slashed from its bonds, both halves"),
        })),
        "AccountView": object("An identity's balances, bonds and one page of its history.", json!({
            "key": schema_ref("PublicKey"),
            "balances": object("What it holds.", json!({
                "free": micro("Free balance"),
                "staked": micro("Bonded as its own stake"),
                "delegated": micro("Bonded behind other nodes"),
            })),
            "stakes": {"type": "array", "items": schema_ref("BondView"), "description": "Its own stake positions."},
            "delegations": {"type": "array", "items": schema_ref("BondView"), "description": "Delegations it made to other nodes."},
            "history": schema_ref("HistoryPage"),
        })),
        "BondView": object("A stake position or a delegation, with its lock-up.", json!({
            "id": count("The ledger's bond id."),
            "node": schema_ref("PublicKey"),
            "role": {"type": "string", "enum": ["trainer", "validator"]},
            "amount": micro("Still bonded"),
            "effective": micro("Effective stake, amount · m(lock_days), at most 3 · amount"),
            "lock_days": {"type": "integer", "minimum": 0, "maximum": 365},
            "unlock_at": count("When unstaking becomes possible, seconds since the Unix epoch."),
        })),
        "HistoryPage": page("HistoryEntry", "One page of rewards and slashes, newest first."),
        "HistoryEntry": object("One reward or slash of a settled round.", json!({
            "task": count("The task."),
            "round": count("The round."),
            "kind": {"type": "string", "enum": ["reward", "slash_to_pool", "slash_burn"]},
            "amount": micro("Moved"),
            "bond": nullable(count("The slashed bond; null for rewards.")),
            "at": count("When it was applied, seconds since the Unix epoch."),
        })),
    })
}

/// `responses` with a reference to the shared error response of each status in `codes`.
pub(crate) fn with_errors(mut responses: Value, codes: &[&str]) -> Value {
    let errors = codes.iter().map(|code| ((*code).to_owned(), response_ref(&format!("E{code}"))));
    responses.as_object_mut().expect("object").extend(errors);
    responses
}

/// `into` (an object) with the entries of `more` (an object) added.
fn merged(mut into: Value, more: Map<String, Value>) -> Value {
    into.as_object_mut().expect("object").extend(more);
    into
}

/// The whole document.
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
            "/api/tasks": {"get": {
                "operationId": "listTasks",
                "summary": "One page of tasks, in ascending id order.",
                "parameters": [parameter_ref("cursor"), parameter_ref("limit")],
                "responses": with_errors(json!({"200": json_response("The page.", schema_ref("TaskPage"))}), &["400", "500", "503"]),
            }},
            "/api/tasks/{id}": {"get": {
                "operationId": "getTask",
                "summary": "A task: summary, spec, round history, current submissions and payouts.",
                "parameters": [parameter_ref("taskId")],
                "responses": with_errors(json!({"200": json_response("The task.", schema_ref("TaskDetail"))}), &["400", "404", "500", "503"]),
            }},
            "/api/tasks/{id}/model": {"get": {
                "operationId": "downloadModel",
                "summary": "The task's current global model as safetensors bytes.",
                "description": "Send the `ETag` back as `If-None-Match` to get a bodiless 304 while the model is unchanged.",
                "parameters": [parameter_ref("taskId"), {
                    "name": "If-None-Match", "in": "header", "required": false,
                    "schema": {"type": "string"}, "description": "An `ETag` this route returned before, or `*`.",
                }],
                "responses": with_errors(json!({
                    "200": {
                        "description": "The model file.",
                        "headers": {
                            "ETag": {"schema": {"type": "string"}, "description": "The BLAKE3 hash of the bytes, quoted."},
                            "Content-Disposition": {"schema": {"type": "string"}, "description": "`attachment; filename=\"task-<id>-<hash prefix>.safetensors\"`."},
                        },
                        "content": {"application/octet-stream": {"schema": {"type": "string", "contentMediaType": "application/octet-stream"}}},
                    },
                    "304": {"description": "The client's copy is current."},
                }), &["400", "404", "500", "503"]),
            }},
            "/api/accounts/{key}": {"get": {
                "operationId": "getAccount",
                "summary": "An identity's balances and bonds, with one page of its rewards and slashes (newest first).",
                "parameters": [parameter_ref("publicKey"), parameter_ref("cursor"), parameter_ref("limit")],
                "responses": with_errors(json!({"200": json_response("The account.", schema_ref("AccountView"))}), &["400", "404", "500", "503"]),
            }},
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
            "schemas": schemas(),
            "parameters": {
                "cursor": {"name": "cursor", "in": "query", "required": false, "schema": schema_ref("Cursor"), "description": "Continue after this position: a `next_cursor` this list returned. Absent or empty for the first page."},
                "limit": {"name": "limit", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 1}, "description": "Most items wanted; defaults to 50 and is capped at 200 (both configurable). 0 is refused."},
                "taskId": {"name": "id", "in": "path", "required": true, "schema": {"type": "integer", "minimum": 0, "maximum": u64::MAX}, "description": "The task's id, decimal digits."},
                "publicKey": {"name": "key", "in": "path", "required": true, "schema": schema_ref("PublicKey"), "description": "The identity's ed25519 public key."},
            },
            "responses": {
                "E400": json_response("A parameter is malformed; the message says which and why.", schema_ref("Error")),
                "E404": json_response("No such resource.", schema_ref("Error")),
                "E500": json_response("The server failed; the cause is logged, not sent.", schema_ref("Error")),
                "E503": json_response("The store cannot answer now, or inference is busy; try again later (a busy prediction says when, in `Retry-After`).", schema_ref("Error")),
            },
        },
    });
    for (section, more) in [
        ("/paths", market::paths()),
        ("/components/schemas", market::schemas()),
        ("/components/parameters", market::parameters()),
        ("/components/responses", market::responses()),
    ] {
        let target = document.pointer_mut(section).expect("the section exists");
        *target = merged(target.take(), more);
    }
    document
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use axum::body::Body;
    use axum::http::{Request, StatusCode, header};
    use serde_json::{Value, json};
    use starling_protocol::{AggregationRule, AggregationSpec, ServerOptimizer};

    use super::*;
    use crate::router::api_routes;
    use crate::testing::{MemoryModel, get, send, send_json};

    /// The schema a `$ref` names.
    fn resolve<'a>(doc: &'a Value, reference: &str) -> &'a Value {
        let pointer = reference.strip_prefix('#').unwrap_or_else(|| panic!("external $ref {reference}"));
        doc.pointer(pointer).unwrap_or_else(|| panic!("dangling $ref {reference}"))
    }

    /// Checks `value` against `schema`: the subset of JSON Schema the
    /// document uses (`$ref`, `oneOf`, `type`, `enum`, `required`,
    /// `properties`, `items`, `minimum`, `maximum`). Stricter than JSON
    /// Schema in one way: an object may hold no property its schema does not
    /// declare, so a field added to a view without documenting it fails.
    fn check(doc: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
        if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
            check(doc, resolve(doc, reference), value, at)?;
        }
        if let Some(options) = schema.get("oneOf").and_then(Value::as_array) {
            let matching = options.iter().filter(|option| check(doc, option, value, at).is_ok()).count();
            if matching != 1 {
                return Err(format!("{at}: {value} matches {matching} of {} oneOf options", options.len()));
            }
        }
        if let Some(kind) = schema.get("type").and_then(Value::as_str) {
            let ok = match kind {
                "object" => value.is_object(),
                "array" => value.is_array(),
                "string" => value.is_string(),
                "integer" => value.is_u64() || value.is_i64(),
                "number" => value.is_number(),
                "boolean" => value.is_boolean(),
                "null" => value.is_null(),
                other => return Err(format!("{at}: unknown type {other}")),
            };
            if !ok {
                return Err(format!("{at}: {value} is not of type {kind}"));
            }
        }
        if let Some(options) = schema.get("enum").and_then(Value::as_array)
            && !options.contains(value)
        {
            return Err(format!("{at}: {value} is not one of {options:?}"));
        }
        if let (Some(min), Some(v)) = (schema.get("minimum").and_then(Value::as_f64), value.as_f64())
            && v < min
        {
            return Err(format!("{at}: {v} < {min}"));
        }
        if let (Some(max), Some(v)) = (schema.get("maximum").and_then(Value::as_f64), value.as_f64())
            && v > max
        {
            return Err(format!("{at}: {v} > {max}"));
        }
        if let Some(object) = value.as_object()
            && let Some(properties) = schema.get("properties").and_then(Value::as_object)
        {
            for required in schema.get("required").and_then(Value::as_array).into_iter().flatten() {
                let name = required.as_str().unwrap();
                if !object.contains_key(name) {
                    return Err(format!("{at}: missing required {name}"));
                }
            }
            for (name, field) in object {
                let declared = properties.get(name).ok_or_else(|| format!("{at}: undocumented property {name}"))?;
                check(doc, declared, field, &format!("{at}.{name}"))?;
            }
        }
        if let (Some(items), Some(array)) = (schema.get("items"), value.as_array()) {
            for (i, item) in array.iter().enumerate() {
                check(doc, items, item, &format!("{at}[{i}]"))?;
            }
        }
        Ok(())
    }

    /// The schema of the 200 answer of `GET path`.
    fn ok_schema<'a>(doc: &'a Value, path: &str) -> &'a Value {
        ok_schema_of(doc, path, "get")
    }

    /// The schema of the 200 answer of `method path`.
    fn ok_schema_of<'a>(doc: &'a Value, path: &str, method: &str) -> &'a Value {
        &doc["paths"][path][method]["responses"]["200"]["content"]["application/json"]["schema"]
    }

    /// A valid unsigned prediction request for model 1, version 2.
    fn predict_request() -> Request<Body> {
        let inputs = json!({"inputs": [vec![0.5; 784]]});
        Request::post("/api/models/1/versions/2/predict")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(inputs.to_string()))
            .unwrap()
    }

    #[tokio::test]
    async fn served_as_json_openapi_3_1() {
        let model = MemoryModel::fixture();
        let response = send(&model, get("/api/openapi.json")).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        let (_, doc) = send_json(&model, get("/api/openapi.json")).await;
        assert_eq!(doc["openapi"], "3.1.0");
        assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    }

    #[tokio::test]
    async fn documents_exactly_the_routes_the_router_serves() {
        let routes: BTreeSet<&str> = api_routes().into_iter().map(|(path, _)| path).collect();
        let documented: BTreeSet<&str> = DOCUMENT["paths"].as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(routes, documented);
        for expected in [
            "/api/tasks",
            "/api/tasks/{id}",
            "/api/tasks/{id}/model",
            "/api/accounts/{key}",
            "/api/models",
            "/api/models/{id}",
            "/api/models/{id}/versions/{version}/download",
            "/api/models/{id}/versions/{version}/predict",
            "/api/openapi.json",
            "/healthz",
            "/metrics",
        ] {
            assert!(routes.contains(expected), "{expected}");
        }
        // And the router really answers each of them with the documented
        // method (not the fallback's "no such route", nor a 405).
        let model = MemoryModel::fixture();
        for path in routes {
            let methods: Vec<&String> = DOCUMENT["paths"][path].as_object().unwrap().keys().collect();
            let uri =
                path.replace("{id}", "1").replace("{version}", "2").replace("{key}", &MemoryModel::alice().to_string());
            for method in methods {
                let request = match method.as_str() {
                    "get" => get(&uri),
                    "post" => predict_request(),
                    other => panic!("{path}: undocumented method {other}"),
                };
                let response = send(&model, request).await;
                assert_eq!(response.status(), StatusCode::OK, "{method} {uri}");
            }
        }
    }

    #[test]
    fn every_reference_resolves() {
        fn walk(doc: &Value, node: &Value) {
            match node {
                Value::Object(map) => {
                    if let Some(reference) = map.get("$ref").and_then(Value::as_str) {
                        resolve(doc, reference);
                    }
                    map.values().for_each(|child| walk(doc, child));
                }
                Value::Array(items) => items.iter().for_each(|child| walk(doc, child)),
                _ => {}
            }
        }
        walk(&DOCUMENT, &DOCUMENT);
        // Every path parameter in a template is declared, by every operation.
        for (path, item) in DOCUMENT["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                let declared: Vec<String> = operation["parameters"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|p| p.get("$ref").map_or(p, |r| resolve(&DOCUMENT, r.as_str().unwrap())))
                    .filter(|p| p["in"] == "path")
                    .map(|p| p["name"].as_str().unwrap().to_owned())
                    .collect();
                let templated: Vec<String> =
                    path.split('/').filter_map(|s| s.strip_prefix('{')?.strip_suffix('}')).map(str::to_owned).collect();
                assert_eq!(declared, templated, "{method} {path}");
            }
        }
    }

    #[tokio::test]
    async fn real_responses_match_their_schemas() {
        let model = MemoryModel::fixture();
        let alice = MemoryModel::alice();
        for (uri, path) in [
            ("/api/tasks?limit=2".to_owned(), "/api/tasks"),
            ("/api/tasks/1".to_owned(), "/api/tasks/{id}"),
            ("/api/tasks/5".to_owned(), "/api/tasks/{id}"),
            (format!("/api/accounts/{alice}?limit=3"), "/api/accounts/{key}"),
            ("/api/models?limit=1".to_owned(), "/api/models"),
            ("/api/models".to_owned(), "/api/models"),
            ("/api/models/1".to_owned(), "/api/models/{id}"),
            ("/api/models/4".to_owned(), "/api/models/{id}"),
        ] {
            let (status, body) = send_json(&model, get(&uri)).await;
            assert_eq!(status, StatusCode::OK, "{uri}");
            check(&DOCUMENT, ok_schema(&DOCUMENT, path), &body, &uri).unwrap();
        }
        let (status, body) = send_json(&model, predict_request()).await;
        assert_eq!(status, StatusCode::OK);
        let predict = "/api/models/{id}/versions/{version}/predict";
        check(&DOCUMENT, ok_schema_of(&DOCUMENT, predict, "post"), &body, "predict").unwrap();
        // The request bodies the route reads match theirs.
        let inputs = &DOCUMENT["paths"][predict]["post"]["requestBody"]["content"]["application/json"]["schema"];
        for body in [json!({"inputs": [[0, 0.5, 1]]}), json!({"inputs": [[[0, 0.5], [1, 0.25]], [0.5]]})] {
            check(&DOCUMENT, inputs, &body, "inputs").unwrap();
        }
        assert!(check(&DOCUMENT, inputs, &json!({"inputs": [[2]]}), "inputs").is_err());
        // A schema that accepts anything would pass the above: it must refuse.
        let (_, mut body) = send_json(&model, get("/api/tasks/1")).await;
        body["history"][0]["accuracy"] = json!("high");
        assert!(check(&DOCUMENT, ok_schema(&DOCUMENT, "/api/tasks/{id}"), &body, "").is_err());
        body["history"][0]["accuracy"] = json!(0.5);
        body["surprise"] = json!(1);
        assert!(check(&DOCUMENT, ok_schema(&DOCUMENT, "/api/tasks/{id}"), &body, "").is_err());
        let (_, mut body) = send_json(&model, get("/api/models/1")).await;
        body["versions"] = json!("two");
        assert!(check(&DOCUMENT, ok_schema(&DOCUMENT, "/api/models/{id}"), &body, "").is_err());

        let error_schema = &DOCUMENT["components"]["schemas"]["Error"];
        for uri in
            ["/api/tasks/4", "/api/tasks?cursor=x", "/nope", "/api/models/9", "/api/models/1/versions/x/download"]
        {
            let (_, body) = send_json(&model, get(uri)).await;
            check(&DOCUMENT, error_schema, &body, uri).unwrap();
        }
    }

    #[tokio::test]
    async fn every_error_code_the_routes_give_is_documented() {
        let described =
            DOCUMENT["components"]["schemas"]["Error"]["properties"]["error"]["properties"]["code"]["description"]
                .as_str()
                .unwrap();
        for code in [
            "invalid_model_id",
            "invalid_version",
            "invalid_input",
            "envelope_mismatch",
            "invalid_signature",
            "payment_required",
            "replayed",
            "unsupported_media_type",
            "too_many_requests",
            "busy",
        ] {
            assert!(described.contains(&format!("`{code}`")), "{code}");
        }
        let predict = &DOCUMENT["paths"]["/api/models/{id}/versions/{version}/predict"]["post"]["responses"];
        for status in ["200", "400", "401", "402", "404", "409", "413", "415", "429", "500", "503"] {
            assert!(predict.get(status).is_some(), "{status}");
        }
    }

    #[test]
    fn every_aggregation_setting_matches_its_schema() {
        let schema = &DOCUMENT["components"]["schemas"]["AggregationSpec"];
        let rules = [
            AggregationRule::FedAvg,
            AggregationRule::Median,
            AggregationRule::TrimmedMean { beta: 0.1 },
            AggregationRule::Krum { byzantine: 1 },
            AggregationRule::MultiKrum { byzantine: 1, select: 2 },
            AggregationRule::Bulyan { byzantine: 1 },
            AggregationRule::Best,
        ];
        let optimizers = [
            None,
            Some(ServerOptimizer::FedAvgM { server_lr: 1.0, momentum: 0.9 }),
            Some(ServerOptimizer::FedAdagrad { server_lr: 0.1, tau: 1e-3 }),
            Some(ServerOptimizer::FedAdam { server_lr: 0.1, beta1: 0.9, beta2: 0.99, tau: 1e-3 }),
            Some(ServerOptimizer::FedYogi { server_lr: 0.1, beta1: 0.9, beta2: 0.99, tau: 1e-3 }),
        ];
        for rule in rules {
            for server_optimizer in optimizers {
                let spec = AggregationSpec { rule, norm_clip: Some(5.0), server_optimizer };
                let value = serde_json::to_value(spec).unwrap();
                check(&DOCUMENT, schema, &value, "aggregation").unwrap_or_else(|e| panic!("{value}: {e}"));
            }
        }
    }
}
