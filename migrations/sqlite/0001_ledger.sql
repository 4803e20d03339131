-- The staking ledger. Amounts are micro-units in signed 64-bit integers
-- (issuance is capped at i64::MAX); keys are 32-byte ed25519 public keys.
CREATE TABLE accounts (
    key BLOB PRIMARY KEY,
    balance INTEGER NOT NULL CHECK (balance >= 0)
);
CREATE TABLE bonds (
    id INTEGER PRIMARY KEY,
    owner BLOB NOT NULL,
    node BLOB NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('trainer', 'validator')),
    amount INTEGER NOT NULL CHECK (amount >= 0),
    lock_days INTEGER NOT NULL CHECK (lock_days BETWEEN 0 AND 365),
    unlock_at INTEGER NOT NULL
);
CREATE INDEX bonds_by_node ON bonds (node, role);
CREATE INDEX bonds_by_owner ON bonds (owner);
CREATE TABLE nodes (
    key BLOB PRIMARY KEY,
    commission INTEGER NOT NULL CHECK (commission BETWEEN 0 AND 500000),
    previous_commission INTEGER NOT NULL CHECK (previous_commission BETWEEN 0 AND 500000),
    changed_at INTEGER NOT NULL
);
CREATE TABLE pools (
    task INTEGER PRIMARY KEY,
    balance INTEGER NOT NULL CHECK (balance >= 0),
    total_rounds INTEGER NOT NULL CHECK (total_rounds > 0),
    settled_rounds INTEGER NOT NULL CHECK (settled_rounds >= 0 AND settled_rounds <= total_rounds)
);
-- One row: money held outside accounts, bonds and pools, and the issued total.
CREATE TABLE totals (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    issued INTEGER NOT NULL CHECK (issued >= 0),
    treasury INTEGER NOT NULL CHECK (treasury >= 0),
    burned INTEGER NOT NULL CHECK (burned >= 0)
);
INSERT INTO totals (id, issued, treasury, burned) VALUES (1, 0, 0, 0);
-- Bond ids; SQLite has no sequences, and its single writer makes this row safe.
CREATE TABLE bond_ids (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    next INTEGER NOT NULL
);
INSERT INTO bond_ids (id, next) VALUES (1, 1);
-- The primary key is what makes settling a round twice impossible.
CREATE TABLE settled_rounds (
    task INTEGER NOT NULL,
    round INTEGER NOT NULL,
    PRIMARY KEY (task, round)
);
-- One row per applied operation, keyed by the caller's idempotency key.
CREATE TABLE operations (
    idempotency_key TEXT PRIMARY KEY,
    request TEXT NOT NULL,
    bond_id INTEGER,
    rewarded INTEGER NOT NULL,
    slashed INTEGER NOT NULL,
    applied_at INTEGER NOT NULL
);
-- The journal: every operation's balanced entries.
CREATE TABLE entries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    idempotency_key TEXT NOT NULL REFERENCES operations (idempotency_key),
    from_account TEXT NOT NULL,
    to_account TEXT NOT NULL,
    amount INTEGER NOT NULL CHECK (amount > 0),
    kind TEXT NOT NULL
);
CREATE INDEX entries_by_to ON entries (to_account);
CREATE INDEX entries_by_from ON entries (from_account);
