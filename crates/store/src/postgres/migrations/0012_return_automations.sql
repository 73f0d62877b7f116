-- Automations on returns: a trigger may name a return's status (`return.received`), and its
-- runs are keyed per return. A run is about a fulfillment or about a return, never both; each
-- key is unique with (automation, trigger), and NULLs are distinct, so the keys never collide.
ALTER TABLE automation_runs ALTER COLUMN fulfillment_id DROP NOT NULL;
ALTER TABLE automation_runs ADD COLUMN return_id TEXT COLLATE "C";
ALTER TABLE automation_runs ADD CONSTRAINT automation_runs_one_subject
    CHECK ((fulfillment_id IS NULL) <> (return_id IS NULL));
ALTER TABLE automation_runs ADD CONSTRAINT automation_runs_return_key
    UNIQUE (automation_id, return_id, trigger);
