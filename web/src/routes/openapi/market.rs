//! The marketplace's part of the OpenAPI document: the paths, schemas,
//! parameters and error responses of `/api/models…`, merged into the
//! document by [`openapi`](crate::routes::openapi), whose tests check them
//! with the rest.

use serde_json::{Map, Value, json};

use crate::routes::openapi::schema::{
    count, file_download, fraction, json_response, map, micro, nullable, object, object_of, page, parameter_ref,
    schema_ref, with_errors,
};

/// The paths under `/api/models`.
pub(crate) fn paths() -> Map<String, Value> {
    let download = file_download(
        "downloadModelVersion",
        "A model version's safetensors file.",
        "Send the `ETag` back as `If-None-Match` to get a bodiless 304. Check the bytes against the version's `hash`.",
        vec![parameter_ref("modelId"), parameter_ref("version")],
        "model-<id>-v<version>.safetensors",
    );
    map(json!({
        "/api/models": {"get": {
            "operationId": "listModels",
            "summary": "One page of marketplace models with their latest version, in ascending id order.",
            "parameters": [parameter_ref("cursor"), parameter_ref("limit")],
            "responses": with_errors(json!({"200": json_response("The page.", schema_ref("ModelPage"))}), &["400", "500", "503"]),
        }},
        "/api/models/{id}": {"get": {
            "operationId": "getModel",
            "summary": "A marketplace model with every version (newest first), its metrics and lineage.",
            "parameters": [parameter_ref("modelId")],
            "responses": with_errors(json!({"200": json_response("The model.", schema_ref("ModelDetail"))}), &["400", "404", "500", "503"]),
        }},
        "/api/models/{id}/versions/{version}/download": download,
        "/api/models/{id}/versions/{version}/predict": {"post": {
            "operationId": "predict",
            "summary": "Runs a model version on the body's inputs.",
            "description": "Unsigned calls are free: at most 4 inputs (configurable) and a few calls a minute per client address. \
                A signed call carries a `starling/predict-request` envelope in the `Starling-Envelope` header, binding the model, \
                the version, the BLAKE3 hash of the exact body and the most the caller will pay (`max_fee`); it uses the caller's \
                free daily quota, then pays from its balance, and each envelope is single-use. Nothing is charged when the call fails.",
            "parameters": [parameter_ref("modelId"), parameter_ref("version"), {
                "name": "Starling-Envelope", "in": "header", "required": false,
                "schema": {"type": "string", "pattern": "^[0-9a-f]+$"},
                "description": "A postcard-encoded `SignedEnvelope` of a `PredictRequest`, in lower-case hex. Absent for unsigned calls.",
            }],
            "requestBody": {
                "required": true,
                "content": {
                    "application/json": {"schema": schema_ref("PredictInputs")},
                    "image/png": {
                        "schema": {"type": "string", "contentMediaType": "image/png"},
                        "description": "One image, at most 4096 pixels a side and 4 194 304 in all. Read as grayscale (BT.601 luma, transparency onto black) and resized by area averaging to the model's input height × width. MNIST models expect a white digit on black.",
                    },
                },
            },
            "responses": with_errors(
                json!({"200": json_response("One prediction per input, and what was charged.", schema_ref("Prediction"))}),
                &["400", "401", "402", "404", "409", "413", "415", "429", "500", "503"],
            ),
        }},
    }))
}

/// The fields of a version without its lineage, shared by `VersionSummary` and `VersionDetail`.
fn version_properties() -> Map<String, Value> {
    map(json!({
        "version": count("The version number, from 1."),
        "hash": schema_ref("ContentHash"),
        "size_bytes": count("Size of the safetensors file in bytes."),
        "promoted_at": count("When it was promoted, seconds since the Unix epoch."),
        "task": count("The task that produced it."),
        "round": count("The round whose aggregate it is (the task's best by consensus)."),
        "consensus_accuracy": fraction("The validators' consensus estimate of its accuracy."),
        "accuracy": nullable(fraction("Its accuracy on the coordinator's held-out data; null until measured.")),
        "loss": nullable(json!({"type": "number", "description": "Its mean loss on the same data; null until measured."})),
        "price": schema_ref("Price"),
    }))
}

/// The fields of a model's list row.
fn model_properties() -> Map<String, Value> {
    map(json!({
        "id": count("The model's id."),
        "name": {"type": "string", "description": "`{dataset}-{architecture}` of the tasks that produced it, e.g. `mnist-cnn`."},
        "creator": schema_ref("PublicKey"),
        "architecture": {"type": "string", "description": "Architecture name from the model zoo, e.g. `cnn`."},
        "dataset": {"type": "string", "description": "Dataset name, e.g. `mnist`."},
        "input_shape": {"type": "array", "items": count("A dimension."), "description": "Shape of one input, e.g. `[1, 28, 28]`."},
        "num_classes": count("Number of classes a prediction chooses from."),
        "version_count": count("Number of versions."),
        "latest": schema_ref("VersionSummary"),
    }))
}

/// The marketplace's schemas.
pub(crate) fn schemas() -> Map<String, Value> {
    let mut detail = model_properties();
    detail.insert(
        "versions".into(),
        json!({"type": "array", "items": schema_ref("VersionDetail"), "description": "Every version, newest first."}),
    );
    let mut version_detail = version_properties();
    version_detail.extend(map(json!({
        "rounds": count("Rounds the producing task ran."),
        "contributors": {"type": "array", "items": schema_ref("Contributor"), "description": "Who earned rewards on the producing task, largest first; inference fees are shared by the same weights."},
    })));
    map(json!({
        "ModelSummary": object_of("One row of the model list: a model and its latest version.", model_properties()),
        "ModelPage": page("ModelSummary", "One page of models, in ascending id order."),
        "ModelDetail": object_of("A model: the list row's fields and every version.", detail),
        "VersionSummary": object_of("A version's identity, metrics and price.", version_properties()),
        "VersionDetail": object_of("A version with its lineage.", version_detail),
        "Price": object("Inference price: `base + per_item · n` for n inputs, raised ×1.005 for every call already queued.", json!({
            "base": micro("Per call"),
            "per_item": micro("Per input"),
        })),
        "Contributor": object("An identity that earned rewards on a model's task.", json!({
            "key": schema_ref("PublicKey"),
            "role": {"type": "string", "enum": ["trainer", "validator"]},
            "earned": micro("Rewards it earned on the task"),
        })),
        "PredictInputs": object("The inputs of a prediction call.", json!({
            "inputs": {"type": "array", "minItems": 1, "items": schema_ref("Input"), "description": "One or more inputs."},
        })),
        "Input": {
            "type": "array",
            "description": "One input: numbers, or rectangular nested arrays of numbers (e.g. 28 rows of 28), flattened row-major. Every value is finite and in [0, 1]; the model decides how many there must be (784 for 28 × 28).",
            "items": {"oneOf": [{"type": "number", "minimum": 0, "maximum": 1}, {"$ref": "#/components/schemas/Input"}]},
        },
        "Prediction": object("What a prediction call returns.", json!({
            "predictions": {"type": "array", "items": schema_ref("ItemPrediction"), "description": "One per input, in order."},
            "charged": micro("Taken from the caller's balance (0 within the free quota or tier)"),
            "free_items": count("Inputs of this call covered by the free quota or tier."),
            "quota_left": nullable(count("Free inputs the caller has left today; null for unsigned calls.")),
        })),
        "ItemPrediction": object("The model's answer for one input.", json!({
            "label": count("The most probable class."),
            "probabilities": {"type": "array", "items": fraction("A class's probability."), "description": "Probability of each class (softmax of the logits), summing to 1."},
        })),
    }))
}

/// The path parameters of model routes.
pub(crate) fn parameters() -> Map<String, Value> {
    map(json!({
        "modelId": {"name": "id", "in": "path", "required": true, "schema": {"type": "integer", "minimum": 0, "maximum": u64::MAX}, "description": "The model's id, decimal digits."},
        "version": {"name": "version", "in": "path", "required": true, "schema": {"type": "integer", "minimum": 0, "maximum": u32::MAX}, "description": "The version number, decimal digits."},
    }))
}

/// The error responses only the prediction route gives.
pub(crate) fn responses() -> Map<String, Value> {
    let retry = json!({"Retry-After": {"schema": {"type": "integer", "minimum": 1}, "description": "Seconds to wait before trying again."}});
    let mut too_many =
        json_response("Too many calls from this address (unsigned) or identity (signed).", schema_ref("Error"));
    too_many["headers"] = retry;
    map(json!({
        "E401": json_response("The `Starling-Envelope` header is malformed, forged, of another message kind, or outside the time window (`invalid_signature`); the message says which.", schema_ref("Error")),
        "E402": json_response("The call costs more than the caller's free quota and balance cover, or more than its `max_fee` (`payment_required`); the message states the fee, the balance and the cap. Nothing was charged.", schema_ref("Error")),
        "E409": json_response("This signed request was already used (`replayed`): sign a new one with a fresh nonce.", schema_ref("Error")),
        "E413": json_response("The body is larger than the route accepts (`payload_too_large`).", schema_ref("Error")),
        "E415": json_response("The body is neither `application/json` nor `image/png` (`unsupported_media_type`).", schema_ref("Error")),
        "E429": too_many,
    }))
}
