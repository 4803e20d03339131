-- The coordinator's durable state. It shares the database with the ledger:
-- versions below 100 are the ledger's, 100 and up the coordinator's, and
-- each migrator ignores the other's versions.
--
-- Timestamps are milliseconds since the Unix epoch; keys, hashes and
-- submission ids are 32 raw bytes; model files live in the artifact store,
-- never here.

-- Task ids are handed out here; AUTOINCREMENT never reuses one, since the
-- ledger's pools are keyed by them too.
CREATE TABLE tasks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    creator BLOB NOT NULL,
    -- A few fields of the spec, for listing and filtering without decoding it.
    model_name TEXT NOT NULL,
    dataset TEXT NOT NULL,
    rounds INTEGER NOT NULL CHECK (rounds >= 0),
    reward_pool INTEGER NOT NULL CHECK (reward_pool >= 0),
    initial_model BLOB NOT NULL,
    created_at INTEGER NOT NULL CHECK (created_at >= 0),
    -- The whole TaskSpec, postcard-encoded.
    spec BLOB NOT NULL
);
CREATE INDEX tasks_by_creator ON tasks (creator, id);

-- Each task's persisted round machine. `version` counts saves (0: none yet)
-- and is compared-and-set on every save, so two coordinators can never both
-- advance a task.
CREATE TABLE task_states (
    task INTEGER PRIMARY KEY REFERENCES tasks (id),
    version INTEGER NOT NULL CHECK (version >= 0),
    finished INTEGER NOT NULL CHECK (finished IN (0, 1)),
    state BLOB
);
CREATE INDEX task_states_unfinished ON task_states (task) WHERE NOT finished;

-- Which coordinator runs a task, until when.
CREATE TABLE task_leases (
    task INTEGER PRIMARY KEY REFERENCES tasks (id),
    owner TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);

-- One submission per trainer per round: the primary key refuses a second.
CREATE TABLE submissions (
    task INTEGER NOT NULL REFERENCES tasks (id),
    round INTEGER NOT NULL CHECK (round >= 0),
    trainer BLOB NOT NULL,
    submission BLOB NOT NULL,
    update_hash BLOB NOT NULL,
    len INTEGER NOT NULL CHECK (len >= 0),
    samples INTEGER NOT NULL CHECK (samples >= 0),
    train_loss REAL,
    check_passed INTEGER NOT NULL CHECK (check_passed IN (0, 1)),
    check_reason TEXT,
    envelope BLOB NOT NULL,
    received_at INTEGER NOT NULL CHECK (received_at >= 0),
    PRIMARY KEY (task, round, trainer),
    UNIQUE (task, round, submission)
);

-- One score per validator per submission.
CREATE TABLE scores (
    task INTEGER NOT NULL,
    round INTEGER NOT NULL,
    submission BLOB NOT NULL,
    validator BLOB NOT NULL,
    accuracy REAL NOT NULL,
    loss REAL NOT NULL,
    improvement REAL NOT NULL,
    envelope BLOB NOT NULL,
    received_at INTEGER NOT NULL CHECK (received_at >= 0),
    PRIMARY KEY (task, round, submission, validator),
    FOREIGN KEY (task, round, submission) REFERENCES submissions (task, round, submission)
);

-- Settled rounds, for the dashboard.
CREATE TABLE rounds (
    task INTEGER NOT NULL REFERENCES tasks (id),
    round INTEGER NOT NULL CHECK (round >= 0),
    global_model BLOB NOT NULL,
    accuracy REAL,
    loss REAL,
    accepted INTEGER NOT NULL CHECK (accepted >= 0),
    rejected INTEGER NOT NULL CHECK (rejected >= 0),
    settled_at INTEGER NOT NULL CHECK (settled_at >= 0),
    PRIMARY KEY (task, round)
);
