-- Automations on PostgreSQL: the tables of sqlite/migrations/0004_automations.sql.

ALTER TABLE fulfillments ADD COLUMN last_tracking_at BIGINT;
UPDATE fulfillments SET last_tracking_at = COALESCE(
    (SELECT MAX(e.happened_at) FROM tracking_events e
     WHERE e.store_id = fulfillments.store_id AND e.fulfillment_id = fulfillments.id
       AND e.status NOT IN ('stalled_in_transit', 'delayed', 'arriving_early')),
    created_at);
CREATE INDEX fulfillments_in_transit ON fulfillments (last_tracking_at) WHERE status = 'in_transit';
CREATE INDEX fulfillments_eta ON fulfillments (estimated_delivery)
    WHERE estimated_delivery IS NOT NULL
      AND status IN ('pre_transit', 'unknown', 'in_transit', 'out_for_delivery');

CREATE TABLE store_settings (
    store_id          TEXT COLLATE "C" PRIMARY KEY REFERENCES stores (id) ON DELETE CASCADE,
    stall_after_secs  BIGINT NOT NULL DEFAULT 259200,
    easypost_secret   TEXT,
    updated_at        BIGINT NOT NULL
);

CREATE TABLE automations (
    id          TEXT COLLATE "C" PRIMARY KEY,
    store_id    TEXT COLLATE "C" NOT NULL REFERENCES stores (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    trigger     TEXT NOT NULL,
    carrier     TEXT,
    action      TEXT NOT NULL,
    enabled     BOOLEAN NOT NULL DEFAULT true,
    webhook_id  TEXT COLLATE "C",
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX automations_store ON automations (store_id, created_at);
CREATE INDEX automations_trigger ON automations (store_id, trigger) WHERE enabled;

CREATE TABLE automation_runs (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    automation_id    TEXT COLLATE "C" NOT NULL REFERENCES automations (id) ON DELETE CASCADE,
    store_id         TEXT COLLATE "C" NOT NULL,
    order_id         TEXT COLLATE "C" NOT NULL,
    seq              BIGINT NOT NULL,
    outbox_id        BIGINT,
    fulfillment_id   TEXT COLLATE "C" NOT NULL,
    trigger          TEXT NOT NULL,
    status           TEXT NOT NULL DEFAULT 'pending',
    attempts         INTEGER NOT NULL DEFAULT 0,
    claims           BIGINT NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT NOT NULL,
    lease_until      BIGINT,
    last_error       TEXT,
    detail           TEXT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    UNIQUE (automation_id, fulfillment_id, trigger)
);
CREATE INDEX automation_runs_due ON automation_runs (next_attempt_at)
    WHERE status IN ('pending', 'running');
CREATE INDEX automation_runs_list ON automation_runs (automation_id, id);
