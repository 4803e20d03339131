//! Builders of the OpenAPI document's pieces (schemas, references,
//! responses, operations) that every part of the document writes the same
//! way.

use serde_json::{Map, Value, json};

/// `value`, a JSON object literal, as a map.
pub(crate) fn map(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => unreachable!("a JSON object literal"),
    }
}

/// `{"$ref": "#/components/schemas/<name>"}`.
pub(crate) fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

/// `{"$ref": "#/components/responses/<name>"}`.
pub(crate) fn response_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/responses/{name}")})
}

/// `{"$ref": "#/components/parameters/<name>"}`.
pub(crate) fn parameter_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/parameters/{name}")})
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

/// A fraction in `[0, 1]`.
pub(crate) fn fraction(description: &str) -> Value {
    json!({"type": "number", "minimum": 0, "maximum": 1, "description": description})
}

/// 64 lower-case hex digits: a key, a hash or an id derived from one.
pub(crate) fn hex(what: &str) -> Value {
    json!({"type": "string", "pattern": "^[0-9a-f]{64}$", "description": format!("{what}: 64 lower-case hex digits.")})
}

/// An object schema with every listed property required.
pub(crate) fn object(description: &str, properties: Value) -> Value {
    let required: Vec<&String> = properties.as_object().expect("properties are an object").keys().collect();
    json!({"type": "object", "description": description, "required": required, "properties": properties})
}

/// [`object`] over a map of properties.
pub(crate) fn object_of(description: &str, properties: Map<String, Value>) -> Value {
    object(description, Value::Object(properties))
}

/// One page of a list (`Page<T>` in the crate): the items, each a
/// `<item>`, and the cursor of the next page.
pub(crate) fn page(item: &str, description: &str) -> Value {
    object(
        description,
        json!({
            "items": {"type": "array", "items": schema_ref(item)},
            "next_cursor": nullable(schema_ref("Cursor")),
        }),
    )
}

/// A one-key object `{"<name>": {..parameters}}`: how serde writes an
/// enum variant with fields.
pub(crate) fn tagged(name: &str, parameters: Value) -> Value {
    object(&format!("`{name}` with its parameters."), json!({ name: object(name, parameters) }))
}

/// The JSON response with `schema`.
pub(crate) fn json_response(description: &str, schema: Value) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": schema}}})
}

/// `responses` with a reference to the shared error response of each status in `codes`.
pub(crate) fn with_errors(mut responses: Value, codes: &[&str]) -> Value {
    let errors = codes.iter().map(|code| ((*code).to_owned(), response_ref(&format!("E{code}"))));
    responses.as_object_mut().expect("object").extend(errors);
    responses
}

/// The GET of a model file, as [`blob_response`](crate::routes::model::blob_response)
/// serves it for every download route: `parameters` name the file, which
/// comes as an attachment called `file_name`, with its hash as the `ETag`
/// and a bodiless 304 for a client that sends that tag back.
pub(crate) fn file_download(
    operation_id: &str,
    summary: &str,
    description: &str,
    mut parameters: Vec<Value>,
    file_name: &str,
) -> Value {
    parameters.push(json!({
        "name": "If-None-Match", "in": "header", "required": false,
        "schema": {"type": "string"}, "description": "An `ETag` this route returned before, or `*`.",
    }));
    json!({"get": {
        "operationId": operation_id,
        "summary": summary,
        "description": description,
        "parameters": parameters,
        "responses": with_errors(json!({
            "200": {
                "description": "The model file.",
                "headers": {
                    "ETag": {"schema": {"type": "string"}, "description": "The BLAKE3 hash of the bytes, quoted."},
                    "Content-Disposition": {"schema": {"type": "string"}, "description": format!("`attachment; filename=\"{file_name}\"`.")},
                },
                "content": {"application/octet-stream": {"schema": {"type": "string", "contentMediaType": "application/octet-stream"}}},
            },
            "304": {"description": "The client's copy is current."},
        }), &["400", "404", "500", "503"]),
    }})
}
