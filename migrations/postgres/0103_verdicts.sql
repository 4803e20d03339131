-- What agreement decided in each settled round: every submission's outcome
-- and consensus, every validator's agreement and the stake it was weighed
-- with. Written once, when the round settles, from the round machine's own
-- verdict, so the dashboard shows what was paid whatever the stakes do
-- later. Rounds settled before this migration have no rows here.
CREATE TABLE round_verdicts (
    task BIGINT NOT NULL REFERENCES tasks (id),
    round BIGINT NOT NULL CHECK (round >= 0),
    kappa_ppm BIGINT NOT NULL CHECK (kappa_ppm BETWEEN 1 AND 1000000),
    harm_threshold DOUBLE PRECISION,
    PRIMARY KEY (task, round)
);

CREATE TABLE submission_verdicts (
    task BIGINT NOT NULL,
    round BIGINT NOT NULL,
    submission BYTEA NOT NULL,
    trainer BYTEA NOT NULL,
    samples BIGINT NOT NULL CHECK (samples >= 0),
    consensus DOUBLE PRECISION,
    -- 0: accepted, 1: rejected (with its reason), 2: unresolved.
    outcome BIGINT NOT NULL CHECK (outcome IN (0, 1, 2)),
    reason TEXT,
    PRIMARY KEY (task, round, submission),
    FOREIGN KEY (task, round) REFERENCES round_verdicts (task, round)
);

CREATE TABLE validator_verdicts (
    task BIGINT NOT NULL,
    round BIGINT NOT NULL,
    validator BYTEA NOT NULL,
    -- Effective stake in µSTAR, in decimal: lock multipliers (up to 3×) can
    -- take it past a signed 64-bit integer.
    stake TEXT NOT NULL,
    scores BIGINT NOT NULL CHECK (scores >= 0),
    -- NULL when the validator scored no resolved submission.
    agreement_ppm BIGINT CHECK (agreement_ppm BETWEEN 0 AND 1000000),
    PRIMARY KEY (task, round, validator),
    FOREIGN KEY (task, round) REFERENCES round_verdicts (task, round)
);
