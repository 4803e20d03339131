-- The coordinator's durable state. It shares the database with the ledger:
-- versions below 100 are the ledger's, 100 and up the coordinator's, and
-- each migrator ignores the other's versions.
--
-- Timestamps are milliseconds since the Unix epoch; keys, hashes and
-- submission ids are 32 raw bytes; model files live in the artifact store,
-- never here.

-- Task ids are handed out here by a sequence, never reused: the ledger's
-- pools are keyed by them too.
CREATE TABLE tasks (
    id BIGSERIAL PRIMARY KEY,
    creator BYTEA NOT NULL,
    -- A few fields of the spec, for listing and filtering without decoding it.
    model_name TEXT NOT NULL,
    dataset TEXT NOT NULL,
    rounds BIGINT NOT NULL CHECK (rounds >= 0),
    reward_pool BIGINT NOT NULL CHECK (reward_pool >= 0),
    initial_model BYTEA NOT NULL,
    created_at BIGINT NOT NULL CHECK (created_at >= 0),
    -- The whole TaskSpec, postcard-encoded.
    spec BYTEA NOT NULL
);
CREATE INDEX tasks_by_creator ON tasks (creator, id);

-- Each task's persisted round machine. `version` counts saves (0: none yet)
-- and is compared-and-set on every save, so two coordinators can never both
-- advance a task.
CREATE TABLE task_states (
    task BIGINT PRIMARY KEY REFERENCES tasks (id),
    version BIGINT NOT NULL CHECK (version >= 0),
    finished BOOLEAN NOT NULL,
    state BYTEA
);
CREATE INDEX task_states_unfinished ON task_states (task) WHERE NOT finished;

-- Which coordinator runs a task, until when.
CREATE TABLE task_leases (
    task BIGINT PRIMARY KEY REFERENCES tasks (id),
    owner TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);

-- One submission per trainer per round: the primary key refuses a second.
CREATE TABLE submissions (
    task BIGINT NOT NULL REFERENCES tasks (id),
    round BIGINT NOT NULL CHECK (round >= 0),
    trainer BYTEA NOT NULL,
    submission BYTEA NOT NULL,
    update_hash BYTEA NOT NULL,
    len BIGINT NOT NULL CHECK (len >= 0),
    samples BIGINT NOT NULL CHECK (samples >= 0),
    train_loss DOUBLE PRECISION,
    check_passed BOOLEAN NOT NULL,
    check_reason TEXT,
    envelope BYTEA NOT NULL,
    received_at BIGINT NOT NULL CHECK (received_at >= 0),
    PRIMARY KEY (task, round, trainer),
    UNIQUE (task, round, submission)
);

-- One score per validator per submission.
CREATE TABLE scores (
    task BIGINT NOT NULL,
    round BIGINT NOT NULL,
    submission BYTEA NOT NULL,
    validator BYTEA NOT NULL,
    accuracy DOUBLE PRECISION NOT NULL,
    loss DOUBLE PRECISION NOT NULL,
    improvement DOUBLE PRECISION NOT NULL,
    envelope BYTEA NOT NULL,
    received_at BIGINT NOT NULL CHECK (received_at >= 0),
    PRIMARY KEY (task, round, submission, validator),
    FOREIGN KEY (task, round, submission) REFERENCES submissions (task, round, submission)
);

-- Settled rounds, for the dashboard.
CREATE TABLE rounds (
    task BIGINT NOT NULL REFERENCES tasks (id),
    round BIGINT NOT NULL CHECK (round >= 0),
    global_model BYTEA NOT NULL,
    accuracy DOUBLE PRECISION,
    loss DOUBLE PRECISION,
    accepted BIGINT NOT NULL CHECK (accepted >= 0),
    rejected BIGINT NOT NULL CHECK (rejected >= 0),
    settled_at BIGINT NOT NULL CHECK (settled_at >= 0),
    PRIMARY KEY (task, round)
);
