-- Read models for the dashboard.
--
-- The journal names accounts, not people or tasks: a slash debits `bond:N`,
-- and the bond is gone once unstaked. Settlement entries (rewards and
-- slashes) therefore also record the task, the round, the identity paid or
-- cut, and the slashed bond; other entries leave these NULL. No ledger was
-- deployed before this migration, so there is nothing to backfill.
ALTER TABLE entries ADD COLUMN task BIGINT;
ALTER TABLE entries ADD COLUMN round BIGINT;
ALTER TABLE entries ADD COLUMN identity BYTEA;
ALTER TABLE entries ADD COLUMN bond_id BIGINT;
-- Reward and slash history per task and per identity, newest first, paged by id.
CREATE INDEX entries_by_task ON entries (task, id) WHERE task IS NOT NULL;
CREATE INDEX entries_by_identity ON entries (identity, id) WHERE identity IS NOT NULL;
-- Positions of an identity and delegators of a node are paged by bond id
-- (settlement also reads a node's bonds in id order): index in that order.
CREATE INDEX bonds_by_node_id ON bonds (node, role, id);
DROP INDEX bonds_by_node;
CREATE INDEX bonds_by_owner_id ON bonds (owner, id);
DROP INDEX bonds_by_owner;
