-- Webhooks on PostgreSQL: the tables of sqlite/migrations/0003_webhooks.sql, plus a
-- `fanned_out` mark on outbox rows. Identity values are handed out when a row is inserted, not
-- when it commits, so a cursor over outbox.id could pass an event whose transaction commits
-- late; fan-out here instead takes the rows not yet marked, under an advisory lock.

ALTER TABLE outbox ADD COLUMN fanned_out BOOLEAN NOT NULL DEFAULT false;
CREATE INDEX outbox_not_fanned_out ON outbox (id) WHERE NOT fanned_out;
CREATE INDEX outbox_store_created ON outbox (store_id, created_at);

CREATE TABLE webhook_subscriptions (
    id               TEXT COLLATE "C" PRIMARY KEY,
    store_id         TEXT COLLATE "C" NOT NULL REFERENCES stores (id) ON DELETE CASCADE,
    flavor           TEXT NOT NULL,
    url              TEXT NOT NULL,
    topics           TEXT NOT NULL,
    external_id      TEXT,
    bearer_token     TEXT,
    secret           TEXT NOT NULL,
    enabled          BOOLEAN NOT NULL DEFAULT true,
    disabled_reason  TEXT,
    failing_since    BIGINT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX webhook_subscriptions_store ON webhook_subscriptions (store_id, flavor, created_at);
CREATE UNIQUE INDEX webhook_subscriptions_external
    ON webhook_subscriptions (store_id, flavor, external_id) WHERE external_id IS NOT NULL;

CREATE TABLE webhook_store_secrets (
    store_id    TEXT COLLATE "C" PRIMARY KEY REFERENCES stores (id) ON DELETE CASCADE,
    secret      TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE webhook_deliveries (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subscription_id  TEXT COLLATE "C" NOT NULL REFERENCES webhook_subscriptions (id) ON DELETE CASCADE,
    outbox_id        BIGINT NOT NULL,
    event_id         TEXT NOT NULL,
    store_id         TEXT COLLATE "C" NOT NULL,
    order_id         TEXT COLLATE "C" NOT NULL,
    seq              BIGINT NOT NULL,
    type             TEXT NOT NULL,
    fulfillment_id   TEXT,
    data             TEXT,
    event_at         BIGINT NOT NULL,
    status           TEXT NOT NULL DEFAULT 'pending',
    attempts         INTEGER NOT NULL DEFAULT 0,
    claims           BIGINT NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT NOT NULL,
    lease_until      BIGINT,
    last_error       TEXT,
    payload          TEXT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    UNIQUE (subscription_id, outbox_id)
);
CREATE INDEX webhook_deliveries_open
    ON webhook_deliveries (subscription_id, order_id, seq) WHERE status IN ('pending', 'in_flight');
CREATE INDEX webhook_deliveries_due
    ON webhook_deliveries (next_attempt_at) WHERE status IN ('pending', 'in_flight');
CREATE INDEX webhook_deliveries_order ON webhook_deliveries (order_id, seq);

CREATE TABLE webhook_attempts (
    id                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id       BIGINT NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    subscription_id   TEXT COLLATE "C" NOT NULL,
    attempt           INTEGER NOT NULL,
    at                BIGINT NOT NULL,
    status_code       INTEGER,
    latency_ms        BIGINT NOT NULL,
    error             TEXT,
    response_excerpt  TEXT
);
CREATE INDEX webhook_attempts_subscription ON webhook_attempts (subscription_id, id);
