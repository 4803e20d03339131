//! The document against the router and the fixture: exactly the routes
//! served, every reference resolving, and real responses (and every
//! aggregation setting) valid under their schemas.

use std::collections::BTreeSet;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::{Value, json};
use starling_protocol::{AggregationRule, AggregationSpec, ServerOptimizer};

use super::DOCUMENT;
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
    for uri in ["/api/tasks/4", "/api/tasks?cursor=x", "/nope", "/api/models/9", "/api/models/1/versions/x/download"] {
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
