-- Automations on returns: a trigger may name a return's status (`return.received`), and its
-- runs are keyed per return. A run is about a fulfillment or about a return, never both, so
-- `fulfillment_id` becomes nullable (SQLite cannot drop NOT NULL: the table is rebuilt) and
-- `return_id` joins it, each unique with (automation, trigger). NULLs are distinct in a UNIQUE
-- constraint, so the two keys never collide.
CREATE TABLE automation_runs_new (
    id               INTEGER PRIMARY KEY,
    automation_id    TEXT NOT NULL REFERENCES automations (id) ON DELETE CASCADE,
    store_id         TEXT NOT NULL,
    order_id         TEXT NOT NULL,
    seq              INTEGER NOT NULL,
    outbox_id        INTEGER,
    fulfillment_id   TEXT,
    return_id        TEXT,
    trigger          TEXT NOT NULL,
    status           TEXT NOT NULL DEFAULT 'pending',
    attempts         INTEGER NOT NULL DEFAULT 0,
    claims           INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    lease_until      INTEGER,
    last_error       TEXT,
    detail           TEXT,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    CHECK ((fulfillment_id IS NULL) <> (return_id IS NULL)),
    UNIQUE (automation_id, fulfillment_id, trigger),
    UNIQUE (automation_id, return_id, trigger)
);
INSERT INTO automation_runs_new (id, automation_id, store_id, order_id, seq, outbox_id,
                                 fulfillment_id, trigger, status, attempts, claims,
                                 next_attempt_at, lease_until, last_error, detail, created_at,
                                 updated_at)
SELECT id, automation_id, store_id, order_id, seq, outbox_id, fulfillment_id, trigger, status,
       attempts, claims, next_attempt_at, lease_until, last_error, detail, created_at, updated_at
FROM automation_runs;
DROP TABLE automation_runs;
ALTER TABLE automation_runs_new RENAME TO automation_runs;
CREATE INDEX automation_runs_due ON automation_runs (next_attempt_at)
    WHERE status IN ('pending', 'running');
CREATE INDEX automation_runs_list ON automation_runs (automation_id, id);
