-- Escrow first, store second. A new task's id is reserved here, then its
-- reward pool is escrowed in the ledger under that id, and only then are its
-- model and row stored (`tasks`, which takes the reserved id and deletes the
-- reservation in the same transaction). A creator whose pool cannot be
-- escrowed leaves nothing behind but a spent number. A reservation that
-- outlives its request (the process died between escrow and row) is found at
-- start-up, marked abandoned (after which it can no longer become a task),
-- its pool refunded if there is one, and deleted.
CREATE TABLE task_reservations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    creator BLOB NOT NULL,
    reserved_at INTEGER NOT NULL CHECK (reserved_at >= 0),
    abandoned INTEGER NOT NULL DEFAULT 0 CHECK (abandoned IN (0, 1))
);
-- Ids go on after the tasks created before this table: AUTOINCREMENT
-- remembers the largest id ever inserted, deleted or not.
INSERT INTO task_reservations (id, creator, reserved_at) SELECT id, creator, created_at FROM tasks;
DELETE FROM task_reservations;
