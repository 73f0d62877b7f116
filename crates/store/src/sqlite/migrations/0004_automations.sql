-- Automations, their runs, per-store settings, and what the time-event scheduler looks at.

-- When the carrier last reported a status (events do not count), for the stalled-in-transit
-- scan. Kept by every status write; filled here from the history.
ALTER TABLE fulfillments ADD COLUMN last_tracking_at INTEGER;
UPDATE fulfillments SET last_tracking_at = COALESCE(
    (SELECT MAX(e.happened_at) FROM tracking_events e
     WHERE e.store_id = fulfillments.store_id AND e.fulfillment_id = fulfillments.id
       AND e.status NOT IN ('stalled_in_transit', 'delayed', 'arriving_early')),
    created_at);
CREATE INDEX fulfillments_in_transit ON fulfillments (last_tracking_at) WHERE status = 'in_transit';
CREATE INDEX fulfillments_eta ON fulfillments (estimated_delivery)
    WHERE estimated_delivery IS NOT NULL
      AND status IN ('pre_transit', 'unknown', 'in_transit', 'out_for_delivery');

-- Settings a store may change; a store without a row has the defaults.
CREATE TABLE store_settings (
    store_id          TEXT PRIMARY KEY REFERENCES stores (id) ON DELETE CASCADE,
    stall_after_secs  INTEGER NOT NULL DEFAULT 259200,
    easypost_secret   TEXT,
    updated_at        INTEGER NOT NULL
);

-- A rule: when `trigger` (a status or event) happens to a fulfillment (of `carrier`, if set),
-- run `action` (JSON: email or webhook). A webhook action owns a subscription of flavor
-- 'automation' (`webhook_id`) so the dispatcher delivers, signs and retries it.
CREATE TABLE automations (
    id          TEXT PRIMARY KEY,
    store_id    TEXT NOT NULL REFERENCES stores (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    trigger     TEXT NOT NULL,
    carrier     TEXT,
    action      TEXT NOT NULL,
    enabled     INTEGER NOT NULL DEFAULT 1,
    webhook_id  TEXT,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE INDEX automations_store ON automations (store_id, created_at);
CREATE INDEX automations_trigger ON automations (store_id, trigger) WHERE enabled = 1;

-- One run per (automation, fulfillment, trigger): written in the transaction that records the
-- status or event, so a repeated status finds its run there and adds none.
-- status: pending | running | succeeded | failed.
CREATE TABLE automation_runs (
    id               INTEGER PRIMARY KEY,
    automation_id    TEXT NOT NULL REFERENCES automations (id) ON DELETE CASCADE,
    store_id         TEXT NOT NULL,
    order_id         TEXT NOT NULL,
    seq              INTEGER NOT NULL,
    outbox_id        INTEGER,
    fulfillment_id   TEXT NOT NULL,
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
    UNIQUE (automation_id, fulfillment_id, trigger)
);
CREATE INDEX automation_runs_due ON automation_runs (next_attempt_at)
    WHERE status IN ('pending', 'running');
CREATE INDEX automation_runs_list ON automation_runs (automation_id, id);
