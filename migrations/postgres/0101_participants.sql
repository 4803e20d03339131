-- Who joined which task in which role. A join is a standing request to be
-- considered: the coordinator reads the joined keys' stakes from the ledger
-- when the task starts and after every settlement, and samples only those
-- at or above the task's minimum.
CREATE TABLE task_participants (
    task BIGINT NOT NULL REFERENCES tasks (id),
    participant BYTEA NOT NULL,
    -- 0: trainer, 1: validator.
    role BIGINT NOT NULL CHECK (role IN (0, 1)),
    joined_at BIGINT NOT NULL CHECK (joined_at >= 0),
    PRIMARY KEY (task, participant, role)
);
