-- The staking ledger. Amounts are micro-units in signed 64-bit integers
-- (issuance is capped at i64::MAX); keys are 32-byte ed25519 public keys.
CREATE TABLE accounts (
    key BYTEA PRIMARY KEY,
    balance BIGINT NOT NULL CHECK (balance >= 0)
);
CREATE TABLE bonds (
    id BIGINT PRIMARY KEY,
    owner BYTEA NOT NULL,
    node BYTEA NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('trainer', 'validator')),
    amount BIGINT NOT NULL CHECK (amount >= 0),
    lock_days BIGINT NOT NULL CHECK (lock_days BETWEEN 0 AND 365),
    unlock_at BIGINT NOT NULL
);
CREATE INDEX bonds_by_node ON bonds (node, role);
CREATE INDEX bonds_by_owner ON bonds (owner);
CREATE TABLE nodes (
    key BYTEA PRIMARY KEY,
    commission BIGINT NOT NULL CHECK (commission BETWEEN 0 AND 500000),
    previous_commission BIGINT NOT NULL CHECK (previous_commission BETWEEN 0 AND 500000),
    changed_at BIGINT NOT NULL
);
CREATE TABLE pools (
    task BIGINT PRIMARY KEY,
    balance BIGINT NOT NULL CHECK (balance >= 0),
    total_rounds BIGINT NOT NULL CHECK (total_rounds > 0),
    settled_rounds BIGINT NOT NULL CHECK (settled_rounds >= 0 AND settled_rounds <= total_rounds)
);
-- One row: money held outside accounts, bonds and pools, and the issued total.
CREATE TABLE totals (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    issued BIGINT NOT NULL CHECK (issued >= 0),
    treasury BIGINT NOT NULL CHECK (treasury >= 0),
    burned BIGINT NOT NULL CHECK (burned >= 0)
);
INSERT INTO totals (id, issued, treasury, burned) VALUES (1, 0, 0, 0);
-- Bond ids: a sequence hands them out without locking anything.
CREATE SEQUENCE bond_ids START 1;
-- The primary key is what makes settling a round twice impossible.
CREATE TABLE settled_rounds (
    task BIGINT NOT NULL,
    round BIGINT NOT NULL,
    PRIMARY KEY (task, round)
);
-- One row per applied operation, keyed by the caller's idempotency key.
CREATE TABLE operations (
    idempotency_key TEXT PRIMARY KEY,
    request TEXT NOT NULL,
    bond_id BIGINT,
    rewarded BIGINT NOT NULL,
    slashed BIGINT NOT NULL,
    applied_at BIGINT NOT NULL
);
-- The journal: every operation's balanced entries.
CREATE TABLE entries (
    id BIGSERIAL PRIMARY KEY,
    idempotency_key TEXT NOT NULL REFERENCES operations (idempotency_key),
    from_account TEXT NOT NULL,
    to_account TEXT NOT NULL,
    amount BIGINT NOT NULL CHECK (amount > 0),
    kind TEXT NOT NULL
);
CREATE INDEX entries_by_to ON entries (to_account);
CREATE INDEX entries_by_from ON entries (from_account);
