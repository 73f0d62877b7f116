-- Webhooks: subscriptions, one delivery per (subscription, outbox event), and every attempt.
-- Plain SQL on purpose (ported to PostgreSQL as is, with BIGSERIAL for the INTEGER PRIMARY KEYs).

CREATE TABLE webhook_subscriptions (
    id               TEXT PRIMARY KEY,
    store_id         TEXT NOT NULL REFERENCES stores (id) ON DELETE CASCADE,
    flavor           TEXT NOT NULL,             -- 'redo' | 'fourthwall'
    url              TEXT NOT NULL,
    topics           TEXT NOT NULL,             -- comma-separated topics / allowedTypes
    external_id      TEXT,
    bearer_token     TEXT,
    secret           TEXT NOT NULL,             -- whsec_... (Standard Webhooks signing key)
    enabled          INTEGER NOT NULL DEFAULT 1,
    disabled_reason  TEXT,
    failing_since    INTEGER,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
);
CREATE INDEX webhook_subscriptions_store ON webhook_subscriptions (store_id, flavor, created_at);
CREATE UNIQUE INDEX webhook_subscriptions_external
    ON webhook_subscriptions (store_id, flavor, external_id) WHERE external_id IS NOT NULL;

-- A store's Fourthwall webhook secret (HMAC key of X-Fourthwall-Hmac-SHA256), made when first needed.
CREATE TABLE webhook_store_secrets (
    store_id    TEXT PRIMARY KEY REFERENCES stores (id) ON DELETE CASCADE,
    secret      TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

-- How far fan-out has read the outbox (by outbox.id), per named cursor.
CREATE TABLE webhook_cursors (
    name       TEXT PRIMARY KEY,
    outbox_id  INTEGER NOT NULL
);

-- One row per (subscription, outbox event). The event's fields are copied so a delivery
-- outlives nothing it needs. status: pending | in_flight | delivered | failed.
CREATE TABLE webhook_deliveries (
    id               INTEGER PRIMARY KEY,
    subscription_id  TEXT NOT NULL REFERENCES webhook_subscriptions (id) ON DELETE CASCADE,
    outbox_id        INTEGER NOT NULL,
    event_id         TEXT NOT NULL,
    store_id         TEXT NOT NULL,
    order_id         TEXT NOT NULL,
    seq              INTEGER NOT NULL,
    type             TEXT NOT NULL,
    fulfillment_id   TEXT,
    data             TEXT,
    event_at         INTEGER NOT NULL,
    status           TEXT NOT NULL DEFAULT 'pending',
    attempts         INTEGER NOT NULL DEFAULT 0,
    claims           INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    lease_until      INTEGER,
    last_error       TEXT,
    payload          TEXT,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    UNIQUE (subscription_id, outbox_id)
);
-- Claiming: the open deliveries of one (subscription, order), lowest seq first.
CREATE INDEX webhook_deliveries_open
    ON webhook_deliveries (subscription_id, order_id, seq) WHERE status IN ('pending', 'in_flight');
CREATE INDEX webhook_deliveries_due
    ON webhook_deliveries (next_attempt_at) WHERE status IN ('pending', 'in_flight');
CREATE INDEX webhook_deliveries_order ON webhook_deliveries (order_id, seq);

-- Every HTTP attempt.
CREATE TABLE webhook_attempts (
    id                INTEGER PRIMARY KEY,
    delivery_id       INTEGER NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    subscription_id   TEXT NOT NULL,
    attempt           INTEGER NOT NULL,
    at                INTEGER NOT NULL,
    status_code       INTEGER,
    latency_ms        INTEGER NOT NULL,
    error             TEXT,
    response_excerpt  TEXT
);
CREATE INDEX webhook_attempts_subscription ON webhook_attempts (subscription_id, id);
