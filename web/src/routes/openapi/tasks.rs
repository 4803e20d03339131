//! The tasks' and accounts' part of the OpenAPI document: the paths of
//! `/api/tasks…` and `/api/accounts…`, the schemas of the views they serve
//! (with a task's spec and its aggregation settings) and their path
//! parameters, merged into the document by
//! [`openapi`](crate::routes::openapi), whose tests check them with the rest.

use serde_json::{Map, Value, json};
use starling_protocol::RoundPhase;

use crate::routes::openapi::schema::{
    count, file_download, hex, json_response, map, micro, nullable, object, object_of, page, parameter_ref, schema_ref,
    tagged, with_errors,
};

/// The paths under `/api/tasks` and `/api/accounts`.
pub(crate) fn paths() -> Map<String, Value> {
    let download = file_download(
        "downloadModel",
        "The task's current global model as safetensors bytes.",
        "Send the `ETag` back as `If-None-Match` to get a bodiless 304 while the model is unchanged.",
        vec![parameter_ref("taskId")],
        "task-<id>-<hash prefix>.safetensors",
    );
    map(json!({
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
        "/api/tasks/{id}/model": download,
        "/api/accounts/{key}": {"get": {
            "operationId": "getAccount",
            "summary": "An identity's balances and bonds, with one page of its rewards and slashes (newest first).",
            "parameters": [parameter_ref("publicKey"), parameter_ref("cursor"), parameter_ref("limit")],
            "responses": with_errors(json!({"200": json_response("The account.", schema_ref("AccountView"))}), &["400", "404", "500", "503"]),
        }},
    }))
}

/// The fields of a task's list row, shared by `TaskSummary` and `TaskDetail`.
fn summary_properties() -> Map<String, Value> {
    map(json!({
        "id": count("The task's id."),
        "model": {"type": "string", "description": "Architecture name from the model zoo, e.g. `mnist-cnn`."},
        "dataset": {"type": "string", "description": "Dataset name, e.g. `mnist`."},
        "phase": schema_ref("RoundPhase"),
        "round": count("The current round, counting from zero (the last one once the task is over)."),
        "rounds": count("Rounds the task runs in total."),
        "participants": count("Trainers sampled into the current round."),
        "pool_left": micro("Reward pool not yet paid out"),
    }))
}

/// The schemas of the tasks' and accounts' views.
pub(crate) fn schemas() -> Map<String, Value> {
    let mut detail = summary_properties();
    detail.extend(map(json!({
        "spec": schema_ref("TaskSpec"),
        "history": {"type": "array", "items": schema_ref("RoundRecord"), "description": "One record per round opened so far, oldest first."},
        "submissions": {"type": "array", "items": schema_ref("SubmissionView"), "description": "Submissions to the current round, or to the last one once the task is over."},
        "payouts": {"type": "array", "items": schema_ref("IdentityPayout"), "description": "Rewards and slashes over the whole task, one entry per identity."},
        "validators": {"type": "array", "items": schema_ref("ValidatorStanding"), "description": "The validators that scored anything, by mean agreement, highest first."},
    })));
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
    map(json!({
        "RoundPhase": {
            "type": "string",
            "enum": RoundPhase::ALL.iter().map(|phase| phase.as_str()).collect::<Vec<_>>(),
            "description": "Where the current round stands; `finished` once the task is over.",
        },
        "TaskSummary": object_of("One row of the task list.", summary_properties()),
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
        "TaskDetail": object_of("A task: the list row's fields, its spec, round history, current submissions and payouts.", detail),
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
    }))
}

/// The path parameters of task and account routes.
pub(crate) fn parameters() -> Map<String, Value> {
    map(json!({
        "taskId": {"name": "id", "in": "path", "required": true, "schema": {"type": "integer", "minimum": 0, "maximum": u64::MAX}, "description": "The task's id, decimal digits."},
        "publicKey": {"name": "key", "in": "path", "required": true, "schema": schema_ref("PublicKey"), "description": "The identity's ed25519 public key."},
    }))
}
