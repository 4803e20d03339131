-- What agreement decided in each settled round: every submission's outcome
-- and consensus, every validator's agreement and the stake it was weighed
-- with. Written once, when the round settles, from the round machine's own
-- verdict, so the dashboard shows what was paid whatever the stakes do
-- later. Rounds settled before this migration have no rows here.
CREATE TABLE round_verdicts (
    task INTEGER NOT NULL REFERENCES tasks (id),
    round INTEGER NOT NULL CHECK (round >= 0),
    kappa_ppm INTEGER NOT NULL CHECK (kappa_ppm BETWEEN 1 AND 1000000),
    harm_threshold REAL,
    PRIMARY KEY (task, round)
);

CREATE TABLE submission_verdicts (
    task INTEGER NOT NULL,
    round INTEGER NOT NULL,
    submission BLOB NOT NULL,
    trainer BLOB NOT NULL,
    samples INTEGER NOT NULL CHECK (samples >= 0),
    consensus REAL,
    -- 0: accepted, 1: rejected (with its reason), 2: unresolved.
    outcome INTEGER NOT NULL CHECK (outcome IN (0, 1, 2)),
    reason TEXT,
    PRIMARY KEY (task, round, submission),
    FOREIGN KEY (task, round) REFERENCES round_verdicts (task, round)
);

CREATE TABLE validator_verdicts (
    task INTEGER NOT NULL,
    round INTEGER NOT NULL,
    validator BLOB NOT NULL,
    -- Effective stake in µSTAR, in decimal: lock multipliers (up to 3×) can
    -- take it past a signed 64-bit integer.
    stake TEXT NOT NULL,
    scores INTEGER NOT NULL CHECK (scores >= 0),
    -- NULL when the validator scored no resolved submission.
    agreement_ppm INTEGER CHECK (agreement_ppm BETWEEN 0 AND 1000000),
    PRIMARY KEY (task, round, validator),
    FOREIGN KEY (task, round) REFERENCES round_verdicts (task, round)
);
