-- Updates are private; models are public. An unsigned blob read is answered
-- only for a hash that is some task's initial model or some settled round's
-- global model (promoted versions are round models), looked up here.
CREATE INDEX tasks_by_initial_model ON tasks (initial_model);
CREATE INDEX rounds_by_global_model ON rounds (global_model);
