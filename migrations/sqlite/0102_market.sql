-- The model marketplace. A model is one creator's line of versions of one
-- architecture on one dataset; every finished task that produced a model
-- promotes its best round's model as the model's next version, once.
CREATE TABLE market_models (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    creator BLOB NOT NULL,
    -- `{dataset}-{architecture}`, e.g. `mnist-cnn`.
    name TEXT NOT NULL,
    created_at INTEGER NOT NULL CHECK (created_at >= 0),
    UNIQUE (creator, name)
);

CREATE TABLE market_versions (
    model INTEGER NOT NULL REFERENCES market_models (id),
    version INTEGER NOT NULL CHECK (version >= 1),
    -- The task that produced it: one version per task.
    task INTEGER NOT NULL UNIQUE REFERENCES tasks (id),
    -- The round whose aggregate it is.
    round INTEGER NOT NULL CHECK (round >= 0),
    hash BLOB NOT NULL,
    size_bytes INTEGER NOT NULL CHECK (size_bytes >= 0),
    -- The validators' consensus estimate of its accuracy.
    consensus_accuracy REAL NOT NULL,
    -- The coordinator's own measurement, when it has data for the task.
    accuracy REAL,
    loss REAL,
    promoted_at INTEGER NOT NULL CHECK (promoted_at >= 0),
    PRIMARY KEY (model, version)
);

-- Free inference inputs used per identity and UTC day (days since the epoch).
CREATE TABLE inference_usage (
    caller BLOB NOT NULL,
    day INTEGER NOT NULL CHECK (day >= 0),
    items INTEGER NOT NULL CHECK (items >= 0),
    PRIMARY KEY (caller, day)
);
